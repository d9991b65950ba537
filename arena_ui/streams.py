"""Two models answering at once: merge their async streams into snapshots the UI can render.

Both sides run as tasks; a failure of one is captured (with what it had written) rather than raised, so the
page can say which side failed and why. Snapshots are throttled: a websocket frame per token per side would
cost more than the generation on a small CPU model.
"""

from __future__ import annotations

import asyncio
import time
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


_END = object()


async def stream_pair(backend_a: Backend, backend_b: Backend, messages_a: Sequence[Message],
                      messages_b: Sequence[Message], params: SamplingParams | None = None, *,
                      min_interval_s: float = 0.05, timeout_s: float | None = None) -> AsyncIterator[PairSnapshot]:
    """Yield snapshots while both stream; the last one has ``done`` set. Cancels both if the caller stops."""
    queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue()

    async def pump(side: int, backend: Backend, messages: Sequence[Message]) -> None:
        clock, report = AnswerClock(), CallReport()
        try:
            async for delta in backend.stream_reported(list(messages), params, report=report):
                clock.saw(delta)
                await queue.put((side, delta))
            timings[side] = clock.timing(report)
        except BackendError as exc:
            await queue.put((side, exc))
        except Exception as exc:  # noqa: BLE001 - any backend bug must end as a shown error, not a hang
            await queue.put((side, BackendError(backend.name, f"{type(exc).__name__}: {exc}")))
        finally:
            await queue.put((side, _END))

    timings: list[AnswerTiming | None] = [None, None]
    tasks = [asyncio.create_task(pump(0, backend_a, messages_a)),
             asyncio.create_task(pump(1, backend_b, messages_b))]
    texts = ["", ""]
    done = [False, False]
    errors: list[str | None] = [None, None]
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last = 0.0
    try:
        while not all(done):
            wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                side, item = await asyncio.wait_for(queue.get(), wait)
            except asyncio.TimeoutError:
                for i in (0, 1):
                    if not done[i]:
                        done[i] = True
                        errors[i] = f"no complete answer within {timeout_s:.0f} s"
                break
            if item is _END:
                done[side] = True
            elif isinstance(item, BackendError):
                errors[side] = item.cause
            else:
                texts[side] += str(item)
            now = time.monotonic()
            if now - last >= min_interval_s and not all(done):
                last = now
                yield PairSnapshot(texts[0], texts[1], done[0], done[1], errors[0], errors[1])
        yield PairSnapshot(texts[0], texts[1], True, True, errors[0], errors[1],
                           timings[0] if errors[0] is None else None, timings[1] if errors[1] is None else None)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
