"""Load benchmark of the arena: N simulated voters, each a ``gradio_client`` session doing what a user does
(pick a random prompt, send, wait for both answers, vote), against ``codearena serve`` in its own process
with the replay backend over the real Arena-Hard answers.

Prints votes/s and p50/p99 latencies, then checks that every vote the server acknowledged is in the
store, one row each (exit status 1 if any is missing). Goal on a 2-core machine: 200 concurrent voters,
nothing lost.

    python bench/bench_load.py --voters 200 --rounds 1

Open loop (``--rate``): battles arrive at a fixed rate, not all at once; each is answered (streamed at
``--chars-per-s``) and voted on, against ``--replicas N`` serve processes behind HAProxy (sticky sessions,
tests/replica_helpers.py) on an SQLite file or a PostgreSQL database (``--store``). The simulated voters
speak Gradio's queue protocol on one asyncio loop (tests/lean_client.py; ``--client gradio`` for
gradio_client). Prints acknowledged votes/s, p50/p99 vote and prompt-pick latency, the stream slowdown (an
answer's wall time over its text's own pace) and the CPU the arena and the simulated voters used:

    python bench/bench_load.py --rate 5 --duration 30 --replicas 3 --store postgres --chars-per-s 1000
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arena_ui.replay_config import write_replay_models  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "arena-hard-v0.1"
DEFAULT_MODELS = ["gpt-4o-2024-05-13", "claude-3-5-sonnet-20240620", "llama-3.1-70b-instruct",
                  "gemma-2-9b-it", "qwen2.5-72b-instruct", "mixtral-8x7b-instruct-v0.1"]
VOTE_APIS = {"/vote_a": "model_a", "/vote_b": "model_b", "/vote_tie": "tie", "/vote_bothbad": "tie (bothbad)"}
REVEAL_RE = re.compile(r"Model A: \*\*(.+?)\*\* · Model B: \*\*(.+?)\*\*")


@dataclass
class VoterLog:
    battle_s: list[float] = field(default_factory=list)
    vote_s: list[float] = field(default_factory=list)
    cast: list[tuple[str, str, str, str]] = field(default_factory=list)  # (prompt, model_a, model_b, winner)
    errors: list[str] = field(default_factory=list)


def share_tls_contexts() -> None:
    """gradio_client opens a new httpx client per request, and each builds a TLS context (loading the CA
    bundle) even for plain http://127.0.0.1: measured as the top cost of 200 simulated voters, which then
    throttled themselves rather than the server. One context per argument set is shared instead; nothing
    here speaks TLS."""
    original = ssl.create_default_context
    cache: dict[tuple, ssl.SSLContext] = {}
    lock = threading.Lock()

    def shared(purpose=ssl.Purpose.SERVER_AUTH, *, cafile=None, capath=None, cadata=None):
        key = (purpose, str(cafile), str(capath), cadata if isinstance(cadata, str) else None)
        with lock:
            if key not in cache:
                cache[key] = original(purpose, cafile=cafile, capath=capath, cadata=cadata)
            return cache[key]

    ssl.create_default_context = shared


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, models_toml: Path, db: Path, port: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "codearena", "serve", "--models", str(models_toml), "--prompts",
           str(args.data / "question.jsonl"), "--db", str(db), "--port", str(port), "--votes-per-minute", "0",
           "--battles-per-minute", "0", "--concurrency", str(args.concurrency), "--leaderboard-refresh", "30"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "running on" in line:
            # Keep draining its output so a full pipe never blocks the server.
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"server did not start: {proc.stdout.read() if proc.stdout else ''}")


def voter(url: str, rounds: int, seed: int, start: threading.Barrier, log: VoterLog, progress,
          timeout_s: float) -> None:
    from gradio_client import Client

    rng = random.Random(seed)
    try:
        client = Client(url, verbose=False)
    except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
        log.errors.append(f"connect: {exc}")
        start.wait()
        return
    start.wait()
    for _ in range(rounds):
        try:
            prompt = client.predict("any", "any", api_name="/random_prompt")
            t0 = time.perf_counter()
            job = client.submit(prompt, api_name="/send")
            job.result(timeout=timeout_s)
            status = job.outputs()[-1][2]
            log.battle_s.append(time.perf_counter() - t0)
            if "complete" not in status:
                log.errors.append(f"battle: {status}")
                client.predict(api_name="/new_battle")  # else the next send is a follow-up of this one
                continue
            api = rng.choice(list(VOTE_APIS))
            t0 = time.perf_counter()
            status, reveal = client.predict(api_name=api)[:2]
            log.vote_s.append(time.perf_counter() - t0)
            m = REVEAL_RE.search(reveal if isinstance(reveal, str) else "")
            if "Thanks" not in status or m is None:
                log.errors.append(f"vote: {status}")
                continue
            log.cast.append((prompt, m.group(1), m.group(2), VOTE_APIS[api]))
            progress.update(1)
        except Exception as exc:  # noqa: BLE001
            log.errors.append(f"{type(exc).__name__}: {exc}")
            try:
                client.predict(api_name="/new_battle")
            except Exception:  # noqa: BLE001 - the error above is what gets reported
                pass


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


@dataclass
class Arrival:
    """One open-loop arrival: a battle streamed and voted on, or why not."""

    vote_s: float | None = None
    prompt_s: float | None = None  # picking a random prompt (one short event)
    answer_s: float | None = None  # sending it until both answers are complete
    slowdown: float | None = None  # answer wall time / the longer answer's length at --chars-per-s
    cast: tuple[str, str, str, str] | None = None
    error: str | None = None


def _answer_chars(chat) -> int:
    """Characters of the last answer in a Chatbot value (its content a text, or a list of text parts)."""
    for m in reversed(chat or []):
        if isinstance(m, dict) and m.get("role") == "assistant":
            content = m.get("content")
            if isinstance(content, list):
                return sum(len(str(p.get("text", ""))) if isinstance(p, dict) else len(str(p)) for p in content)
            return len(str(content or ""))
    return 0


def one_battle(client, rng: random.Random, chars_per_s: float, timeout_s: float) -> Arrival:
    t0 = time.perf_counter()
    prompt = client.predict("any", "any", api_name="/random_prompt")
    prompt_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    job = client.submit(prompt, api_name="/send")
    job.result(timeout=timeout_s)
    wall = time.perf_counter() - t0
    out = job.outputs()[-1]
    if "complete" not in out[2]:
        client.predict(api_name="/new_battle")
        return Arrival(error=f"battle: {out[2]}")
    longest = max(_answer_chars(out[0]), _answer_chars(out[1]))  # outputs: chat A, chat B, status, ...
    pace = longest / chars_per_s if chars_per_s and longest else None
    api = rng.choice(list(VOTE_APIS))
    t0 = time.perf_counter()
    status, reveal = client.predict(api_name=api)[:2]
    vote_s = time.perf_counter() - t0
    m = REVEAL_RE.search(reveal if isinstance(reveal, str) else "")
    if "Thanks" not in status or m is None:
        return Arrival(error=f"vote: {status}")
    return Arrival(vote_s=vote_s, prompt_s=prompt_s, answer_s=wall, slowdown=wall / pace if pace else None,
                   cast=(prompt, m.group(1), m.group(2), VOTE_APIS[api]))


def open_loop(url: str, args: argparse.Namespace) -> tuple[list[Arrival], int, float]:
    """Arrivals at args.rate per second for args.duration seconds, each on a free pre-connected client
    (an arrival finding none is counted as dropped: the client side, not the arena, ran out)."""
    import queue
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    n = int(args.rate * args.duration)
    pool_size = args.clients or max(8, int(args.rate * 12))
    idle: queue.Queue = queue.Queue()
    with ThreadPoolExecutor(16) as ex:
        for c in ex.map(lambda _: Client(url, verbose=False), range(pool_size)):
            idle.put(c)
    results: list[Arrival] = []
    lock = threading.Lock()
    dropped = 0

    def run(i: int, client) -> None:
        try:
            res = one_battle(client, random.Random(args.seed + i), args.chars_per_s, args.timeout)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            res = Arrival(error=f"{type(exc).__name__}: {exc}")
        with lock:
            results.append(res)
        idle.put(client)

    threads = []
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / args.rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            client = idle.get_nowait()
        except queue.Empty:
            dropped += 1
            continue
        t = threading.Thread(target=run, args=(i, client), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout=args.timeout + 60)
    return results, dropped, time.perf_counter() - t0


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_self() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def lean_battle(app, rng: random.Random, chars_per_s: float, timeout_s: float) -> Arrival:
    """one_battle, spoken by tests/lean_client.py (no polling, intermediate frames unparsed)."""
    async with app.session() as session:
        return await _lean_battle(session, rng, chars_per_s, timeout_s)


async def _lean_battle(session, rng: random.Random, chars_per_s: float, timeout_s: float) -> Arrival:
    t0 = time.perf_counter()
    (prompt,) = await session.call("/random_prompt", "any", "any")
    prompt_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = await session.call("/send", prompt, timeout_s=timeout_s)
    wall = time.perf_counter() - t0
    if "complete" not in str(out[2]):
        return Arrival(error=f"battle: {out[2]}")
    longest = max(_answer_chars(out[0]), _answer_chars(out[1]))
    pace = longest / chars_per_s if chars_per_s and longest else None
    api = rng.choice(list(VOTE_APIS))
    t0 = time.perf_counter()
    status, reveal = (await session.call(api))[:2]
    vote_s = time.perf_counter() - t0
    m = REVEAL_RE.search(reveal if isinstance(reveal, str) else "")
    if "Thanks" not in str(status) or m is None:
        return Arrival(error=f"vote: {status}")
    return Arrival(vote_s=vote_s, prompt_s=prompt_s, answer_s=wall, slowdown=wall / pace if pace else None,
                   cast=(prompt, m.group(1), m.group(2), VOTE_APIS[api]))


def open_loop_lean(url: str, args: argparse.Namespace) -> tuple[list[Arrival], int, float]:
    """open_loop with lean clients on one asyncio loop: every arrival gets its own session, none is dropped."""
    import asyncio

    import httpx

    from tests.lean_client import LeanApp

    async def run() -> tuple[list[Arrival], float]:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
        async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0)) as http:
            app = await LeanApp.connect(url, http)
            n = int(args.rate * args.duration)
            t0 = time.perf_counter()

            async def arrival(i: int) -> Arrival:
                await asyncio.sleep(max(0.0, t0 + i / args.rate - time.perf_counter()))
                try:
                    return await lean_battle(app, random.Random(args.seed + i), args.chars_per_s, args.timeout)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    return Arrival(error=f"{type(exc).__name__}: {exc}")

            results = await asyncio.gather(*(arrival(i) for i in range(n)))
            return list(results), time.perf_counter() - t0

    results, wall = asyncio.run(run())
    return results, 0, wall


def open_loop_main(args: argparse.Namespace) -> int:
    """--rate: the open-loop run against --replicas serve processes behind HAProxy on --store."""
    import secrets

    from tests.replica_helpers import Deployment
    from votes import VoteStore

    share_tls_contexts()
    tmp = Path(tempfile.mkdtemp(prefix="codearena-bench-"))
    toml = write_replay_models(tmp / "models.toml", args.data / "model_answer", args.data / "question.jsonl",
                               args.models, chars_per_s=args.chars_per_s)
    scratch = None
    if args.store == "postgres":
        import psycopg

        scratch = f"codearena_bench_{secrets.token_hex(4)}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{scratch}"')
        db = f"{args.postgres.rpartition('/')[0]}/{scratch}"
    else:
        db = str(tmp / "votes.db")
    try:
        deployment = Deployment(tmp, db, toml, args.data / "question.jsonl", args.replicas,
                                "--concurrency", str(args.concurrency), "--leaderboard-refresh", "30")
        try:
            own0, servers0 = _cpu_self(), [_cpu_of(r.proc.pid) for r in deployment.replicas]
            loop = open_loop_lean if args.client == "lean" else open_loop
            results, dropped, wall = loop(deployment.url, args)
            own = _cpu_self() - own0
            per_replica = [_cpu_of(r.proc.pid) - c for r, c in zip(deployment.replicas, servers0, strict=True)]
            servers = sum(per_replica)
        finally:
            deployment.close()
        stored = Counter((r["prompt"], r["model_a"], r["model_b"], r["winner"])
                         for _, r in VoteStore(db).battles_frame(source="human").iterrows())
    finally:
        if scratch is not None:
            import psycopg

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    cast = Counter(r.cast for r in results if r.cast)
    missing = sum((cast - stored).values())
    vote_s = [r.vote_s for r in results if r.vote_s is not None]
    slow = [r.slowdown for r in results if r.slowdown is not None]
    errors = [r.error for r in results if r.error]
    print(f"\nopen loop: {args.rate:g} battles+votes/s for {args.duration:g} s, {args.replicas} replica(s) behind "
          f"HAProxy, {args.store} store, answers at {args.chars_per_s or 'unthrottled'} chars/s, {args.client} "
          f"clients, cpus {os.cpu_count()}")
    print(f"votes acknowledged   {sum(cast.values())} / {int(args.rate * args.duration)} arrivals "
          f"({dropped} found no free client) in {wall:.1f} s  ->  {sum(cast.values()) / wall:.1f} votes/s")
    print(f"vote latency         p50 {pct(vote_s, 50) * 1000:.0f} ms   p99 {pct(vote_s, 99) * 1000:.0f} ms")
    prompt_s = [r.prompt_s for r in results if r.prompt_s is not None]
    answer_s = [r.answer_s for r in results if r.answer_s is not None]
    print(f"prompt pick          p50 {pct(prompt_s, 50) * 1000:.0f} ms   p99 {pct(prompt_s, 99) * 1000:.0f} ms;  "
          f"both answers p50 {pct(answer_s, 50):.1f} s   p99 {pct(answer_s, 99):.1f} s")
    if slow:
        print(f"stream slowdown      p50 {pct(slow, 50):.2f}x   p99 {pct(slow, 99):.2f}x  (answer wall time / its "
              "text at --chars-per-s)")
    # The simulated voters share the machine: what they burn is CPU the arena did not get.
    split = f" = {' + '.join(f'{c:.1f}' for c in per_replica)}" if len(per_replica) > 1 else ""
    print(f"CPU seconds          arena {servers:.1f} s{split} ({servers / wall * 100:.0f}% of one core), simulated "
          f"voters {own:.1f} s ({own / wall * 100:.0f}%), over {wall:.1f} s on {os.cpu_count()} cores")
    print(f"in the store         acknowledged but missing: {missing}")
    if errors:
        print(f"errors               {len(errors)}; first: {Counter(errors).most_common(3)}")
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voters", type=int, default=200, help="concurrent simulated voters (default 200)")
    parser.add_argument("--rounds", type=int, default=1, help="battles + votes per voter (default 1)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Arena-Hard folder (question.jsonl, "
                        "model_answer/)")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="replayed models")
    parser.add_argument("--chars-per-s", type=float, default=0.0,
                        help="simulated streaming speed of the replayed answers (0 = as fast as possible)")
    parser.add_argument("--concurrency", type=int, default=256, help="the app's queue concurrency")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds a voter waits for one battle before giving up on it (default 900)")
    parser.add_argument("--seed", type=int, default=0)
    loop = parser.add_argument_group("open loop", "battles arriving at a fixed rate, several replicas")
    loop.add_argument("--rate", type=float, default=None, metavar="R",
                      help="open loop: R new battles (each voted on) per second instead of --voters")
    loop.add_argument("--duration", type=float, default=30.0, metavar="S", help="open loop: seconds of arrivals")
    loop.add_argument("--replicas", type=int, default=1, help="open loop: serve processes behind HAProxy")
    loop.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite", help="open loop: the store")
    loop.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                      help="open loop: the server where a scratch database is created (and dropped)")
    loop.add_argument("--clients", type=int, default=None,
                      help="open loop, --client gradio: pre-connected clients (default 12 x rate)")
    loop.add_argument("--client", choices=["lean", "gradio"], default="lean",
                      help="open loop: the simulated voters' client: lean (tests/lean_client.py, the protocol as "
                      "a browser speaks it, default) or gradio (gradio_client: it polls every 50 ms, and its "
                      "threads compete with the arena for the cores)")
    args = parser.parse_args(argv)
    if not (args.data / "question.jsonl").is_file():
        raise SystemExit(f"{args.data}: no question.jsonl (see ../shared/data/README.md)")
    if args.rate is not None:
        return open_loop_main(args)

    from tqdm import tqdm

    share_tls_contexts()

    from votes import VoteStore

    tmp = Path(tempfile.mkdtemp(prefix="codearena-bench-"))
    toml = write_replay_models(tmp / "models.toml", args.data / "model_answer", args.data / "question.jsonl",
                               args.models, chars_per_s=args.chars_per_s)
    db = tmp / "votes.db"
    port = free_port()
    server = start_server(args, toml, db, port)
    url = f"http://127.0.0.1:{port}/"
    logs = [VoterLog() for _ in range(args.voters)]
    barrier = threading.Barrier(args.voters + 1)
    try:
        with tqdm(total=args.voters * args.rounds, desc="votes", unit="vote") as progress:
            threads = [threading.Thread(target=voter, args=(url, args.rounds, args.seed + i, barrier, logs[i],
                                                            progress, args.timeout), daemon=True)
                       for i in range(args.voters)]
            c0 = time.perf_counter()
            for t in threads:
                t.start()
            barrier.wait()
            connect_s = time.perf_counter() - c0  # every voter connected: the clock starts with all of them ready
            t0 = time.perf_counter()
            for t in threads:
                t.join(timeout=1800)
            wall = time.perf_counter() - t0
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    cast = Counter(c for log in logs for c in log.cast)
    stored = Counter((r["prompt"], r["model_a"], r["model_b"], r["winner"])
                     for _, r in VoteStore(db).battles_frame(source="human").iterrows())
    missing = sum((cast - stored).values())
    extra = sum((stored - cast).values())
    votes = sum(cast.values())
    vote_s = [v for log in logs for v in log.vote_s]
    battle_s = [v for log in logs for v in log.battle_s]
    errors = [e for log in logs for e in log.errors]
    print(f"\nvoters {args.voters} x rounds {args.rounds}, {len(args.models)} replayed models, "
          f"chars/s {args.chars_per_s or 'unthrottled'}, cpus {os.cpu_count()}")
    print(f"sessions connected   {args.voters} in {connect_s:.1f} s (gradio_client: config + API info each)")
    print(f"votes acknowledged   {votes} / {args.voters * args.rounds} in {wall:.1f} s  ->  {votes / wall:.1f} votes/s")
    print(f"vote latency         p50 {pct(vote_s, 50) * 1000:.0f} ms   p99 {pct(vote_s, 99) * 1000:.0f} ms")
    print(f"battle (both answers) p50 {pct(battle_s, 50) * 1000:.0f} ms   p99 {pct(battle_s, 99) * 1000:.0f} ms")
    print(f"in the store         {sum(stored.values())} rows; acknowledged but missing: {missing}; "
          f"stored but not acknowledged: {extra}")
    if errors:
        print(f"errors               {len(errors)}; first: {Counter(errors).most_common(3)}")
    return 1 if missing or extra else 0


if __name__ == "__main__":
    raise SystemExit(main())
