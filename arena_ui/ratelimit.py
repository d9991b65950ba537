"""Per-client rate limits (sliding window), so one client cannot flood the store with votes or burn the
models with battles. A limit of 0 means unlimited (the load benchmark runs 200 voters from one address)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


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
