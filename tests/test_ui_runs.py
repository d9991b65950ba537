"""Run buttons in the battle, server side and over HTTP: real arena, real replay answers with code, the real
bubblewrap sandbox, a real store. A run is refused as a vote is (another session's battle, answers not
complete, already voted), every run is stored with the vote, and run outputs count in the identity-leak check.

Skipped without a sandbox (failed when CODEARENA_REQUIRE_SANDBOX=1), except what needs none.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from arena_ui.arena import Arena, ArenaConfig, ArenaError
from arena_ui.battle import BattleRegistry, PromptInfo, VoteRefused
from arena_ui.http import ANSWER_PAGE_CSP
from arena_ui.replay_config import write_replay_models
from arena_ui.runs import RunSettings
from serving.execution import list_runners, sandbox_status
from serving.models import load_models
from serving.prompts import load_prompts
from tests.sandbox_helpers import require_runner
from tests.test_ui_app import running_arena
from votes import VoteStore
from votes.runs import BattleRun, CodeRun

pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402

PROMPT = "Print the first five squares in Python."
ANSWER_A = "Here you go:\n\n```python\nfor i in range(1, 6):\n    print(i * i)\n```\n"
ANSWER_B = ("Two steps.\n\n```python\ndef squares(n):\n    return [i * i for i in range(1, n + 1)]\n```\n\n"
            "```python\nprint(*squares(5), sep=',')\nprint('done', flush=True)\n```\n")
MODELS = ("alpha-coder", "beta-coder")


def write_code_battle(folder: Path, answers: dict[str, str], prompt: str = PROMPT, *,
                      chars_per_s: float = 0.0, language: str = "python") -> tuple[Path, Path]:
    """A replay arena over hand-written answers: question.jsonl, model_answer/<model>.jsonl, models.toml."""
    questions = folder / "question.jsonl"
    questions.write_text(json.dumps({"question_id": "q1", "category": "coding", "language": language,
                                     "turns": [{"content": prompt}]}) + "\n", encoding="utf-8")
    answer_dir = folder / "model_answer"
    answer_dir.mkdir(exist_ok=True)
    for model, text in answers.items():
        row = {"question_id": "q1", "model_id": model, "choices": [{"turns": [{"content": text}]}]}
        (answer_dir / f"{model}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    toml = write_replay_models(folder / "models.toml", answer_dir, questions, list(answers), chars_per_s=chars_per_s)
    return toml, questions


@pytest.fixture
def code_arena(tmp_path) -> Iterator[tuple[object, str]]:
    require_runner("python")
    toml, questions = write_code_battle(tmp_path, {MODELS[0]: ANSWER_A, MODELS[1]: ANSWER_B})
    with running_arena(tmp_path, toml, questions, votes_per_minute=0, battles_per_minute=0) as app:
        app[0].runs.wait_probed()
        yield app


def test_runs_are_refused_as_votes_are_and_stored_with_the_vote(code_arena) -> None:
    arena, url = code_arena
    stranger = Client(url, verbose=False)
    # no battle in this session
    assert "no live battle" in stranger.predict(api_name="/run_a")[0]
    voter = Client(url, verbose=False)
    voter.submit(PROMPT, api_name="/send").result(timeout=60)
    # another session cannot run this battle's code (its State holds no token of the voter's)
    assert "no live battle" in stranger.predict(api_name="/run_b")[0]
    assert "no live battle" in stranger.predict(api_name="/named_run_a")[0]

    out_a = voter.predict(api_name="/run_a")[0]
    out_b = voter.predict(api_name="/run_b")[0]
    (token,) = arena.registry.tokens()
    s = arena.registry._battles[token]
    want = {"alpha-coder": "1\n4\n9\n16\n25", "beta-coder": "1,4,9,16,25\ndone"}
    assert want[s.model_a] in out_a and want[s.model_b] in out_b
    assert "exit code 0" in out_a and "Python" in out_a
    assert s.model_a not in out_a + out_b and s.model_b not in out_a + out_b
    # which blocks ran: B's answer has two python blocks, both joined
    assert ("blocks 1, 2" in out_b) == (s.model_b == "beta-coder")
    assert ("blocks 1, 2" in out_a) == (s.model_a == "beta-coder")

    status = voter.predict(api_name="/vote_a")[0]
    assert "Thanks" in status
    # after the vote: refused (the battle is closed), and nothing more is stored
    assert "no live battle" in voter.predict(api_name="/run_a")[0]
    (battle,) = list(VoteStore(arena.store.path).iter_battles())
    assert [r.side for r in battle.runs] == ["model_a", "model_b"]
    assert all(r.turn == 1 and r.run.status == "ok" and r.run.language == "python" for r in battle.runs)
    assert battle.runs[0].run.stdout.strip().replace("\n", ",").startswith("1,4,9")
    assert battle.runs[0].run.limits == arena.config.runs.limits
    assert battle.runs[0].run.sandbox.startswith("bubblewrap") and battle.runs[0].started_at
    assert battle.flags == []


def test_a_run_before_the_answers_are_complete_is_refused(tmp_path) -> None:
    require_runner("python")
    # slow answers: the battle is still generating when the run is asked for
    toml, questions = write_code_battle(tmp_path, {MODELS[0]: ANSWER_A * 20, MODELS[1]: ANSWER_B * 20},
                                        chars_per_s=200)
    with running_arena(tmp_path, toml, questions) as (arena, url):
        client = Client(url, verbose=False)
        job = client.submit(PROMPT, api_name="/send")
        for _ in job:  # the first streamed update: generation is under way
            break
        assert "still being written" in client.predict(api_name="/run_a")[0]
        job.cancel()
        (token,) = arena.registry.tokens()
        assert arena.registry._battles[token].runs == []


def _arena(tmp_path: Path, answers: dict[str, str], **runs) -> Arena:
    toml, questions = write_code_battle(tmp_path, answers)
    arena = Arena(ArenaConfig(models=load_models(str(toml)), prompts=load_prompts(str(questions)),
                              db=tmp_path / "votes.db", runs=RunSettings(**runs)))
    return arena


async def _complete_battle(arena: Arena, session: str = "s1", mode: str = "anonymous") -> str:
    token = arena.open_battle(host="h", session=session, text=PROMPT, mode=mode, models=MODELS)
    async for _ in arena.run_turn(token, session):
        pass
    return token


def test_run_outputs_that_name_a_model_flag_the_vote(tmp_path) -> None:
    require_runner("python")
    leaky = "```python\nprint('this program was written by alpha-coder')\n```\n"
    arena = _arena(tmp_path, {MODELS[0]: leaky, MODELS[1]: ANSWER_B})

    async def scenario() -> None:
        token = await _complete_battle(arena)
        res = await arena.run_side(token=token, session="s1", host="h", side="model_a")
        assert res.stored and "alpha-coder" in res.record.run.stdout
        await arena.run_side(token=token, session="s1", host="h", side="model_b")
        vote = arena.vote(token=token, session="s1", host="h", winner="model_a")
        # the answer itself is code only (no prose claim): the flag comes from the run's output
        assert vote.battle.flags == ["identity_leak:model_a"]
        assert [r.side for r in vote.battle.runs] == ["model_a", "model_b"]

    asyncio.run(scenario())


def test_one_run_per_side_at_once_and_a_cap_per_turn(tmp_path) -> None:
    require_runner("python")
    slow = "```python\nimport time\ntime.sleep(0.5)\nprint('slept')\n```\n"
    arena = _arena(tmp_path, {MODELS[0]: slow, MODELS[1]: "No code here, only words."}, max_runs_per_side=2)

    async def scenario() -> None:
        token = await _complete_battle(arena)
        first = asyncio.create_task(arena.run_side(token=token, session="s1", host="h", side="model_a"))
        await asyncio.sleep(0.1)
        with pytest.raises(ArenaError, match="running already"):
            await arena.run_side(token=token, session="s1", host="h", side="model_a")
        assert (await first).record.run.stdout == "slept\n"
        await arena.run_side(token=token, session="s1", host="h", side="model_a")
        with pytest.raises(ArenaError, match="2 time"):
            await arena.run_side(token=token, session="s1", host="h", side="model_a")
        # an answer without code: nothing to run, refused, nothing stored for that side
        with pytest.raises(ArenaError, match="Nothing to run: the answer has no fenced code block"):
            await arena.run_side(token=token, session="s1", host="h", side="model_b")
        views = arena.side_views(token, "s1")
        assert views is not None
        assert not views[0].can_run and "the most allowed" in views[0].markdown
        assert not views[1].can_run and "Nothing to run" in views[1].markdown
        s = arena.session(token, "s1")
        assert [r.side for r in s.runs] == ["model_a", "model_a"]

    asyncio.run(scenario())


def test_a_run_that_ends_after_the_vote_is_not_stored(tmp_path) -> None:
    require_runner("python")
    slow = "```python\nimport time\ntime.sleep(1.0)\nprint('late')\n```\n"
    arena = _arena(tmp_path, {MODELS[0]: slow, MODELS[1]: ANSWER_B})

    async def scenario() -> None:
        token = await _complete_battle(arena)
        running = asyncio.create_task(arena.run_side(token=token, session="s1", host="h", side="model_a"))
        await asyncio.sleep(0.2)
        vote = arena.vote(token=token, session="s1", host="h", winner="tie")
        late = await running
        assert late.record.run.stdout == "late\n" and late.stored is False
        assert vote.battle.runs == ()
        assert VoteStore(arena.store.path).get(vote.battle.id).runs == ()

    asyncio.run(scenario())


def test_the_registry_refuses_runs_it_cannot_take(tmp_path) -> None:
    store = VoteStore(tmp_path / "v.db")
    reg = BattleRegistry(store)
    token = reg.open(owner="me", voter="v", model_a="a", model_b="b", mode="anonymous", prompt=PromptInfo("p"))
    with pytest.raises(VoteRefused, match="still being written"):
        reg.start_run(token, "me", "model_a", max_per_side=3)
    reg.finish_turn(token, "me", "```python\nprint(1)\n```", "x")
    with pytest.raises(VoteRefused, match="no live battle"):
        reg.start_run(token, "someone else", "model_a", max_per_side=3)
    with pytest.raises(VoteRefused, match="unknown side"):
        reg.start_run(token, "me", "model_c", max_per_side=3)
    ticket = reg.start_run(token, "me", "model_a", max_per_side=3)
    assert ticket.answer == "```python\nprint(1)\n```" and ticket.turn == 1
    run = BattleRun(side="model_a", turn=1, run=CodeRun(language="python", status="ok", stdout="1\n"))
    before = reg.live_chars
    assert reg.finish_run(ticket, "me", run) is True
    assert reg.live_chars == before + 2  # the output counts in the live-memory bound
    # a failed turn takes no run (as it takes no vote)
    reg.add_turn(token, "me", "more?")
    reg.finish_turn(token, "me", "a2", "b2", error="Model B failed")
    with pytest.raises(VoteRefused, match="a model failed"):
        reg.start_run(token, "me", "model_b", max_per_side=3)


def test_runs_off_with_no_run_and_where_the_sandbox_cannot_run(tmp_path, monkeypatch) -> None:
    arena = _arena(tmp_path, {MODELS[0]: ANSWER_A, MODELS[1]: ANSWER_B}, enabled=False)

    async def refused(a: Arena, why: str) -> None:
        token = await _complete_battle(a)
        with pytest.raises(ArenaError, match=why):
            await a.run_side(token=token, session="s1", host="h", side="model_a")
        views = a.side_views(token, "s1")
        assert views is not None and not views[0].can_run and why in views[0].markdown

    asyncio.run(refused(arena, "turned off"))
    # No bubblewrap (a real absence: the sandbox finds none where it is told to look)
    monkeypatch.setenv("CODEARENA_BWRAP", str(tmp_path / "no-bwrap-here"))
    sandbox_status(refresh=True)
    list_runners(refresh=True)
    try:
        other = tmp_path / "other"
        other.mkdir()
        arena = _arena(other, {MODELS[0]: ANSWER_A, MODELS[1]: ANSWER_B})
        arena.runs.start()
        assert arena.runs.wait_probed()
        asyncio.run(refused(arena, "no sandbox"))
        assert "bwrap not found" in arena.runs.availability().reason
        # an HTML answer is still shown: the voter's browser renders it, no server sandbox is needed
        page = other / "page"
        page.mkdir()
        html_arena = _arena(page, {MODELS[0]: "```html\n<p>hi</p>\n```\n", MODELS[1]: ANSWER_B})
        html_arena.runs.start()
        assert html_arena.runs.wait_probed()

        async def shown() -> None:
            token = await _complete_battle(html_arena)
            res = await html_arena.run_side(token=token, session="s1", host="h", side="model_a")
            assert res.record.run.status == "rendered" and res.page_key
            views = html_arena.side_views(token, "s1")
            assert views is not None and "no sandbox" in views[1].markdown and not views[1].can_run

        asyncio.run(shown())
    finally:
        monkeypatch.delenv("CODEARENA_BWRAP")
        sandbox_status(refresh=True)
        list_runners(refresh=True)


def test_html_answers_are_served_as_sandboxed_pages(tmp_path) -> None:
    # No server sandbox needed: the page runs in the voter's browser, in its sandboxed frame.
    page = "```html\n<h1 id='t'>Hi</h1>\n<script>document.getElementById('t').textContent = 'ran';</script>\n```\n"
    toml, questions = write_code_battle(tmp_path, {MODELS[0]: page, MODELS[1]: ANSWER_B}, language="html")
    with running_arena(tmp_path, toml, questions, votes_per_minute=0, battles_per_minute=0) as (arena, url):
        arena.runs.wait_probed()
        client = Client(url, verbose=False)
        client.submit(PROMPT, api_name="/send").result(timeout=60)
        (token,) = arena.registry.tokens()
        s = arena.registry._battles[token]
        side = "a" if s.model_a == MODELS[0] else "b"
        shown, frame = client.predict(api_name=f"/run_{side}")
        assert "an HTML page" in shown and 'sandbox="allow-scripts"' in frame and "allow-same-origin" not in frame
        src = frame.split('src="', 1)[1].split('"', 1)[0]
        with urllib.request.urlopen(url + src, timeout=10) as resp:
            body = resp.read().decode()
            assert resp.headers["Content-Security-Policy"] == ANSWER_PAGE_CSP
            assert resp.headers["Cache-Control"] == "no-store"
        assert "<h1 id='t'>Hi</h1>" in body and "Content-Security-Policy" in body  # the meta tag as well
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + "answer-page/" + "0" * 40, timeout=10)
        assert err.value.code == 404
        client.predict(api_name="/vote_tie")
        (battle,) = list(VoteStore(arena.store.path).iter_battles())
        (run,) = battle.runs
        assert run.run.status == "rendered" and run.run.language == "html" and "<h1 id='t'>" in run.run.code


@pytest.mark.parametrize("option, value, message", [
    ("--run-concurrency", "0", "--run-concurrency must be a whole number of at least 1"),
    ("--run-queue", "-1", "--run-queue must be a whole number of at least 0"),
    ("--runs-per-minute", "-5", "--runs-per-minute must be >= 0"),
])
def test_bad_run_options_are_one_error_line_and_exit_2(option, value, message, capsys) -> None:
    from codearena.cli import main

    assert main(["serve", option, value, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
