"""Several endpoints serving one model (``base_urls``: e.g. several ``vllm serve`` or llama.cpp servers):
which one takes the next request, and which ones are down.

Rules, in the order they apply:

- A request goes to the healthy endpoint with the fewest requests in flight (from this process); among
  equals, to the one picked least recently, so sequential requests alternate.
- An endpoint that fails a request (cannot be reached, times out, answers 5xx, cuts a stream) is *down*:
  it gets no requests until a probe (``GET {url}/models``) answers again. Probes wait a backoff that
  doubles with each failure in a row (``retry_s``, ``2 * retry_s``, ... up to ``retry_max_s``); a success
  (a first token, a whole reply) resets it.
- While another endpoint is healthy, a down endpoint is probed in the background once its wait is over, so
  no request pays for it. When every endpoint is down, a request probes them itself (soonest due first) and
  takes the first that answers: a request that could only fail tries rather than fails unheard.

The state is plain counters under one ``threading.Lock`` and no asyncio objects, so one pool serves every
event loop and thread of the process (the arena's coroutines, the CLI's one loop). The clock is a
parameter, so the backoff rules are tested without waiting.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

# Option names in models.toml's [models.options] for a pool's backoff.
RETRY_OPTION, RETRY_MAX_OPTION = "endpoint_retry_s", "endpoint_retry_max_s"
STATES: tuple[str, ...] = ("healthy", "down", "probing")


@dataclass(frozen=True)
class PoolPolicy:
    retry_s: float = 2.0  # wait before the first probe of an endpoint that just failed
    retry_max_s: float = 60.0  # the longest wait, however many failures in a row
    probe_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        for name in ("retry_s", "retry_max_s", "probe_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.retry_max_s < self.retry_s:
            raise ValueError(f"retry_max_s ({self.retry_max_s}) must be at least retry_s ({self.retry_s})")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> PoolPolicy:
        """From a model's options (``endpoint_retry_s``, ``endpoint_retry_max_s``); defaults otherwise."""
        retry = options.get(RETRY_OPTION, cls.retry_s)
        return cls(retry_s=retry, retry_max_s=options.get(RETRY_MAX_OPTION, max(cls.retry_max_s, retry)))

    def wait_s(self, failures: int) -> float:
        """The wait before the next probe after ``failures`` failures in a row (1 or more)."""
        return min(self.retry_max_s, self.retry_s * 2.0 ** min(max(failures, 1) - 1, 60))


@dataclass(frozen=True)
class EndpointStatus:
    """One endpoint as ``codearena models`` shows it. Counters are this process's own."""

    url: str
    state: str  # healthy | down | probing
    in_flight: int
    served: int  # requests answered in full
    failed: int  # requests and probes that failed, in all
    failures_in_row: int
    last_error: str | None
    retry_in_s: float | None  # down: seconds until its next probe (0: due now)


class _Endpoint:
    def __init__(self, url: str) -> None:
        self.url = url
        self.in_flight = 0
        self.served = 0
        self.failed = 0
        self.failures_in_row = 0
        self.last_error: str | None = None
        self.down_until: float | None = None  # None: healthy
        self.probing = False
        self.last_pick = 0


class Lease:
    """One request's hold on one endpoint: counted in flight until :meth:`release`. ``trial``: the endpoint
    was down and must answer a probe before the request is sent."""

    def __init__(self, pool: EndpointPool, endpoint: _Endpoint, trial: bool) -> None:
        self._pool, self._ep, self.trial = pool, endpoint, trial
        self._released = False

    @property
    def url(self) -> str:
        return self._ep.url

    def answered(self) -> None:
        """The endpoint is answering (a first token, a whole reply): healthy again, backoff reset."""
        self._pool._answered(self._ep)

    def release(self, error: str | None = None, *, fault: bool = True) -> None:
        """The request is over. ``error``: why it failed; ``fault``: the endpoint is to blame (it goes down),
        rather than the request (a bad request, a rate limit). Only the first call counts."""
        if self._released:
            return
        self._released = True
        self._pool._release(self._ep, error, fault)

    def cancel(self) -> None:
        """The request stopped without an outcome (its caller went away, its probe failed): no longer in
        flight, and neither served nor failed. A no-op after :meth:`release`."""
        if self._released:
            return
        self._released = True
        self._pool._cancel(self._ep)


class EndpointPool:
    def __init__(self, urls: Sequence[str], policy: PoolPolicy | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not urls:
            raise ValueError("a pool needs at least one endpoint")
        if len(set(urls)) != len(urls):
            raise ValueError(f"an endpoint is listed twice: {', '.join(urls)}")
        self.policy = policy or PoolPolicy()
        self._clock = clock
        self._endpoints = [_Endpoint(u) for u in urls]
        self._by_url = {e.url: e for e in self._endpoints}
        self._picks = 0
        self._lock = threading.Lock()

    @property
    def urls(self) -> list[str]:
        return [e.url for e in self._endpoints]

    # -- choosing ----------------------------------------------------------------------------------------
    def acquire(self, exclude: Collection[str] = ()) -> Lease | None:
        """A lease on the endpoint for the next request, skipping ``exclude`` (those this request already
        tried); None when every endpoint is excluded. A healthy endpoint when there is one, else a down one
        as a trial (soonest due first)."""
        with self._lock:
            candidates = [e for e in self._endpoints if e.url not in exclude]
            if not candidates:
                return None
            healthy = [e for e in candidates if e.down_until is None]
            if healthy:
                ep = min(healthy, key=lambda e: (e.in_flight, e.last_pick))
                trial = False
            else:
                ep = min(candidates, key=lambda e: (e.down_until or 0.0, e.in_flight, e.last_pick))
                trial = True
            self._picks += 1
            ep.last_pick = self._picks
            ep.in_flight += 1
            return Lease(self, ep, trial)

    def due_probes(self) -> list[str]:
        """Down endpoints whose wait is over and that nobody probes yet, claimed for probing: the caller
        probes each and reports with :meth:`probe_result`. Only while another endpoint is healthy (when
        none is, requests probe themselves)."""
        now = self._clock()
        with self._lock:
            if not any(e.down_until is None for e in self._endpoints):
                return []
            due = [e for e in self._endpoints
                   if e.down_until is not None and e.down_until <= now and not e.probing]
            for e in due:
                e.probing = True
            return [e.url for e in due]

    def probe_result(self, url: str, error: str | None) -> None:
        """A probe's outcome: '' or None, the endpoint answers (it takes requests again); else why not (it
        stays down, its wait doubled). Also how ``codearena models`` records its own probes."""
        with self._lock:
            ep = self._by_url[url]
            ep.probing = False
            if error:
                self._fail(ep, error)
            else:
                # Answering a probe is not answering a request: the backoff keeps growing until one succeeds,
                # so an endpoint that lists models but fails every request is not retried at full rate.
                ep.down_until = None

    def probe_abandoned(self, url: str) -> None:
        """A probe that never finished (its event loop closed): someone may claim it again."""
        with self._lock:
            self._by_url[url].probing = False

    # -- what leases report --------------------------------------------------------------------------------
    def _answered(self, ep: _Endpoint) -> None:
        with self._lock:
            ep.down_until = None
            ep.failures_in_row = 0

    def _release(self, ep: _Endpoint, error: str | None, fault: bool) -> None:
        with self._lock:
            ep.in_flight -= 1
            if error is None:
                ep.served += 1
                ep.down_until = None
                ep.failures_in_row = 0
            elif fault:
                self._fail(ep, error)
            else:
                ep.last_error = error

    def _cancel(self, ep: _Endpoint) -> None:
        with self._lock:
            ep.in_flight -= 1

    def _fail(self, ep: _Endpoint, error: str) -> None:
        ep.failed += 1
        ep.failures_in_row += 1
        ep.last_error = error
        ep.down_until = self._clock() + self.policy.wait_s(ep.failures_in_row)

    # -- looking -------------------------------------------------------------------------------------------
    def snapshot(self) -> list[EndpointStatus]:
        now = self._clock()
        with self._lock:
            return [EndpointStatus(
                url=e.url,
                state="probing" if e.probing else ("healthy" if e.down_until is None else "down"),
                in_flight=e.in_flight, served=e.served, failed=e.failed, failures_in_row=e.failures_in_row,
                last_error=e.last_error,
                retry_in_s=None if e.down_until is None else max(0.0, e.down_until - now),
            ) for e in self._endpoints]
