"""A pool of two real OpenAI-compatible servers (llama.cpp's, each serving the small built-in GGUF on its own
port): requests spread over both; one SIGKILLed, requests keep succeeding on the other and it is marked
down; restarted, it takes requests again. Plus moving before the first token (and not after), the
listing, and the answers' timings through the pool."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import httpx
import pytest

from serving.backends import make_backend
from serving.backends.base import BackendError, CallReport, ModelSpec, SamplingParams
from serving.weights import resolve_weights
from tests.test_backend_openai import CuttingProxy, free_port

pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")

SHORT = SamplingParams(temperature=0.0, max_tokens=8, top_p=1.0, seed=1)
PROMPT = [{"role": "user", "content": "Write a Python function add(a, b)."}]


class Server:
    """One ``python -m llama_cpp.server`` on a fixed port, startable again after a kill. Its
    ``interrupt_requests`` is off: by default that server ends a running stream early (no finish reason)
    whenever another request arrives, which a pool rightly counts as a failure."""

    def __init__(self, tmp_path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/v1"
        self.config = tmp_path / f"server-{port}.json"
        self.config.write_text(json.dumps({"host": "127.0.0.1", "port": port, "interrupt_requests": False, "models": [
            {"model": str(resolve_weights("builtin:smollm2-135m")), "model_alias": "smol", "n_ctx": 512,
             "n_threads": 1, "verbose": False}]}))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--config_file", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.url + "/models", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server on port {self.port} did not answer within 90 s")
            time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL: no goodbye to open connections, as when a machine dies."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pool-servers")
    pair = [Server(tmp, free_port()), Server(tmp, free_port())]
    try:
        for s in pair:
            s.start()
        yield pair
    finally:
        for s in pair:
            s.stop()


def pool_spec(*urls: str, **changes) -> ModelSpec:
    spec = ModelSpec(name="pooled-smol", backend="openai", model="smol", base_urls=tuple(urls), params=SHORT,
                     concurrency=2, timeout_s=60, max_retries=0,
                     options={"endpoint_retry_s": 0.5, "endpoint_retry_max_s": 1.0})
    return replace(spec, **changes)


def states(backend) -> dict[str, tuple[str, int]]:
    return {e.url: (e.state, e.served) for e in backend.endpoints()}


async def ask(backend, stream: bool) -> tuple[str, str | None]:
    """One short answer: (text, endpoint that served it)."""
    if stream:
        report = CallReport()
        text = "".join([t async for t in backend.stream_reported(PROMPT, report=report)])
        return text, report.endpoint
    completion = await backend.complete(PROMPT)
    return completion.text, completion.endpoint


def test_a_killed_server_is_taken_out_and_comes_back_after_restart(servers):
    a, b = servers
    if a.proc is None or a.proc.poll() is not None:
        a.start()
    backend = make_backend(pool_spec(a.url, b.url))
    assert backend.availability() == (True, "")
    assert {u: s for u, (s, _) in states(backend).items()} == {a.url: "healthy", b.url: "healthy"}

    async def go():
        try:
            served = [await ask(backend, stream=i % 2 == 0) for i in range(4)]
            assert all(text for text, _ in served)
            assert {url for _, url in served} == {a.url, b.url}, "idle endpoints take turns"

            a.kill()
            after = [await ask(backend, stream=i % 2 == 0) for i in range(3)]
            assert all(text and url == b.url for text, url in after), after
            down = {e.url: e for e in backend.endpoints()}[a.url]
            assert down.state == "down" and down.failed >= 1
            assert f"cannot reach {a.url}" in down.last_error

            a.start()
            served_before = down.served
            deadline = time.monotonic() + 60
            while True:  # a probe after the backoff finds it again; requests then go to it too
                await ask(backend, stream=True)
                now = {e.url: e for e in backend.endpoints()}[a.url]
                if now.state == "healthy" and now.served > served_before:
                    break
                assert time.monotonic() < deadline, f"{a.url} never came back: {now}"
                await asyncio.sleep(0.3)
        finally:
            await backend.aclose()

    asyncio.run(go())
    final = states(backend)
    assert final[a.url][0] == "healthy" and final[b.url][0] == "healthy"
    assert sum(e.in_flight for e in backend.endpoints()) == 0


def test_failure_before_the_first_token_moves_to_the_other_endpoint(servers):
    _, b = servers
    closing = CuttingProxy(b.port, cut_after=0)  # accepts, then closes before any byte of the answer
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    try:
        for first in (f"http://127.0.0.1:{closing.port}/v1", dead):
            backend = make_backend(pool_spec(first, b.url))  # the first listed is picked first

            async def go(backend=backend):
                try:
                    return await ask(backend, stream=True), await ask(backend, stream=False)
                finally:
                    await backend.aclose()

            (text, url), (text2, url2) = asyncio.run(go())
            assert text and text2 and url == url2 == b.url
            status = {e.url: e for e in backend.endpoints()}
            assert status[first].state == "down" and status[first].last_error
            assert status[b.url].served == 2
    finally:
        closing.close()


def test_failure_after_the_first_token_keeps_the_partial_text_and_names_the_endpoint(servers):
    _, b = servers
    proxy = CuttingProxy(b.port, cut_after=1500)  # headers and a few SSE events, then nothing
    cut = f"http://127.0.0.1:{proxy.port}/v1"
    backend = make_backend(pool_spec(cut, b.url, params=replace(SHORT, max_tokens=48)))

    async def go():
        try:
            return [t async for t in backend.stream(PROMPT)]
        finally:
            await backend.aclose()

    try:
        with pytest.raises(BackendError, match=rf"'pooled-smol'.*{cut}.*after \d+ characters") as info:
            asyncio.run(go())
    finally:
        proxy.close()
    assert info.value.partial, "the text before the cut is kept, marked as partial"
    status = {e.url: e for e in backend.endpoints()}
    assert status[cut].state == "down" and status[b.url].served == 0  # not started over elsewhere


def test_every_endpoint_down_is_one_error_naming_each():
    urls = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    backend = make_backend(pool_spec(*urls))
    ok, reason = backend.availability()
    assert not ok and all(f"cannot reach {u}" in reason for u in urls)
    with pytest.raises(BackendError, match="no endpoint of the pool could answer") as info:
        asyncio.run(backend.complete(PROMPT))
    assert all(u in str(info.value) for u in urls)


def test_models_listing_shows_each_endpoint(servers, tmp_path, capsys):
    from codearena.cli import main

    _, b = servers
    dead = f"http://127.0.0.1:{free_port()}/v1"
    models = tmp_path / "models.toml"
    models.write_text(f'[[models]]\nname = "pool"\nbackend = "openai"\nmodel = "smol"\n'
                      f'base_urls = ["{b.url}", "{dead}"]\n', encoding="utf-8")
    assert main(["models", "--models", str(models), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["available"] is True and row["where"] == f"{b.url}, {dead}"
    ends = {e["url"]: e for e in row["endpoints"]}
    assert ends[b.url]["state"] == "healthy" and ends[b.url]["last_error"] is None
    assert ends[dead]["state"] == "down" and f"cannot reach {dead}" in ends[dead]["last_error"]
    assert {"in_flight", "served", "failed", "retry_in_s"} <= set(ends[b.url])
    assert main(["models", "--models", str(models)]) == 0
    table = capsys.readouterr().out
    assert f"    {b.url}  healthy" in table and f"    {dead}  down  in flight 0" in table


def test_arena_streams_and_generate_record_latency_and_endpoint(servers, tmp_path):
    from arena_ui.streams import stream_pair
    from votes.latency import timings_from_meta
    from votes.store import VoteStore

    a, b = servers
    if a.proc is None or a.proc.poll() is not None:
        a.start()
    left = make_backend(pool_spec(a.url, b.url))
    right = make_backend(pool_spec(b.url, name="other-smol"))

    async def go():
        try:
            return [s async for s in stream_pair(left, right, PROMPT, PROMPT, SHORT)][-1]
        finally:
            await left.aclose()
            await right.aclose()

    last = asyncio.run(go())
    assert last.done and not last.failed
    for timing in (last.timing_a, last.timing_b):
        assert timing is not None and timing.endpoint in (a.url, b.url)
        assert 0 < timing.ttft_s <= timing.total_s and timing.tokens >= 1 and timing.tokens_per_s > 0

    from codearena.cli import main

    models = tmp_path / "models.toml"
    models.write_text(f'[[models]]\nname = "gen-pool"\nbackend = "openai"\nmodel = "smol"\n'
                      f'base_urls = ["{a.url}", "{b.url}"]\nconcurrency = 2\ntemperature = 0.0\n', encoding="utf-8")
    out, db = tmp_path / "answers.jsonl", tmp_path / "votes.db"
    assert main(["generate", "gen-pool", "--models", str(models), "--out", str(out), "--limit", "2",
                 "--max-tokens", "8", "--db", str(db), "--store", "--no-progress"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    file_timings = [t["timing"] for r in rows for t in r["choices"][0]["turns"]]
    assert len(file_timings) == 2 and all(t["endpoint"] in (a.url, b.url) for t in file_timings)
    store = VoteStore(db, read_only=True)
    try:
        stored = [t for r in store.answers("gen-pool") for t in timings_from_meta(r["meta"])]
    finally:
        store.close()
    assert len(stored) == 2
    # Non-streamed: the whole reply at once, so no first-token time; the server counts the tokens.
    assert all(t.ttft_s is None and t.tokens_source == "server" and 0 < t.tokens <= 8 for t in stored)
