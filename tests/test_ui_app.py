"""The arena app end to end over HTTP: a real Gradio server, the replay backend over the real Arena-Hard
(and MT-bench) answers, a real SQLite store, driven through ``gradio_client`` the way any API caller can."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from arena_ui.replay_config import write_replay_models
from arena_ui.serve import ServeOptions, close, launch, make_arena
from tests.fake_anthropic import FakeAnthropic
from votes import VoteStore
from votes.files import read_battles_file

pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402

MODELS = ["gpt-4o-2024-05-13", "claude-3-haiku-20240307", "gemma-2-9b-it"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_arena(tmp: Path, models_toml: Path, prompts: Path, **opts) -> Iterator[tuple[object, str]]:
    options = ServeOptions(models=str(models_toml), prompts=str(prompts), db=tmp / "votes.db", port=free_port(),
                           **opts)
    arena = make_arena(options)
    demo = launch(arena, options, block=False)
    try:
        yield arena, f"http://127.0.0.1:{options.port}/"
    finally:
        close(arena, demo)


@pytest.fixture
def hard(shared_data) -> Path:
    return shared_data("arena-hard-v0.1")


@pytest.fixture
def arena_app(tmp_path, hard):
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl", MODELS,
                               chars_per_s=20000)
    with running_arena(tmp_path, toml, hard / "question.jsonl", votes_per_minute=0, battles_per_minute=0) as app:
        yield app


def _battle(client: Client, api: str = "/send", *args) -> tuple:
    job = client.submit(*args, api_name=api)
    job.result(timeout=60)
    return job.outputs()[-1]


def _answers(hard: Path, model: str) -> dict[str, str]:
    with open(hard / "model_answer" / f"{model}.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return {r["question_id"]: r["choices"][0]["turns"][0]["content"] for r in rows}


def test_anonymous_battle_vote_is_stored_and_reveals_the_models(arena_app, hard):
    arena, url = arena_app
    client = Client(url, verbose=False)
    prompt = client.predict("any", "any", api_name="/random_prompt")
    out = _battle(client, "/send", prompt)
    status = out[2]
    assert "Both answers are complete" in status
    status, reveal = client.predict(api_name="/vote_b")[:2]
    assert "Thanks for voting" in status
    rows = VoteStore(arena.store.path).battles_frame()
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["winner"] == "model_b" and row["source"] == "human" and row["mode"] == "anonymous"
    assert f"Model A: **{row['model_a']}**" in reveal and f"Model B: **{row['model_b']}**" in reveal
    # the prompt kept its Arena-Hard id, and the stored answers are the real answers of the revealed models
    assert row["prompt"] == prompt
    assert row["answer_a"] == _answers(hard, row["model_a"])[row["prompt_id"]]
    assert row["answer_b"] == _answers(hard, row["model_b"])[row["prompt_id"]]
    assert row["voter"]


def test_api_cannot_cast_a_vote_without_a_complete_battle(arena_app):
    arena, url = arena_app
    stranger = Client(url, verbose=False)
    for api in ("/vote_a", "/vote_b", "/vote_tie", "/vote_bothbad", "/named_vote_a"):
        status = stranger.predict(api_name=api)[0]
        assert "no live battle" in status
    voter = Client(url, verbose=False)
    prompt = voter.predict("any", "any", api_name="/random_prompt")
    _battle(voter, "/send", prompt)
    assert "Thanks" in voter.predict(api_name="/vote_a")[0]
    assert "no live battle" in voter.predict(api_name="/vote_a")[0]  # one vote per battle
    assert "no live battle" in stranger.predict(api_name="/vote_a")[0]  # not another session's battle
    assert arena.store.count() == 1


def test_vote_while_answers_stream_is_refused(tmp_path, hard):
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl", MODELS,
                               chars_per_s=400)
    with running_arena(tmp_path, toml, hard / "question.jsonl") as (arena, url):
        client = Client(url, verbose=False)
        prompt = client.predict("any", "any", api_name="/random_prompt")
        job = client.submit(prompt, api_name="/send")
        for _ in job:  # first streamed update: generation is under way
            break
        assert "still being written" in client.predict(api_name="/vote_a")[0]
        job.cancel()
        assert arena.store.count() == 0


def test_named_side_by_side_votes_are_kept_out_of_the_main_ranking(arena_app):
    arena, url = arena_app
    client = Client(url, verbose=False)
    prompt = client.predict("any", "any", api_name="/random_prompt")
    out = _battle(client, "/named_send", prompt, MODELS[0], MODELS[2])
    assert "Both answers are complete" in out[2]
    assert "Thanks" in client.predict(api_name="/named_vote_tie")[0]
    anon = Client(url, verbose=False)
    _battle(anon, "/send", prompt)
    anon.predict(api_name="/vote_a")
    df = arena.store.battles_frame()
    assert sorted(df["mode"]) == ["anonymous", "named"]
    named_row = df[df["mode"] == "named"].iloc[0]
    assert (named_row["model_a"], named_row["model_b"], named_row["winner"]) == (MODELS[0], MODELS[2], "tie")
    snap = arena.leaderboard.refresh()
    assert snap.overall["battles"].sum() == 2  # one anonymous battle, counted for both its models
    assert snap.named["battles"].sum() == 2


def test_follow_up_turn_before_the_vote(tmp_path, shared_data):
    mt = shared_data("mt-bench-answers")
    toml = write_replay_models(tmp_path / "models.toml", mt / "model_answer", mt / "question.jsonl",
                               ["gpt-4", "claude-v1"])
    with running_arena(tmp_path, toml, mt / "question.jsonl") as (arena, url):
        client = Client(url, verbose=False)
        first = json.loads((mt / "question.jsonl").read_text().splitlines()[0])
        _battle(client, "/send", first["turns"][0])
        out = _battle(client, "/send", first["turns"][1])
        assert "Both answers are complete" in out[2]
        assert len(out[0]) == 4  # user, answer, follow-up, answer
        client.predict(api_name="/vote_a")
        battle = next(arena.store.iter_battles())
        assert battle.turn == 2
        assert [m["content"] for m in battle.conversation_a if m["role"] == "user"] == first["turns"]


def test_rate_limit_per_client(tmp_path, hard):
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl", MODELS)
    with running_arena(tmp_path, toml, hard / "question.jsonl", battles_per_minute=2) as (arena, url):
        client = Client(url, verbose=False)
        prompt = client.predict("any", "any", api_name="/random_prompt")
        for _ in range(2):
            assert "complete" in _battle(client, "/regenerate" if _ else "/send", *(() if _ else (prompt,)))[2]
        assert "too many battles" in _battle(client, "/regenerate")[2]


def test_follow_up_turns_count_against_the_battle_limit(tmp_path, shared_data):
    mt = shared_data("mt-bench-answers")
    toml = write_replay_models(tmp_path / "models.toml", mt / "model_answer", mt / "question.jsonl",
                               ["gpt-4", "claude-v1"])
    with running_arena(tmp_path, toml, mt / "question.jsonl", battles_per_minute=2) as (arena, url):
        client = Client(url, verbose=False)
        first = json.loads((mt / "question.jsonl").read_text().splitlines()[0])
        assert "complete" in _battle(client, "/send", first["turns"][0])[2]  # battle 1
        assert "complete" in _battle(client, "/send", first["turns"][1])[2]  # follow-up: battle 2
        # a follow-up makes both models answer again: past the limit it is refused like a new battle
        assert "too many battles" in _battle(client, "/send", "and now in Rust?")[2]


def test_refused_votes_do_not_use_up_the_vote_limit(tmp_path, hard):
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl", MODELS)
    with running_arena(tmp_path, toml, hard / "question.jsonl", votes_per_minute=1) as (arena, url):
        client = Client(url, verbose=False)
        for _ in range(3):  # a stale tab clicking vote: refused, and not counted
            assert "no live battle" in client.predict(api_name="/vote_a")[0]
        prompt = client.predict("any", "any", api_name="/random_prompt")
        _battle(client, "/send", prompt)
        assert "Thanks" in client.predict(api_name="/vote_a")[0]
        assert arena.store.count() == 1


def test_provider_error_text_never_reaches_the_browser(tmp_path, hard, monkeypatch, caplog):
    """An overloaded provider's error names its endpoint and maker: the client gets a fixed sentence, the
    server log gets the detail with the model's name."""
    monkeypatch.setenv("CODEARENA_TEST_ANTHROPIC_KEY", "test-key")
    with FakeAnthropic(fail_first=[529] * 5) as fake:
        extra = (f'[[models]]\nname = "remote-claude"\nbackend = "anthropic"\nmodel = "claude-remote-id"\n'
                 f'base_url = "{fake.url}"\napi_key_env = "CODEARENA_TEST_ANTHROPIC_KEY"\nmax_retries = 0\n')
        toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl",
                                   MODELS[:1], extra=extra)
        with running_arena(tmp_path, toml, hard / "question.jsonl") as (arena, url):
            client = Client(url, verbose=False)
            # a fixed prompt whose text and replayed answer mention no provider: any hit below is a leak
            prompt = json.loads((hard / "question.jsonl").read_text().splitlines()[0])["turns"][0]["content"]
            job = client.submit(prompt, api_name="/send")
            job.result(timeout=60)
            received = json.dumps(job.outputs(), default=str)
            received += json.dumps(client.predict(api_name="/vote_a"), default=str)
    status = job.outputs()[-1][2]
    assert "Model " in status and "failed to answer (provider or server error); start a new battle" in status
    host_port = fake.url.split("//")[1].rstrip("/")
    for secret in (host_port, "HTTP 529", "Overloaded", "overloaded", "nthropic", "remote-claude", "claude-remote-id"):
        assert secret not in received, secret
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "arena_ui.arena")
    assert "remote-claude" in logged and "529" in logged


@contextmanager
def http_server_then_closed() -> Iterator[tuple[int, callable]]:
    """An HTTP server that answers the availability probe, and a function that shuts it (the port then
    refuses connections): a backend that was up at startup and dies before the battle."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def shut() -> None:
        server.shutdown()
        server.server_close()
    try:
        yield server.server_address[1], shut
    finally:
        if thread.is_alive():
            shut()


def broken_openai_entry(port: int, name: str = "remote-broken") -> str:
    return (f'[[models]]\nname = "{name}"\nbackend = "openai"\nmodel = "some-remote-id"\n'
            f'base_url = "http://127.0.0.1:{port}/v1"\nmax_retries = 0\ntimeout_s = 5\n')


def test_backend_failure_mid_battle_is_shown_and_takes_no_vote(tmp_path, hard):
    with http_server_then_closed() as (port, shut):
        toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl",
                                   MODELS[:1], extra=broken_openai_entry(port))
        with running_arena(tmp_path, toml, hard / "question.jsonl") as (arena, url):
            assert arena.usable_models == [MODELS[0], "remote-broken"]
            shut()
            client = Client(url, verbose=False)
            prompt = client.predict("any", "any", api_name="/random_prompt")
            status = _battle(client, "/send", prompt)[2]
            assert "failed" in status and "cannot take a vote" in status
            assert "remote-broken" not in status and "some-remote-id" not in status  # no unmasking
            assert "a model failed" in client.predict(api_name="/vote_a")[0]
            assert arena.store.count() == 0


def test_app_starts_with_an_unavailable_model_and_says_why(tmp_path, hard):
    port = free_port()  # nothing listens there
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl",
                               MODELS[:1], extra=broken_openai_entry(port))
    with running_arena(tmp_path, toml, hard / "question.jsonl") as (arena, url):
        assert arena.usable_models == [MODELS[0]]
        client = Client(url, verbose=False)
        status = _battle(client, "/send", "write a quicksort in C")[2]
        assert "at least two usable models" in status and "cannot reach" in status


def test_leaderboard_is_served_from_the_cache(arena_app):
    arena, url = arena_app
    client = Client(url, verbose=False)
    for _ in range(3):
        prompt = client.predict("any", "any", api_name="/random_prompt")
        _battle(client, "/send", prompt)
        client.predict(api_name="/vote_a")
    arena.leaderboard.refresh()
    before = arena.leaderboard.computations
    tables = [client.predict("all", api_name="/leaderboard") for _ in range(5)]
    assert arena.leaderboard.computations == before  # five page views, no recomputation
    board = tables[-1][0]
    assert set(board["headers"]) >= {"model", "rating", "ci_low", "ci_high", "rank_ub", "battles"}
    battles = dict(zip([r[1] for r in board["data"]], [r[6] for r in board["data"]], strict=True))
    assert sum(battles.values()) == 6
    assert "categories with fewer than 20 votes are not shown" in tables[-1][1]


def test_data_tab_downloads_load_as_chatbot_arena_battles(arena_app):
    arena, url = arena_app
    client = Client(url, verbose=False)
    prompt = client.predict("any", "any", api_name="/random_prompt")
    _battle(client, "/send", prompt)
    client.predict(api_name="/vote_bothbad")
    arena.leaderboard.refresh()
    *updates, info = client.predict(api_name="/prepare_downloads")
    files = [u["value"] if isinstance(u, dict) else u for u in updates]
    assert "1 human votes" in info
    votes = read_battles_file(files[0])
    assert list(votes[["winner", "anony"]].iloc[0]) == ["tie (bothbad)", True]
    assert votes["conversation_a"].iloc[0][0] == {"role": "user", "content": prompt}
    assert len(read_battles_file(files[1])) == 1
    # the leaderboard JSON is `codearena export ratings`'s: metadata around the rows (was a bare list)
    board = json.loads(Path(files[3]).read_text())
    assert {r["model"] for r in board["leaderboard"]} == set(votes[["model_a", "model_b"]].iloc[0])
    assert board["votes"] == 1 and board["method"] and board["ci_method"] and board["date"]
    assert json.loads(Path(files[4]).read_text())["votes"] == 1  # the CSV's sidecar
