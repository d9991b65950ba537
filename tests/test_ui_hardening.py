"""The web app's trust boundaries, as an attacker meets them: forwarded addresses, oversized or malformed
prompts, live-battle memory, a vote that fails half-way, a store that cannot be written, repeated download
preparation. Real servers and a real SQLite file; the browser-side payloads are in test_browser_hostile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from arena_ui.arena import ArenaError
from arena_ui.battle import BattleRegistry, Phase, PromptInfo, VoteRefused
from arena_ui.render import safe_markdown
from arena_ui.replay_config import write_replay_models
from tests.test_ui_app import MODELS, _battle, running_arena
from votes import VoteStore
from votes.store_sqlite import SQLiteStore

pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def hard(shared_data) -> Path:
    return shared_data("arena-hard-v0.1")


@pytest.fixture
def toml(tmp_path, hard) -> Path:
    return write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl", MODELS,
                               chars_per_s=20000)


# -- forwarded headers -----------------------------------------------------------------------------------


def _start_battles(url: str, addresses: list[str], prompt: str) -> list[str]:
    statuses = []
    for addr in addresses:
        client = Client(url, verbose=False, headers={"X-Forwarded-For": addr})
        statuses.append(_battle(client, "/send", prompt)[2])
    return statuses


def test_forged_forwarded_for_does_not_multiply_the_rate_limit(tmp_path, toml, hard):
    with running_arena(tmp_path, toml, hard / "question.jsonl", battles_per_minute=2) as (arena, url):
        prompt = arena.prompts[0].text
        statuses = _start_battles(url, [f"203.0.113.{i}" for i in range(1, 5)], prompt)
        assert sum("too many battles" in s for s in statuses) == 2, statuses


def test_a_named_trusted_proxy_is_believed(tmp_path, toml, hard):
    with running_arena(tmp_path, toml, hard / "question.jsonl", battles_per_minute=2,
                       trusted_proxies=["127.0.0.1"]) as (arena, url):
        prompt = arena.prompts[0].text
        statuses = _start_battles(url, [f"203.0.113.{i}" for i in range(1, 5)], prompt)
        assert not any("too many" in s for s in statuses), statuses


def test_trusted_proxy_must_be_an_address():
    proc = subprocess.run([sys.executable, "-m", "codearena", "serve", "--trusted-proxy", "my-proxy"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--trusted-proxy 'my-proxy'" in proc.stderr and "Traceback" not in proc.stderr


# -- prompts and turns ------------------------------------------------------------------------------------


def test_oversized_and_invalid_prompts_are_refused_with_a_reason(tmp_path, toml, hard):
    with running_arena(tmp_path, toml, hard / "question.jsonl", votes_per_minute=0, battles_per_minute=0,
                       max_prompt_chars=500, max_turns=1) as (arena, url):
        client = Client(url, verbose=False)
        status = _battle(client, "/send", "x" * 501)[2]
        assert "at most 500" in status and len(arena.registry) == 0
        # a lone surrogate arrives through the JSON API as it is ("\\ud800" is valid JSON)
        with pytest.raises(ArenaError, match="not valid Unicode"):
            arena.open_battle(host="h", session="s", text="write a parser \ud800 please")
        assert len(arena.registry) == 0
        prompt = arena.prompts[0].text
        assert "Both answers are complete" in _battle(client, "/send", prompt)[2]
        assert "1 turn(s), the most" in _battle(client, "/send", "and in Go?")[2]
        client.predict(api_name="/vote_a")
        assert arena.store.count() == 1


def test_live_battles_are_bounded_in_memory(db_path):
    reg = BattleRegistry(VoteStore(db_path), max_chars=10_000)
    tokens = []
    for i in range(20):
        tokens.append(reg.open(owner=f"s{i}", voter="v", model_a="m1", model_b="m2", mode="anonymous",
                               prompt=PromptInfo("p" * 1000)))
        reg.finish_turn(tokens[-1], f"s{i}", "a" * 500, "b" * 500)
    assert reg.live_chars <= 10_000
    assert reg.peek(tokens[-1], "s19") is not None  # the newest stays
    assert reg.peek(tokens[0], "s0") is None  # the least recently used went first
    assert reg.live_chars == sum(s.chars for s in (reg.peek(t, f"s{i}") for i, t in enumerate(tokens)) if s)


# -- a vote is never lost half-way --------------------------------------------------------------------------


class FailingOnce(SQLiteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.fail = True

    def add(self, battle):
        if self.fail:
            self.fail = False
            raise OSError("disk full")
        return super().add(battle)


def test_a_vote_that_fails_to_store_can_be_cast_again(db_path):
    store = FailingOnce(db_path)
    reg = BattleRegistry(store)
    token = reg.open(owner="s", voter="v", model_a="m1", model_b="m2", mode="anonymous", prompt=PromptInfo("q"))
    reg.finish_turn(token, "s", "a", "b")
    with pytest.raises(OSError):
        reg.vote(token, "s", "model_a")
    assert reg.peek(token, "s").phase is Phase.READY
    reg.vote(token, "s", "model_a")
    assert store.count() == 1


def test_a_record_that_cannot_be_built_releases_the_vote(db_path, monkeypatch):
    reg = BattleRegistry(VoteStore(db_path))
    token = reg.open(owner="s", voter="v", model_a="m1", model_b="m2", mode="anonymous", prompt=PromptInfo("q"))
    reg.finish_turn(token, "s", "a", "b")
    calls = []

    def broken(s, winner):
        calls.append(winner)
        raise ValueError("cannot build")

    monkeypatch.setattr(BattleRegistry, "_battle_of", staticmethod(broken))
    for _ in range(2):  # the retry meets the same error, not "already has its vote"
        with pytest.raises(ValueError, match="cannot build"):
            reg.vote(token, "s", "tie")
    assert calls == ["tie", "tie"] and reg.peek(token, "s").phase is Phase.READY


def test_an_answer_with_lone_surrogates_is_stored(db_path):
    store = VoteStore(db_path)
    reg = BattleRegistry(store)
    token = reg.open(owner="s", voter="v", model_a="m1", model_b="m2", mode="anonymous", prompt=PromptInfo("q"))
    reg.finish_turn(token, "s", "bad \ud800 text", "fine")
    reg.vote(token, "s", "model_b")
    assert store.get(next(iter(store.iter_battles())).id).answer_a == "bad \ufffd text"
    with pytest.raises(VoteRefused, match="already has its vote|no live battle"):
        reg.vote(token, "s", "model_b")


# -- the store must take votes before the arena opens --------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run serve as another user on a store it cannot write")
def test_serve_refuses_a_store_it_cannot_write(hard):
    folder = Path(tempfile.mkdtemp(prefix="codearena-ro-"))
    try:
        folder.chmod(0o755)
        db = folder / "votes.db"
        VoteStore(db).close()
        db.chmod(0o644)  # owned by root: another user can read it, not write it
        models = write_replay_models(folder / "models.toml", hard / "model_answer", hard / "question.jsonl", MODELS)
        models.chmod(0o644)
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "codearena",
             "serve", "--db", str(db), "--models", str(models), "--prompts", str(hard / "question.jsonl"),
             "--port", "0"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(folder)})
        assert proc.returncode == 2, proc.stderr
        assert str(db) in proc.stderr and "Traceback" not in proc.stderr and "running on" not in proc.stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- downloads -----------------------------------------------------------------------------------------------


def test_download_preparation_reuses_its_files_and_is_rate_limited(tmp_path, toml, hard):
    with running_arena(tmp_path, toml, hard / "question.jsonl", votes_per_minute=0, battles_per_minute=0) as (
            arena, url):
        client = Client(url, verbose=False)
        _battle(client, "/send", arena.prompts[0].text)
        client.predict(api_name="/vote_a")
        arena.leaderboard.refresh()
        first = client.predict(api_name="/prepare_downloads")
        second = client.predict(api_name="/prepare_downloads")
        assert "1 human votes exported" in first[-1] and "1 human votes exported" in second[-1]
        assert arena.downloads.writes == 1  # nothing new to write: the same files again
        folders = list(arena.downloads.root.iterdir())
        assert len(folders) == 1
        for _ in range(3):  # 4 a minute
            last = client.predict(api_name="/prepare_downloads")
        assert "too many download preparations" in last[-1]
        root = arena.downloads.root
    assert not root.exists()  # the arena removes its files when it stops


# -- rendering -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "inert"), [
    ('<div style="position:fixed">x</div>', '&lt;div style="position:fixed">x&lt;/div>'),
    ("see ![p](http://e/t.gif)", "see !\\[p](http://e/t.gif)"),
    ("```html\n<b>code</b>\n```\n<b>", "```html\n<b>code</b>\n```\n&lt;b>"),
    ("`a<b` and <i>", "`a<b` and &lt;i>"),
    # where the page's renderer would not see code, neither does this: escaped
    ("\\`<img src=x>`", "\\`&lt;img src=x>`"),
    ("``` x ` y\n<img>\n```", "``` x ` y\n&lt;img>\n```"),
    ("```\n<a>\n```~~\n<img>", "```\n<a>\n```~~\n&lt;img>"),
    ("`a\n\n<img>\n\n`", "`a\n\n&lt;img>\n\n`"),
    ("~~~\n<still streaming>", "~~~\n<still streaming>"),
])
def test_untrusted_text_renders_without_html(text, inert):
    assert safe_markdown(text) == inert


# -- sampling probabilities: kept with each vote, active sampling, propensity reweighting ------------------


def test_votes_keep_their_pair_probability_and_active_sampling_updates_it(tmp_path, toml, hard, capsys):
    from codearena.cli import main

    with running_arena(tmp_path, toml, hard / "question.jsonl", votes_per_minute=0, battles_per_minute=0,
                       sampling="active", leaderboard_refresh_s=3600) as (arena, url):
        client = Client(url, verbose=False)
        for _ in range(6):
            _battle(client, "/send", arena.prompts[0].text)
            client.predict(api_name="/vote_a")
        # at start no model has votes: every pair is as new as the others, 1/3 each
        assert set(arena.store.battles_frame()["pair_probability"].round(6)) == {round(1 / 3, 6)}
        arena.leaderboard.refresh()  # the background refresh, now: it recomputes the pair probabilities
        chosen = dict(arena.sampler.chosen)
        assert len(chosen) == 3 and abs(sum(chosen.values()) - 1) < 1e-9
        _battle(client, "/send", arena.prompts[0].text)
        client.predict(api_name="/vote_b")
        last = arena.store.battles_frame().iloc[-1]
        pair = tuple(sorted((last["model_a"], last["model_b"])))
        assert abs(last["pair_probability"] - arena.sampler.pair_probabilities()[pair]) < 1e-9
        db = arena.store.path
    capsys.readouterr()
    assert main(["rate", str(db), "--reweight", "propensity", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and all(r["rating"] is not None for r in rows)
