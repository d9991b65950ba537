"""What the HTTP backends (openai, anthropic, vllm's server) share: the API key from the environment,
a cheap reachability probe, and turning client exceptions into a BackendError that names the cause."""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from serving.backends._limits import LoopSemaphore, PerLoop
from serving.backends.base import (
    Backend,
    BackendError,
    CallReport,
    Completion,
    Message,
    ModelSpec,
    SamplingParams,
)
from serving.backends.pool import EndpointPool, EndpointStatus, Lease, PoolPolicy

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


async def probe_async(base_url: str, timeout_s: float = 2.0) -> str:
    """:func:`probe` without blocking the event loop (a pool's probes run beside the requests)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            await client.get(base_url.rstrip("/") + "/models")
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
    """What an HTTP-client backend holds: a concurrency limit, one client per event loop and endpoint (the
    async clients are bound to the loop that made them) and, for a model with ``base_urls``, the
    :class:`~serving.backends.pool.EndpointPool` that picks the endpoint of each request."""

    DEFAULT_BASE_URL = ""
    SDK = ""  # the client package ("openai", "anthropic"): both share one exception hierarchy

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._limit = LoopSemaphore(spec.concurrency)
        self._clients = PerLoop(dict)  # this loop's {endpoint url: client}
        self.pool: EndpointPool | None = None
        if spec.base_urls:
            try:
                self.pool = EndpointPool(list(spec.base_urls), PoolPolicy.from_options(spec.options))
            except ValueError as exc:
                raise BackendError(spec.name, f"endpoint pool: {exc}") from exc
        self._probes: set[asyncio.Task[None]] = set()  # background probes: referenced until done

    @property
    def base_url(self) -> str:
        """Where requests go: the one endpoint, or a pool's endpoints joined (for listings)."""
        if self.pool is not None:
            return ", ".join(self.pool.urls)
        return self.spec.base_url or self.DEFAULT_BASE_URL

    def _make_client(self, base_url: str, max_retries: int) -> Any:
        raise NotImplementedError

    def _client(self, url: str) -> Any:
        clients = self._clients.get()
        client = clients.get(url)
        if client is None:
            # In a pool the next endpoint is the retry: the client retrying a dead one first would only
            # delay the move.
            retries = 0 if self.pool is not None else self.spec.max_retries
            client = clients[url] = self._make_client(url, retries)
        return client

    def _error(self, exc: Exception, partial: str, base_url: str | None = None) -> BackendError:
        return client_error(importlib.import_module(self.SDK), exc, spec=self.spec,
                            base_url=base_url or self.base_url, partial=partial)

    def _blame(self, error: BaseException) -> str:
        """Who a failed request's error is on: "request" (the request itself is bad: every endpoint would
        refuse it), "busy" (this endpoint is full right now) or "endpoint" (this endpoint is broken)."""
        cause = error.__cause__ if isinstance(error, BackendError) else error
        sdk = importlib.import_module(self.SDK)
        if isinstance(cause, sdk.APIStatusError):
            if cause.status_code in (400, 413, 422):
                return "request"
            if cause.status_code in (408, 409, 429):
                return "busy"
        return "endpoint"

    def probe_endpoints(self) -> str:
        """'' when the endpoint (a pool: any endpoint) answers HTTP now, else why not. A pool records each
        probe, so its endpoints' states are fresh for a listing."""
        if self.pool is None:
            return probe(self.base_url)
        problems = []
        for url in self.pool.urls:
            problem = probe(url, self.pool.policy.probe_timeout_s)
            self.pool.probe_result(url, problem)
            if problem:
                problems.append(problem)
        return "" if len(problems) < len(self.pool.urls) else "; ".join(problems)

    def endpoints(self) -> list[EndpointStatus]:
        """A pool's endpoints and their states (empty for a one-endpoint model)."""
        return self.pool.snapshot() if self.pool is not None else []

    # -- one request/stream skeleton for every HTTP SDK --------------------------------------------------
    #: What the end of a stream is called by the provider, for the message when a stream is cut short.
    STREAM_END = "a finish reason"

    def _request(self, messages: list[Message], params: SamplingParams | None) -> dict[str, Any]:
        raise NotImplementedError

    def _stream_texts(self, client: Any, request: dict[str, Any], end: StreamEnd) -> AsyncIterator[str]:
        """Text deltas of a streamed reply; sets ``end.reason`` when the provider says the reply is over
        (and ``end.completion_tokens`` when it counts them)."""
        raise NotImplementedError

    async def _create(self, client: Any, request: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _completion(self, response: Any, seconds: float) -> Completion:
        raise NotImplementedError

    def stream(self, messages: list[Message], params: SamplingParams | None = None) -> AsyncIterator[str]:
        return self.stream_reported(messages, params, report=CallReport())

    async def stream_reported(self, messages: list[Message], params: SamplingParams | None = None, *,
                              report: CallReport) -> AsyncIterator[str]:
        request = self._request(messages, params)
        received: list[str] = []
        async with self._limit.get():
            if self.pool is None:
                report.endpoint = self.base_url
                async for text in self._stream_once(self._client(self.base_url), self.base_url, request,
                                                    received, report):
                    yield text
                return
            tried: list[str] = []
            causes: list[str] = []
            while True:
                lease = await self._lease(tried, causes)
                client = self._client_for(lease)
                report.endpoint = lease.url
                finished = False
                try:
                    async for text in self._stream_once(client, lease.url, request, received, report):
                        if len(received) == 1:
                            lease.answered()
                        yield text
                    finished = True
                except BackendError as exc:
                    blame = self._blame(exc)
                    lease.release(exc.cause, fault=blame == "endpoint")
                    # After the first token the answer cannot move: a second endpoint would start it over.
                    if received or blame == "request":
                        raise
                    tried.append(lease.url)
                    causes.append(exc.cause)
                finally:
                    if finished:
                        lease.release()
                    else:
                        lease.cancel()  # the consumer stopped (or the error above already released it)
                if finished:
                    return

    async def _stream_once(self, client: Any, url: str, request: dict[str, Any], received: list[str],
                           report: CallReport) -> AsyncIterator[str]:
        end = StreamEnd()
        try:
            async for text in self._stream_texts(client, request, end):
                if text:
                    received.append(text)
                    yield text
            if end.reason is None:
                # The connection closed before the server said the answer was over: a cut, not an end.
                raise BackendError(self.name, f"stream from {url} ended before {self.STREAM_END} "
                                   f"(after {len(''.join(received))} characters)", partial="".join(received))
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001 - transport errors mid-stream too: never a silent cut
            raise self._error(exc, "".join(received), url) from exc
        report.completion_tokens = end.completion_tokens

    async def complete(self, messages: list[Message], params: SamplingParams | None = None) -> Completion:
        start = time.perf_counter()
        request = self._request(messages, params)
        async with self._limit.get():
            if self.pool is None:
                try:
                    response = await self._create(self._client(self.base_url), request)
                except BackendError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise self._error(exc, "") from exc
                return replace(self._completion(response, time.perf_counter() - start), endpoint=self.base_url)
            tried: list[str] = []
            causes: list[str] = []
            while True:
                lease = await self._lease(tried, causes)
                client = self._client_for(lease)
                try:
                    response = await self._create(client, request)
                except Exception as exc:  # noqa: BLE001
                    error = exc if isinstance(exc, BackendError) else self._error(exc, "", lease.url)
                    blame = self._blame(exc)
                    lease.release(error.cause, fault=blame == "endpoint")
                    if blame == "request":
                        if error is exc:
                            raise
                        raise error from exc
                    tried.append(lease.url)
                    causes.append(error.cause)
                    continue
                except BaseException:
                    lease.cancel()
                    raise
                lease.release()
                # The whole call's time, the failed endpoints included: what the caller waited.
                return replace(self._completion(response, time.perf_counter() - start), endpoint=lease.url)

    def _client_for(self, lease: Lease) -> Any:
        """The client for a leased endpoint. One that cannot be made (an API key variable not set) is the
        model's problem, not the endpoint's: the lease ends without blame and the error goes up."""
        try:
            return self._client(lease.url)
        except BaseException:
            lease.cancel()
            raise

    async def _lease(self, tried: list[str], causes: list[str]) -> Lease:
        """The endpoint for this request's next attempt; a down one only once it answers a probe. Raises
        when every endpoint has failed this request, with each one's cause."""
        assert self.pool is not None
        while True:
            lease = self.pool.acquire(exclude=tried)
            if lease is None:
                raise BackendError(self.name, f"no endpoint of the pool could answer: {'; '.join(causes)}")
            self._start_probes()
            if not lease.trial:
                return lease
            problem = await probe_async(lease.url, self.pool.policy.probe_timeout_s)
            self.pool.probe_result(lease.url, problem)
            if not problem:
                return lease
            lease.cancel()
            tried.append(lease.url)
            causes.append(problem)

    def _start_probes(self) -> None:
        assert self.pool is not None
        for url in self.pool.due_probes():
            task = asyncio.get_running_loop().create_task(self._background_probe(url))
            self._probes.add(task)
            task.add_done_callback(self._probes.discard)

    async def _background_probe(self, url: str) -> None:
        assert self.pool is not None
        try:
            problem = await probe_async(url, self.pool.policy.probe_timeout_s)
        except BaseException:
            self.pool.probe_abandoned(url)  # the loop is closing: nobody heard the answer
            raise
        self.pool.probe_result(url, problem)

    async def aclose(self) -> None:
        clients = self._clients.pop_current()
        for client in (clients or {}).values():
            await client.close()


@dataclass
class StreamEnd:
    """Filled in by a backend's stream when the provider ends the reply (finish or stop reason)."""

    reason: str | None = None
    completion_tokens: int | None = None  # where the provider counts them in the stream
