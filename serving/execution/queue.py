"""A global limit on runs at once, with a bounded queue: 100 voters pressing Run must not starve the arena.

Slots are counted under a thread lock, so one queue serves async callers (the web app's event loop:
``await queue.run(fn, ...)`` waits for a slot without blocking the loop and runs ``fn`` in a worker
thread) and threads (``queue.run_sync``) alike. Waiters get slots first come, first served. When
``max_queued`` callers already wait, the next is refused at once with :class:`QueueFull`: better a clear
"busy, try again" than a queue that grows without end.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

CONCURRENCY_ENV = "CODEARENA_RUN_CONCURRENCY"
QUEUE_ENV = "CODEARENA_RUN_QUEUE"


class QueueFull(RuntimeError):
    """Too many runs are waiting already; the caller should say "busy, try again"."""


def default_concurrency() -> int:
    """Half the cores (at least one): the other half keeps the web app and the models answering."""
    return max(1, (os.cpu_count() or 2) // 2)


class RunQueue:
    def __init__(self, max_concurrent: int | None = None, max_queued: int = 32) -> None:
        max_concurrent = default_concurrency() if max_concurrent is None else max_concurrent
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        if max_queued < 0:
            raise ValueError(f"max_queued must not be negative, got {max_queued}")
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self._lock = threading.Lock()
        self._running = 0
        self._waiters: deque[Callable[[], None]] = deque()

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _refuse(self) -> QueueFull:
        return QueueFull(f"{self._running} runs are running and {len(self._waiters)} waiting (the most this "
                         "arena queues): try again in a moment")

    def _enter(self, waiter: Callable[[], None]) -> bool:
        """Take a slot now (False), or queue ``waiter`` (True): the caller waits until it is called, then
        holds the slot passed to it. QueueFull when the queue is full."""
        with self._lock:
            if self._running < self.max_concurrent and not self._waiters:
                self._running += 1
                return False
            if len(self._waiters) >= self.max_queued:
                raise self._refuse()
            self._waiters.append(waiter)
            return True

    def _release(self) -> None:
        with self._lock:
            if self._waiters:
                wake = self._waiters.popleft()  # the slot passes straight to the first waiter
            else:
                self._running -= 1
                return
        wake()

    async def run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Wait for a slot (without blocking the event loop), then run fn in a worker thread."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def handed() -> None:
            if fut.cancelled():  # the waiter left after the slot was passed to it: pass it on
                self._release()
            elif not fut.done():
                fut.set_result(None)

        def wake() -> None:
            loop.call_soon_threadsafe(handed)

        if self._enter(wake):
            try:
                await fut
            except asyncio.CancelledError:
                with self._lock:
                    queued = wake in self._waiters
                    if queued:
                        self._waiters.remove(wake)
                # Not queued any more: the slot was handed over, and handed() passes it on.
                raise
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        finally:
            self._release()

    def run_sync(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """The same for a thread: block until a slot is free, run fn here."""
        event = threading.Event()
        if self._enter(event.set):
            event.wait()
        try:
            return fn(*args, **kwargs)
        finally:
            self._release()


_default: RunQueue | None = None
_default_lock = threading.Lock()


def default_queue() -> RunQueue:
    """The process-wide queue; $CODEARENA_RUN_CONCURRENCY and $CODEARENA_RUN_QUEUE size it."""
    global _default
    with _default_lock:
        if _default is None:
            concurrency = os.environ.get(CONCURRENCY_ENV)
            queued = os.environ.get(QUEUE_ENV)
            try:
                _default = RunQueue(int(concurrency) if concurrency else None, int(queued) if queued else 32)
            except ValueError as exc:
                raise ValueError(f"${CONCURRENCY_ENV} / ${QUEUE_ENV}: {exc}") from exc
        return _default
