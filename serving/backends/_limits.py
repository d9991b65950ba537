"""Per-backend concurrency limit that survives being used from several event loops.

An ``asyncio.Semaphore`` binds to the first loop that waits on it; the Gradio app, the CLI and tests each
run their own loop, so one semaphore per loop (same size, ``spec.concurrency``) is kept.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any


class LoopSemaphore:
    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            sem = self._by_loop.get(loop)
            if sem is None:
                sem = self._by_loop[loop] = asyncio.Semaphore(self.size)
            return sem


class PerLoop:
    """One object per running event loop, made by ``factory`` (async HTTP clients bind to their loop)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self) -> Any:
        loop = asyncio.get_running_loop()
        with self._lock:
            obj = self._by_loop.get(loop)
            if obj is None:
                obj = self._by_loop[loop] = self._factory()
            return obj

    def pop_current(self) -> Any:
        """Forget (and return) this loop's object, for closing it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        with self._lock:
            return self._by_loop.pop(loop, None)
