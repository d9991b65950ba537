"""Slow imports started early in a background thread, so that they overlap reading the battles.

``import choix`` costs ~0.4 s (it imports scipy.stats, which parses docstrings at import time) and is
needed only once the battles are read; reading a large file is mostly pyarrow work that releases the GIL.
:func:`start` begins such an import in a daemon thread; :func:`wait` joins it before the real import, so
that the main thread never imports the same package concurrently with it (concurrent imports of one
package's modules can deadlock into a half-initialised module). A failed background import is not
remembered: the real import then fails, or succeeds, as it would have.
"""

from __future__ import annotations

import importlib
import sys
import threading

_threads: dict[str, threading.Thread] = {}
_lock = threading.Lock()


def _load(module: str) -> None:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - the caller's own import reports it, in the caller's thread
        pass


def start(module: str) -> None:
    """Begin importing ``module`` in the background (once; a no-op when it is already imported)."""
    with _lock:
        if module in sys.modules or module in _threads:
            return
        t = threading.Thread(target=_load, args=(module,), name=f"prefetch-{module}", daemon=True)
        _threads[module] = t
        t.start()


def wait(module: str) -> None:
    """Block until a background import of ``module`` started by :func:`start` has finished."""
    t = _threads.get(module)
    if t is not None:
        t.join()
