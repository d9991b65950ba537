"""BLAS threads off for batched small solves.

A batch of 100 solves of 100x100 systems takes ~3 ms on one thread and 200 ms (up to seconds when the
machine is busy) when OpenBLAS starts its thread pool for each tiny matrix; so the batched fits run
single-threaded. threadpoolctl is optional: without it the math is the same, only slower.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()  # scanning the loaded libraries costs ~5 ms: do it once


def single_blas_thread() -> AbstractContextManager[object]:
    controller = _controller()
    if controller is None:
        return nullcontext()
    return controller.limit(limits=1, user_api="blas")
