"""Per-client rate limits (sliding window), so one client cannot flood the store with votes or burn the
models with battles. A limit of 0 means unlimited (the load benchmark runs 200 voters from one address).

One process (SQLite): the window lives in memory (:class:`SlidingWindowLimiter`). Several replicas sharing
a PostgreSQL store: the counts live in the store (:class:`StoreLimiter`), so a client that the load
balancer spreads over three replicas still gets its limit once, not three times."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from votes.store import StoreError, VoteStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimits:
    votes_per_minute: int = 30
    battles_per_minute: int = 30
    downloads_per_minute: int = 4

    def __post_init__(self) -> None:
        for name in ("votes_per_minute", "battles_per_minute", "downloads_per_minute"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 = unlimited), got {getattr(self, name)}")


class RateLimited(Exception):
    """The client went over its limit; the message says when it may try again."""


class SlidingWindowLimiter:
    """At most ``limit`` events per ``window_s`` per key. Thread-safe; memory bounded by active keys."""

    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, what: str = "requests") -> None:
        """Count one event for ``key``; raise :class:`RateLimited` (without counting it) when over."""
        self._take(key, what, count=True)

    def check(self, key: str, what: str = "requests") -> None:
        """Raise :class:`RateLimited` when ``key`` is over its limit, counting nothing: for an event that may
        still be refused for another reason (a vote is counted only once accepted, see :meth:`record`)."""
        self._take(key, what, count=False)

    def record(self, key: str) -> None:
        """Count one event that already happened (an accepted vote), whatever the current count."""
        if self.limit <= 0:
            return
        with self._lock:
            self._events.setdefault(key, deque()).append(self._clock())

    def _take(self, key: str, what: str, *, count: bool) -> None:
        if self.limit <= 0:
            return
        now = self._clock()
        with self._lock:
            q = self._events.setdefault(key, deque())
            while q and now - q[0] >= self.window_s:
                q.popleft()
            if len(q) >= self.limit:
                wait = self.window_s - (now - q[0])
                raise RateLimited(f"too many {what} from this client ({self.limit} per "
                                  f"{self.window_s:.0f} s); try again in {wait:.0f} s")
            if count:
                q.append(now)
            if len(self._events) > 10_000:
                self._evict(now)

    def _evict(self, now: float) -> None:
        stale = [k for k, q in self._events.items() if not q or now - q[-1] >= self.window_s]
        for k in stale:
            del self._events[k]


class Limiter(Protocol):
    limit: int

    def hit(self, key: str, what: str = "requests") -> None: ...

    def check(self, key: str, what: str = "requests") -> None: ...

    def record(self, key: str) -> None: ...


class StoreLimiter:
    """:class:`SlidingWindowLimiter`'s limits, counted in a store every replica shares (one statement per
    request; ``VoteStore.rate_take``). While the store cannot be reached, this process's own window takes
    over: an outage neither lifts the limits nor stops the arena."""

    # After the store failed to answer, this process counts alone for a while instead of making every
    # request wait for a connection attempt first.
    RETRY_STORE_S = 5.0

    def __init__(self, store: VoteStore, name: str, limit: int, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.name = name
        self.limit = limit
        self.window_s = window_s
        self.local = SlidingWindowLimiter(limit, window_s, clock)
        self._clock = clock
        self._store_down_until = 0.0

    def _store_down(self, exc: StoreError) -> None:
        if self._clock() >= self._store_down_until:
            log.warning("rate limit %s counted in this process only for %.0f s: %s", self.name,
                        self.RETRY_STORE_S, exc)
        self._store_down_until = self._clock() + self.RETRY_STORE_S

    def hit(self, key: str, what: str = "requests") -> None:
        self._take(key, what, count=True)

    def check(self, key: str, what: str = "requests") -> None:
        self._take(key, what, count=False)

    def record(self, key: str) -> None:
        if self.limit <= 0:
            return
        if self._clock() < self._store_down_until:
            self.local.record(key)
            return
        try:
            self.store.rate_record(f"{self.name}:{key}", self.window_s)
        except StoreError as exc:
            self._store_down(exc)
            self.local.record(key)

    def _take(self, key: str, what: str, *, count: bool) -> None:
        if self.limit <= 0:
            return
        if self._clock() < self._store_down_until:
            self.local._take(key, what, count=count)
            return
        try:
            wait = self.store.rate_take(f"{self.name}:{key}", self.limit, self.window_s, count=count)
        except StoreError as exc:
            self._store_down(exc)
            self.local._take(key, what, count=count)
            return
        if wait is not None:
            raise RateLimited(f"too many {what} from this client ({self.limit} per {self.window_s:.0f} s); "
                              f"try again in {max(wait, 1):.0f} s")


def make_limiter(store: VoteStore, name: str, limit: int, window_s: float = 60.0) -> Limiter:
    """The limiter for ``store``: counted in the store when replicas share it, else in this process."""
    if store.shares_state and limit > 0:
        return StoreLimiter(store, name, limit, window_s)
    return SlidingWindowLimiter(limit, window_s)
