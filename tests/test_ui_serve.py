"""`codearena serve` as a user runs it: a real process that binds the given port, prints the URL and serves
the arena; bad input fails fast with exit status 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from arena_ui.replay_config import write_replay_models

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "codearena", "serve", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} not printed within {timeout_s} s; output:\n{''.join(seen)}")


def stop(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C, as a user stops it; a server still up after 15 s prints its threads' stacks (SIGUSR1) before
    it is killed. Returns what it printed after Ctrl-C, for the assertion that it ended by itself."""
    if proc.poll() is not None:
        return ""
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2)
        proc.kill()
        out, _ = proc.communicate(timeout=5)
    return out or ""


def test_serve_binds_the_port_prints_the_url_and_serves_the_battle_page(tmp_path, shared_data):
    hard = shared_data("arena-hard-v0.1")
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl",
                               ["gpt-4o-2024-05-13", "gemma-2-9b-it"])
    port = free_port()
    proc = start_serve("--models", str(toml), "--prompts", str(hard / "question.jsonl"), "--db",
                       str(tmp_path / "v.db"), "--host", "127.0.0.1", "--port", str(port))
    try:
        line = wait_for_line(proc, "running on", 90)
        assert f"http://127.0.0.1:{port}/" in line and "2 of 2 models usable" in line
        html = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        assert "CodeArena" in html
        assert (tmp_path / "v.db").exists()
        # What a load balancer checks: cheap, plain, never cached.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as health:
            assert health.status == 200 and health.read() == b"ok\n"
            assert health.headers["Cache-Control"] == "no-store"
    finally:
        out = stop(proc)
    assert proc.returncode in (0, -signal.SIGINT), f"exit status {proc.returncode} after Ctrl-C; output:\n{out}"


def test_serve_stops_cleanly_on_sigterm_as_a_process_manager_sends_it(tmp_path, shared_data):
    hard = shared_data("arena-hard-v0.1")
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl",
                               ["gpt-4o-2024-05-13", "gemma-2-9b-it"])
    proc = start_serve("--models", str(toml), "--prompts", str(hard / "question.jsonl"), "--db",
                       str(tmp_path / "v.db"), "--port", str(free_port()))
    try:
        wait_for_line(proc, "running on", 90)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out  # a clean shutdown, not death by the signal


def test_serve_rejects_a_missing_models_file_with_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "codearena", "serve", "--models", str(tmp_path / "nope.toml"),
                           "--port", str(free_port())], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "nope.toml" in proc.stderr


def test_serve_rejects_a_weight_for_an_unknown_model(tmp_path, shared_data):
    hard = shared_data("arena-hard-v0.1")
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl",
                               ["gpt-4o-2024-05-13", "gemma-2-9b-it"])
    proc = subprocess.run([sys.executable, "-m", "codearena", "serve", "--models", str(toml), "--weight",
                           "gpt-5=2", "--db", str(tmp_path / "v.db"), "--port", str(free_port())],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown model(s) gpt-5" in proc.stderr


@pytest.mark.slow
def test_serve_default_runs_a_battle_on_the_real_local_models(tmp_path):
    """The embedded default: two llama.cpp models on CPU, built-in prompts, no key, one real battle."""
    pytest.importorskip("llama_cpp")
    from gradio_client import Client

    port = free_port()
    proc = start_serve("--db", str(tmp_path / "v.db"), "--port", str(port), env={"CODEARENA_MODELS": ""})
    try:
        wait_for_line(proc, "running on", 120)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        prompt = "Write a Python function is_prime(n). Reply with the code only."
        job = client.submit(prompt, api_name="/send")
        job.result(timeout=300)
        chat_a, chat_b, status = job.outputs()[-1][:3]
        assert "Both answers are complete" in status, status
        assert chat_a[-1]["role"] == "assistant" and chat_b[-1]["role"] == "assistant"
        assert "Thanks" in client.predict(api_name="/vote_tie")[0]
    finally:
        stop(proc)
    from votes import VoteStore

    row = VoteStore(tmp_path / "v.db").battles_frame().iloc[0]
    assert {row["model_a"], row["model_b"]} == {"smollm2-135m", "qwen2.5-coder-0.5b"}
    assert "def" in row["answer_a"] + row["answer_b"]


def test_serve_on_a_busy_port_says_so_and_exits_2(tmp_path, shared_data):
    hard = shared_data("arena-hard-v0.1")
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl",
                               ["gpt-4o-2024-05-13", "gemma-2-9b-it"])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "codearena", "serve", "--models", str(toml), "--prompts",
                               str(hard / "question.jsonl"), "--db", str(tmp_path / "v.db"), "--port", str(port)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use: choose another with --port" in proc.stderr
    assert "GRADIO_SERVER_PORT" not in proc.stderr + proc.stdout
    assert not (tmp_path / "v.db").exists()  # refused before the store was opened


def test_serve_lists_an_unavailable_model_once(tmp_path, shared_data):
    hard = shared_data("arena-hard-v0.1")
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl",
                               ["gpt-4o-2024-05-13"])
    with toml.open("a", encoding="utf-8") as fh:
        fh.write('\n[[models]]\nname = "keyless"\nbackend = "openai"\nmodel = "m"\n'
                 'api_key_env = "CODEARENA_TEST_NO_SUCH_KEY"\n')
    env = {k: v for k, v in os.environ.items() if k != "CODEARENA_TEST_NO_SUCH_KEY"}
    proc = subprocess.Popen([sys.executable, "-m", "codearena", "serve", "--models", str(toml), "--prompts",
                             str(hard / "question.jsonl"), "--db", str(tmp_path / "v.db"), "--port",
                             str(free_port())], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any("warning:" in line for line in seen):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
    finally:
        seen.append(stop(proc))
    output = "".join(seen)
    assert "1 of 2 models usable" in output and "warning: battles need at least two usable models" in output
    # Was three times: the arena's log line, serve's list and the warning repeating the reason.
    assert output.count("CODEARENA_TEST_NO_SUCH_KEY") == 1, output
    assert output.count("keyless") == 1, output


def test_votes_and_prompt_picks_do_not_wait_behind_streaming_battles(tmp_path, shared_data):
    """Gradio runs 40 events at once unless told otherwise, streams included: with 45 battles streaming, a
    prompt pick (and a vote) used to wait for one of them to end. Here every stream takes minutes."""
    import asyncio

    import httpx

    from tests.lean_client import LeanApp

    hard = shared_data("arena-hard-v0.1")
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl",
                               ["gpt-4o-2024-05-13", "gemma-2-9b-it"], chars_per_s=20)
    port = free_port()
    proc = start_serve("--models", str(toml), "--prompts", str(hard / "question.jsonl"), "--db",
                       str(tmp_path / "v.db"), "--port", str(port), "--battles-per-minute", "0", "--no-run")

    import json

    question = json.loads((hard / "question.jsonl").read_text().splitlines()[0])["turns"][0]["content"]

    async def scenario() -> tuple[int, float, str]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=None)) as http:
            app = await LeanApp.connect(f"http://127.0.0.1:{port}/", http)
            sessions = [app.session() for _ in range(46)]
            streams = [asyncio.create_task(s.call("/send", question)) for s in sessions[:45]]
            await asyncio.sleep(3)  # all 45 started (each holds its event while it streams)
            started = time.perf_counter()
            (prompt,) = await asyncio.wait_for(sessions[45].call("/random_prompt", "any", "any"), 30)
            waited = time.perf_counter() - started
            running = sum(not t.done() for t in streams)
            for t in streams:
                t.cancel()
            await asyncio.gather(*streams, return_exceptions=True)
            for s in sessions:
                await s.aclose()
            return running, waited, prompt

    try:
        wait_for_line(proc, "running on", 90)
        running, waited, prompt = asyncio.run(scenario())
    finally:
        out = stop(proc)
    assert running == 45, out  # the streams were still going while the prompt was picked
    assert prompt and waited < 10, f"a prompt pick took {waited:.1f} s behind {running} streams"
