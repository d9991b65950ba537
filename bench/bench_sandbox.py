"""Benchmark the sandbox: what a run costs over a bare subprocess, and runs per second under the queue.

  1. Overhead per run: the same Python program (hello world from a file) run N times
       a. as a bare subprocess of the same interpreter and flags (the floor),
       b. through run_code() in the bubblewrap sandbox (extraction aside: bwrap, the init, the limits,
          output capture and the CodeRun),
     alternately, and the median and p90 of each; the goal is under 50 ms added per run.
     The same for node where it is available.
  2. Throughput: M runs of a small CPU-bound program (about 20 ms of CPU) submitted at once through a
     RunQueue with 1 and 2 concurrent slots: runs per second, and how long the last one waited.
  3. The arena's vote latency while runs execute: `codearena serve` in its own process over replayed
     answers whose code burns about a second of CPU; V voters (gradio_client sessions) send a prompt and
     vote, R rounds each, first with no run going (the baseline), then while R=20 other sessions have
     pressed Run at once (the runs queue behind the arena's --run-concurrency slots). Vote latency p50/p99
     for both, how many of the timed votes really overlapped a run, and the runs' own times.

    python bench/bench_sandbox.py                 # N=30, M=40, 20 runs, 4 voters x 6 rounds
    python bench/bench_sandbox.py --runs 50 --burst 80 --arena-runs 40 --voters 8
    python bench/bench_sandbox.py --only arena
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
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


# About a second of CPU in the sandbox: long enough that 20 of them keep the run slots busy for a while.
BUSY_PROGRAM = "s = 0\nfor i in range(12_000_000):\n    s += i\nprint(s)\n"
ARENA_PROMPT = "Sum the integers below twelve million in Python."
ARENA_MODELS = ("busy-a", "busy-b")


def _arena_files(folder: Path) -> tuple[Path, Path]:
    from arena_ui.replay_config import write_replay_models

    questions = folder / "question.jsonl"
    questions.write_text(json.dumps({"question_id": "q1", "language": "python",
                                     "turns": [{"content": ARENA_PROMPT}]}) + "\n", encoding="utf-8")
    answers = folder / "model_answer"
    answers.mkdir()
    for model in ARENA_MODELS:
        row = {"question_id": "q1", "model_id": model,
               "choices": [{"turns": [{"content": f"Like this:\n\n```python\n{BUSY_PROGRAM}```\n"}]}]}
        (answers / f"{model}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    return write_replay_models(folder / "models.toml", answers, questions, list(ARENA_MODELS)), questions


def _start_arena(folder: Path, queue: int, concurrency: int | None) -> tuple[subprocess.Popen[str], str]:
    from bench.bench_load import free_port

    toml, questions = _arena_files(folder)
    port = free_port()
    cmd = [sys.executable, "-m", "codearena", "serve", "--models", str(toml), "--prompts", str(questions),
           "--db", str(folder / "votes.db"), "--port", str(port), "--votes-per-minute", "0",
           "--battles-per-minute", "0", "--runs-per-minute", "0", "--run-queue", str(queue)]
    if concurrency is not None:
        cmd += ["--run-concurrency", str(concurrency)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    probed = False
    while time.monotonic() < deadline and proc.stdout is not None:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        if "code runs:" in line or "Running code is off" in line:
            probed = True
            print(f"  server: {line.strip()}")
        if probed:
            # Keep draining its output so a full pipe never blocks the server.
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, f"http://127.0.0.1:{port}/"
    proc.kill()
    raise SystemExit(f"the arena did not start: {proc.stdout.read() if proc.stdout else ''}")


def _voter(url: str, rounds: int, start: threading.Barrier, out: list[tuple[float, float]], errors: list[str]) -> None:
    """rounds x (send, vote); appends (vote latency, vote end time)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    start.wait()
    for _ in range(rounds):
        try:
            client.submit(ARENA_PROMPT, api_name="/send").result(timeout=300)
            t0 = time.perf_counter()
            status = client.predict(api_name="/vote_a")[0]
            out.append((time.perf_counter() - t0, time.perf_counter()))
            if "Thanks" not in status:
                errors.append(f"vote: {status}")
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(f"{type(exc).__name__}: {exc}")


def _runner(url: str, ready: threading.Barrier, go: threading.Event, out: list[tuple[float, float, str]],
            errors: list[str]) -> None:
    """One session that opens a battle, then (at the signal) presses Run: appends (seconds, end time, panel)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    try:
        client.submit(ARENA_PROMPT, api_name="/send").result(timeout=300)
    finally:
        ready.wait()
    go.wait()
    t0 = time.perf_counter()
    try:
        panel = client.predict(api_name="/run_a")[0]
        out.append((time.perf_counter() - t0, time.perf_counter(), panel))
        if "exit code 0" not in panel:
            errors.append(f"run: {panel[:200]}")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"run {type(exc).__name__}: {exc}")


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _votes(url: str, voters: int, rounds: int) -> tuple[list[tuple[float, float]], list[str]]:
    out: list[tuple[float, float]] = []
    errors: list[str] = []
    start = threading.Barrier(voters + 1)
    threads = [threading.Thread(target=_voter, args=(url, rounds, start, out, errors), daemon=True)
               for _ in range(voters)]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join(timeout=900)
    return out, errors


def arena_vote_latency(n_runs: int, voters: int, rounds: int, concurrency: int | None = None) -> None:
    from bench.bench_load import share_tls_contexts

    print(f"== the arena's vote latency while {n_runs} runs execute ({voters} voters x {rounds} rounds of "
          f"send + vote; {os.cpu_count()} cores)")
    share_tls_contexts()
    with tempfile.TemporaryDirectory(prefix="codearena-bench-runs-") as tmp:
        server, url = _start_arena(Path(tmp), queue=max(32, n_runs), concurrency=concurrency)
        try:
            idle, errors = _votes(url, voters, rounds)
            lat = [v for v, _ in idle]
            print(f"  no run going:        vote p50 {1000 * _pct(lat, 50):6.0f} ms  p99 {1000 * _pct(lat, 99):6.0f} ms "
                  f"({len(lat)} votes)")
            runs: list[tuple[float, float, str]] = []
            ready = threading.Barrier(n_runs + 1)
            go = threading.Event()
            runners = [threading.Thread(target=_runner, args=(url, ready, go, runs, errors), daemon=True)
                       for _ in range(n_runs)]
            for t in runners:
                t.start()
            ready.wait()  # every runner has a complete battle
            go.set()
            time.sleep(0.5)  # the presses are in: the slots are busy and the rest queue
            busy, more = _votes(url, voters, rounds)
            errors += more
            for t in runners:
                t.join(timeout=900)
            last_run = max((end for _, end, _ in runs), default=0.0)
            during = [v for v, end in busy if end <= last_run]
            print(f"  while runs execute:  vote p50 {1000 * _pct(during, 50):6.0f} ms  "
                  f"p99 {1000 * _pct(during, 99):6.0f} ms "
                  f"({len(during)} of {len(busy)} votes ended before the last run did)")
            took = [s for s, _, _ in runs]
            print(f"  the {len(runs)} runs:         press -> output p50 {_pct(took, 50):5.1f} s  "
                  f"max {max(took, default=0):5.1f} s "
                  "(queued behind the run slots)")
            if errors:
                print(f"  errors: {len(errors)}; first: {errors[:3]}")
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="runs per overhead measurement")
    parser.add_argument("--burst", type=int, default=40, help="runs submitted at once for the throughput")
    parser.add_argument("--arena-runs", type=int, default=20, help="runs executing while votes are timed")
    parser.add_argument("--voters", type=int, default=4, help="voters timed in the arena measurement")
    parser.add_argument("--rounds", type=int, default=6, help="send + vote rounds per voter")
    parser.add_argument("--arena-concurrency", type=int, default=None,
                        help="the arena's --run-concurrency (default: its own, half the cores)")
    parser.add_argument("--only", choices=("overhead", "throughput", "arena"), default=None,
                        help="one measurement only")
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
    if args.only in (None, "overhead"):
        overhead(args.runs)
    if args.only in (None, "throughput"):
        throughput(args.burst)
    if args.only in (None, "arena"):
        arena_vote_latency(args.arena_runs, args.voters, args.rounds, args.arena_concurrency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
