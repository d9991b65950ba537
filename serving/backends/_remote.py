"""What the HTTP backends (openai, anthropic, vllm's server) share: the API key from the environment,
a cheap reachability probe, and turning client exceptions into a BackendError that names the cause."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from serving.backends._limits import LoopSemaphore, PerLoop
from serving.backends.base import Backend, BackendError, Completion, Message, ModelSpec, SamplingParams

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

    # -- one request/stream skeleton for every HTTP SDK --------------------------------------------------
    #: What the end of a stream is called by the provider, for the message when a stream is cut short.
    STREAM_END = "a finish reason"

    def _request(self, messages: list[Message], params: SamplingParams | None) -> dict[str, Any]:
        raise NotImplementedError

    def _stream_texts(self, client: Any, request: dict[str, Any], end: StreamEnd) -> AsyncIterator[str]:
        """Text deltas of a streamed reply; sets ``end.reason`` when the provider says the reply is over."""
        raise NotImplementedError

    async def _create(self, client: Any, request: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _completion(self, response: Any, seconds: float) -> Completion:
        raise NotImplementedError

    async def stream(self, messages: list[Message], params: SamplingParams | None = None) -> AsyncIterator[str]:
        client = self._clients.get()
        received: list[str] = []
        end = StreamEnd()
        async with self._limit.get():
            try:
                async for text in self._stream_texts(client, self._request(messages, params), end):
                    if text:
                        received.append(text)
                        yield text
                if end.reason is None:
                    # The connection closed before the server said the answer was over: a cut, not an end.
                    raise BackendError(self.name, f"stream from {self.base_url} ended before {self.STREAM_END} "
                                       f"(after {len(''.join(received))} characters)", partial="".join(received))
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001 - transport errors mid-stream too: never a silent cut
                raise self._error(exc, "".join(received)) from exc

    async def complete(self, messages: list[Message], params: SamplingParams | None = None) -> Completion:
        client = self._clients.get()
        start = time.perf_counter()
        async with self._limit.get():
            try:
                response = await self._create(client, self._request(messages, params))
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._error(exc, "") from exc
        return self._completion(response, time.perf_counter() - start)

    async def aclose(self) -> None:
        client = self._clients.pop_current()
        if client is not None:
            await client.close()


@dataclass
class StreamEnd:
    """Filled in by a backend's stream when the provider ends the reply (finish or stop reason)."""

    reason: str | None = None
