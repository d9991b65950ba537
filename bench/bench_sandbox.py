"""Benchmark the sandbox: what a run costs over a bare subprocess, and runs per second under the queue.

  1. Overhead per run: the same Python program (hello world from a file) run N times
       a. as a bare subprocess of the same interpreter and flags (the floor),
       b. through run_code() in the bubblewrap sandbox (extraction aside: bwrap, the init, the limits,
          output capture and the CodeRun),
     alternately, and the median and p90 of each; the goal is under 50 ms added per run.
     The same for node where it is available.
  2. Throughput: M runs of a small CPU-bound program (about 20 ms of CPU) submitted at once through a
     RunQueue with 1 and 2 concurrent slots: runs per second, and how long the last one waited.
  3. The arena's vote latency while runs execute needs the UI and is measured there (not here).

    python bench/bench_sandbox.py                 # N=30, M=40
    python bench/bench_sandbox.py --runs 50 --burst 80
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serving.execution import RunQueue, list_runners, run_code, sandbox_status  # noqa: E402
from serving.execution.runners import tools_for  # noqa: E402
from serving.execution.sandbox import sandbox_python  # noqa: E402
from votes.runs import RunLimits  # noqa: E402

HELLO = {"python": "print('hello')\n", "javascript": "console.log('hello')\n"}
CPU_PROGRAM = "s = 0\nfor i in range(400_000):\n    s += i * i\nprint(s)\n"


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
    return f"median {1000 * statistics.median(values):6.1f} ms  p90 {1000 * p90:6.1f} ms"


def bare(argv: list[str], workdir: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(argv, cwd=workdir, capture_output=True, check=True, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return times


def sandboxed(code: str, language: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        run = run_code(code, language)
        times.append(time.perf_counter() - t)
        if run.status != "ok":
            raise SystemExit(f"sandboxed {language} run failed: {run.status}: {run.stderr}")
    return times


def overhead(n: int) -> None:
    print(f"== overhead per run (N={n}, after one warm-up run each)")
    with tempfile.TemporaryDirectory() as work:
        Path(work, "main.py").write_text(HELLO["python"])
        Path(work, "main.js").write_text(HELLO["javascript"])
        python = sandbox_python()
        assert not isinstance(python, str), python
        commands = {"python": [python.path, "-u", "-E", "-s", "main.py"]}
        node = tools_for("javascript")
        if not isinstance(node, str):
            commands["javascript"] = [node["node"].path, "main.js"]
        for language, argv in commands.items():
            bare(argv, work, 1)
            sandboxed(HELLO[language], language, 1)
            # Alternated, so that a neighbour's load hits both sides alike (this box is shared).
            floor, boxed = [], []
            for _ in range(n):
                floor += bare(argv, work, 1)
                boxed += sandboxed(HELLO[language], language, 1)
            added = statistics.median(boxed) - statistics.median(floor)
            print(f"  {language:<10} bare subprocess  {_ms(floor)}")
            print(f"  {language:<10} sandboxed        {_ms(boxed)}")
            verdict = "goal met" if added < 0.050 else "OVER the 50 ms goal"
            print(f"  {language:<10} added            {1000 * added:6.1f} ms (median; {verdict})")


async def _burst(m: int, concurrency: int) -> tuple[float, float, int]:
    queue = RunQueue(max_concurrent=concurrency, max_queued=m)
    limits = RunLimits(wall_s=10.0, cpu_s=10.0)
    finished: list[float] = []
    t0 = time.perf_counter()

    async def one() -> str:
        run = await queue.run(run_code, CPU_PROGRAM, "python", limits=limits)
        finished.append(time.perf_counter() - t0)
        return run.status

    statuses = await asyncio.gather(*(one() for _ in range(m)))
    wall = time.perf_counter() - t0
    return wall, max(finished), sum(s != "ok" for s in statuses)


def throughput(m: int) -> None:
    cores = os.cpu_count()
    print(f"== throughput: {m} runs of a ~20 ms CPU-bound Python program at once ({cores} cores here)")
    for concurrency in (1, 2):
        wall, last, failed = asyncio.run(_burst(m, concurrency))
        print(f"  max_concurrent={concurrency}: {m / wall:5.1f} runs/s, all done in {wall:5.2f} s, "
              f"the last finished {last:5.2f} s after submission" + (f", {failed} not ok" if failed else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="runs per overhead measurement")
    parser.add_argument("--burst", type=int, default=40, help="runs submitted at once for the throughput")
    args = parser.parse_args()
    status = sandbox_status()
    if not status.available:
        print(f"no sandbox here: {status.reason}")
        return 1
    print(f"sandbox: {status.version}, code runs as uid {status.host_uid}; python {status.python}")
    t = time.perf_counter()
    runners = list_runners()
    print(f"runner probe (once per process): {time.perf_counter() - t:.2f} s for {len(runners)} runners, "
          f"available: {', '.join(r.language for r in runners if r.available)}")
    overhead(args.runs)
    throughput(args.burst)
    print("== vote latency while runs execute: measured with the UI (not in this script)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
