"""Two models answering at once: merge their async streams into snapshots the UI can render.

Both sides run as tasks; a failure of one is captured (with what it had written) rather than raised, so the
page can say which side failed and why. Snapshots are throttled: a page update per token per side would
cost more than the generation on a small CPU model.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from serving.backends.base import Backend, BackendError, CallReport, Message, SamplingParams
from serving.latency import AnswerClock
from votes.latency import AnswerTiming


@dataclass(frozen=True)
class PairSnapshot:
    text_a: str
    text_b: str
    done_a: bool
    done_b: bool
    error_a: str | None = None
    error_b: str | None = None
    # On the last snapshot, each side's latency (None for a side that failed or was cut off by the timeout).
    timing_a: AnswerTiming | None = None
    timing_b: AnswerTiming | None = None

    @property
    def done(self) -> bool:
        return self.done_a and self.done_b

    @property
    def failed(self) -> bool:
        return self.error_a is not None or self.error_b is not None


async def stream_pair(backend_a: Backend, backend_b: Backend, messages_a: Sequence[Message],
                      messages_b: Sequence[Message], params: SamplingParams | None = None, *,
                      min_interval_s: float = 0.05, timeout_s: float | None = None) -> AsyncIterator[PairSnapshot]:
    """Yield snapshots while both stream; the last one has ``done`` set. Cancels both if the caller stops.

    The sides append their pieces and wake this loop, which then lets ``min_interval_s`` pass since the last
    snapshot before it takes one: its own work is per snapshot, not per token (100 battles at ~250 tokens/s
    a side are 50,000 tokens a second, and a queue hand-off plus a timeout task per token cost more than the
    page updates themselves). One timer enforces ``timeout_s``.
    """
    loop = asyncio.get_running_loop()
    parts: list[list[str]] = [[], []]
    done = [False, False]
    errors: list[str | None] = [None, None]
    timings: list[AnswerTiming | None] = [None, None]
    wake = asyncio.Event()
    pause_over = asyncio.Event()
    timed_out = False

    async def pump(side: int, backend: Backend, messages: Sequence[Message]) -> None:
        clock, report = AnswerClock(), CallReport()
        try:
            async for delta in backend.stream_reported(list(messages), params, report=report):
                clock.saw(delta)
                parts[side].append(str(delta))
                wake.set()
            timings[side] = clock.timing(report)
        except BackendError as exc:
            errors[side] = exc.cause
        except Exception as exc:  # noqa: BLE001 - any backend bug must end as a shown error, not a hang
            errors[side] = BackendError(backend.name, f"{type(exc).__name__}: {exc}").cause
        finally:
            done[side] = True
            wake.set()
            pause_over.set()  # an answer is complete: the page shows it now, not at the end of a pause

    def deadline() -> None:
        nonlocal timed_out
        timed_out = True
        wake.set()
        pause_over.set()

    texts = ["", ""]

    def snapshot(final: bool = False) -> PairSnapshot:
        for i in (0, 1):
            if parts[i]:
                texts[i] += "".join(parts[i])
                parts[i].clear()
        if not final:
            return PairSnapshot(texts[0], texts[1], done[0], done[1], errors[0], errors[1])
        return PairSnapshot(texts[0], texts[1], True, True, errors[0], errors[1],
                            timings[0] if errors[0] is None else None, timings[1] if errors[1] is None else None)

    tasks = [asyncio.create_task(pump(0, backend_a, messages_a)),
             asyncio.create_task(pump(1, backend_b, messages_b))]
    timer = None if timeout_s is None else loop.call_later(timeout_s, deadline)
    last = -math.inf
    shown_done = 0  # how many sides had ended at the last snapshot
    try:
        while not all(done) and not timed_out:
            await wake.wait()
            gap = min_interval_s - (loop.time() - last)
            # More pieces arrive during the pause: one larger snapshot. A side that has ended since the last
            # snapshot is shown at once; one that ends during the pause cuts it short.
            if gap > 0 and sum(done) == shown_done and not timed_out:
                pause_over.clear()
                handle = loop.call_later(gap, pause_over.set)
                await pause_over.wait()
                handle.cancel()
            wake.clear()  # what woke this loop, and what came during the pause, go into this snapshot
            if all(done) or timed_out:
                break
            last, shown_done = loop.time(), sum(done)
            yield snapshot()
        if timed_out:
            for i in (0, 1):
                if not done[i]:
                    done[i] = True
                    errors[i] = f"no complete answer within {timeout_s:.0f} s"
        yield snapshot(final=True)
    finally:
        if timer is not None:
            timer.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
