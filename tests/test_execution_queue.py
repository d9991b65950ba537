"""The run queue: at most N runs at once, a bounded wait, a clear refusal past it, and an event loop that
keeps serving while runs execute."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from serving.execution import QueueFull, RunQueue, run_answer_async
from tests.sandbox_helpers import require_runner
from votes.runs import RunLimits


class Gauge:
    """Counts calls running at once; each call holds until released."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.release = threading.Event()

    def work(self, value: int) -> int:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        self.release.wait(10)
        with self.lock:
            self.now -= 1
        return value


async def _until(predicate, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "condition never came true"
        await asyncio.sleep(0.005)


def test_no_more_than_max_concurrent_run_at_once() -> None:
    async def main() -> list[int]:
        queue = RunQueue(max_concurrent=2, max_queued=10)
        gauge = Gauge()
        tasks = [asyncio.create_task(queue.run(gauge.work, i)) for i in range(6)]
        await _until(lambda: gauge.now == 2 and queue.waiting == 4)
        gauge.release.set()
        results = await asyncio.gather(*tasks)
        assert gauge.peak == 2 and queue.running == 0 and queue.waiting == 0
        return results

    assert asyncio.run(main()) == list(range(6))  # first come, first served; every result arrives


def test_a_full_queue_refuses_at_once() -> None:
    async def main() -> None:
        queue = RunQueue(max_concurrent=1, max_queued=2)
        gauge = Gauge()
        tasks = [asyncio.create_task(queue.run(gauge.work, i)) for i in range(3)]
        await _until(lambda: gauge.now == 1 and queue.waiting == 2)
        with pytest.raises(QueueFull, match="try again"):
            await queue.run(gauge.work, 99)
        with pytest.raises(QueueFull):
            queue.run_sync(gauge.work, 99)
        gauge.release.set()
        assert await asyncio.gather(*tasks) == [0, 1, 2]

    asyncio.run(main())


def test_a_cancelled_waiter_gives_its_place_back() -> None:
    async def main() -> None:
        queue = RunQueue(max_concurrent=1, max_queued=5)
        gauge = Gauge()
        first = asyncio.create_task(queue.run(gauge.work, 1))
        second = asyncio.create_task(queue.run(gauge.work, 2))
        await _until(lambda: gauge.now == 1 and queue.waiting == 1)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert queue.waiting == 0
        gauge.release.set()
        assert await first == 1
        assert await queue.run(gauge.work, 3) == 3  # the slot is free again
        assert queue.running == 0

    asyncio.run(main())


def test_threads_and_coroutines_share_the_slots() -> None:
    queue = RunQueue(max_concurrent=1, max_queued=5)
    gauge = Gauge()
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(queue.run_sync(gauge.work, 7)))
    thread.start()

    async def main() -> int:
        await _until(lambda: gauge.now == 1)
        task = asyncio.create_task(queue.run(gauge.work, 8))
        await _until(lambda: queue.waiting == 1)
        assert gauge.peak == 1
        gauge.release.set()
        return await task

    assert asyncio.run(main()) == 8
    thread.join(10)
    assert results == [7] and gauge.peak == 1


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        RunQueue(max_concurrent=0)
    with pytest.raises(ValueError):
        RunQueue(max_concurrent=1, max_queued=-1)


def test_the_event_loop_keeps_serving_while_sandboxed_runs_execute() -> None:
    require_runner("python")

    async def main() -> tuple[list, int]:
        queue = RunQueue(max_concurrent=1, max_queued=10)
        limits = RunLimits(wall_s=5.0, cpu_s=5.0, max_processes=16)
        answer = "```python\nimport time\ntime.sleep(0.3)\nprint('done')\n```\n"
        runs = asyncio.gather(*(run_answer_async(answer, limits=limits, queue=queue) for _ in range(3)))
        ticks = 0
        task = asyncio.ensure_future(runs)
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return await task, ticks

    results, ticks = asyncio.run(main())
    assert [r.status for r in results] == ["ok"] * 3 and all(r.stdout == "done\n" for r in results)
    # Three 0.3 s runs one after another: a loop that was never blocked ticked all along (a blocked
    # one would tick a handful of times at most).
    assert ticks >= 20
