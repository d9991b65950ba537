"""A pool of two real llama.cpp servers (the built-in smollm2-135m, one thread each): what losing one costs.

Prints, with the pool's default backoff (2 s doubling, up to 60 s) unless told otherwise:
  baseline      median time of a short streamed answer with both servers up
  failover      the first answer after one server is SIGKILLed that had to move, and its extra time over
                the baseline (the dead endpoint's refused connection)
  in flight     a burst of concurrent answers with one server killed mid-burst: how many completed, how
                many moved before their first token, how many were cut after it (error, partial text kept)
  recovery      from the restarted server answering /v1/models to the pool sending it requests again

    python bench/bench_pool.py                  # 8 tokens per answer, burst of 6
    python bench/bench_pool.py --retry-s 0.5 --burst 8 --burst-tokens 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serving.backends import make_backend  # noqa: E402
from serving.backends.base import BackendError, CallReport, ModelSpec, SamplingParams  # noqa: E402
from serving.weights import resolve_weights  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a Python function add(a, b)."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.config = folder / f"server-{self.port}.json"
        self.config.write_text(json.dumps({
            "host": "127.0.0.1", "port": self.port, "interrupt_requests": False, "models": [
                {"model": str(resolve_weights("builtin:smollm2-135m")), "model_alias": "smol", "n_ctx": 512,
                 "n_threads": 1, "verbose": False}]}))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start and wait until it answers; returns the monotonic time it first answered."""
        self.proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--config_file", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/models", timeout=1).status_code == 200:
                    return time.monotonic()
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"server on port {self.port} did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


async def timed(backend, max_tokens: int | None = None) -> tuple[float, str | None, str | None]:
    """(seconds, endpoint that served it, error or None) of one streamed answer."""
    report = CallReport()
    params = None if max_tokens is None else SamplingParams(temperature=0.0, max_tokens=max_tokens)
    start = time.perf_counter()
    try:
        async for _ in backend.stream_reported(PROMPT, params, report=report):
            pass
    except BackendError as exc:
        return time.perf_counter() - start, report.endpoint, exc.cause + (" [partial kept]" if exc.partial else "")
    return time.perf_counter() - start, report.endpoint, None


async def run(args: argparse.Namespace, a: Server, b: Server) -> None:
    options = {"endpoint_retry_s": args.retry_s, "endpoint_retry_max_s": max(60.0, args.retry_s)}
    spec = ModelSpec(name="pool", backend="openai", model="smol", base_urls=(a.url, b.url), concurrency=args.burst,
                     params=SamplingParams(temperature=0.0, max_tokens=args.tokens), timeout_s=60, max_retries=0,
                     options=options)
    backend = make_backend(spec)
    try:
        for _ in range(2):  # warm both servers (first-request setup is not what is measured)
            await timed(backend)
        base = [await timed(backend) for _ in range(8)]
        baseline = statistics.median(t for t, _, _ in base)
        print(f"baseline: median {baseline * 1000:.0f} ms per {args.tokens}-token answer, "
              f"served by {sorted({u for _, u, _ in base})}")

        a.kill()
        after = [await timed(backend) for _ in range(4)]
        moved = [t for t, url, err in after if err is None and url == b.url]
        first = after[0][0] if after[0][1] == b.url else after[1][0]
        down = {e.url: e for e in backend.endpoints()}[a.url]
        print(f"failover: {len(moved)}/{len(after)} answers after the kill served by the live server; the first "
              f"that met the dead one took {first * 1000:.0f} ms ({(first - baseline) * 1000:+.0f} ms over the "
              f"baseline); dead endpoint state {down.state!r}, last error: {down.last_error}")

        up_at = a.start()
        while True:
            await timed(backend)
            now = {e.url: e for e in backend.endpoints()}[a.url]
            if now.state == "healthy" and now.served > down.served:
                break
            await asyncio.sleep(0.05)
        print(f"recovery: restarted server back in the pool {time.monotonic() - up_at:.2f} s after it first "
              f"answered (backoff {args.retry_s:g} s, doubled per failure in a row: "
              f"{down.failures_in_row} failure(s) before the restart)")

        burst = [asyncio.create_task(timed(backend, args.burst_tokens)) for _ in range(args.burst)]
        await asyncio.sleep(args.kill_after_s)
        a.kill()
        results = await asyncio.gather(*burst)
        ok = [r for r in results if r[2] is None]
        failed = [r for r in results if r[2] is not None]
        cut = [r for r in failed if r[2].endswith("[partial kept]")]
        on_b = sum(1 for r in ok if r[1] == b.url)
        print(f"in flight: burst of {args.burst} x {args.burst_tokens} tokens, server A killed after "
              f"{args.kill_after_s:g} s: {len(ok)} completed ({on_b} on B), {len(cut)} cut after their first "
              f"token (error, partial kept), {len(failed) - len(cut)} failed before it on every endpoint")
        for _, url, err in failed:
            print(f"  failed on {url}: {err}")
        for e in backend.endpoints():
            print(f"  endpoint {e.url}: {e.state}, served {e.served}, failed {e.failed}, in flight {e.in_flight}")
    finally:
        await backend.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=8, help="tokens per answer (default 8)")
    parser.add_argument("--retry-s", type=float, default=2.0, help="pool backoff's first wait (default 2)")
    parser.add_argument("--burst", type=int, default=6, help="concurrent answers in the kill test (default 6)")
    parser.add_argument("--burst-tokens", type=int, default=32, help="tokens per burst answer (default 32)")
    parser.add_argument("--kill-after-s", type=float, default=0.3, help="kill A this long into the burst")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Server(Path(tmp)), Server(Path(tmp))
        try:
            a.start()
            b.start()
            asyncio.run(run(args, a, b))
        finally:
            a.stop()
            b.stop()


if __name__ == "__main__":
    main()
