"""What the HTTP backends (openai, anthropic, vllm's server) share: the API key from the environment,
a cheap reachability probe, and turning client exceptions into a BackendError that names the cause."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from serving.backends._limits import LoopSemaphore, PerLoop
from serving.backends.base import Backend, BackendError, ModelSpec

# OpenAI-compatible local servers ignore the key, but the client refuses to start without one.
NO_KEY = "not-needed"


def api_key(spec: ModelSpec, *, required: bool) -> str:
    """The key from the variable the spec names. ``required``: the provider rejects calls without one."""
    if spec.api_key_env:
        value = os.environ.get(spec.api_key_env, "").strip()
        if not value:
            raise BackendError(spec.name, f"environment variable {spec.api_key_env} (api_key_env) is not set")
        return value
    if required:
        raise BackendError(spec.name, "no API key: set api_key_env to the NAME of the variable holding it")
    return NO_KEY


def key_problem(spec: ModelSpec, *, required: bool) -> str:
    try:
        api_key(spec, required=required)
    except BackendError as exc:
        return exc.cause
    return ""


def probe(base_url: str, timeout_s: float = 2.0) -> str:
    """'' when something answers HTTP at ``base_url`` (any status), else why not."""
    import httpx

    try:
        httpx.get(base_url.rstrip("/") + "/models", timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"cannot reach {base_url} ({type(exc).__name__}: {exc})"
    return ""


def status_cause(status: int, message: str, where: str) -> str:
    hint = {401: " (check the API key)", 403: " (key not allowed)", 404: " (unknown model or path?)",
            429: " (rate limited; retries exhausted)"}.get(status, "")
    return f"HTTP {status} from {where}{hint}: {message}"


def client_error(sdk: ModuleType, exc: Exception, *, spec: ModelSpec, base_url: str, partial: str) -> BackendError:
    """A BackendError naming the cause of an ``openai`` or ``anthropic`` client exception: both SDKs share
    the APIStatusError / APITimeoutError / APIConnectionError hierarchy."""
    if isinstance(exc, sdk.APIStatusError):
        cause = status_cause(exc.status_code, exc.message, base_url)
    elif isinstance(exc, sdk.APITimeoutError):
        cause = f"no answer from {base_url} within {spec.timeout_s:g} s"
    elif isinstance(exc, sdk.APIConnectionError) and partial:
        cause = f"connection to {base_url} lost mid-answer ({exc.__cause__ or exc})"
    elif isinstance(exc, sdk.APIConnectionError):
        cause = f"cannot reach {base_url} ({exc.__cause__ or exc})"
    else:
        cause = f"{type(exc).__name__}: {exc}"
    if partial:
        cause += f" (after {len(partial)} characters of the answer)"
    return BackendError(spec.name, cause, partial=partial)


class RemoteBackend(Backend):
    """What an HTTP-client backend holds: a concurrency limit and one client per event loop (the async
    clients are bound to the loop that made them)."""

    DEFAULT_BASE_URL = ""
    SDK = ""  # the client package ("openai", "anthropic"): both share one exception hierarchy

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._limit = LoopSemaphore(spec.concurrency)
        self._clients = PerLoop(self._make_client)

    @property
    def base_url(self) -> str:
        return self.spec.base_url or self.DEFAULT_BASE_URL

    def _make_client(self) -> Any:
        raise NotImplementedError

    def _error(self, exc: Exception, partial: str) -> BackendError:
        import importlib

        return client_error(importlib.import_module(self.SDK), exc, spec=self.spec, base_url=self.base_url,
                            partial=partial)
