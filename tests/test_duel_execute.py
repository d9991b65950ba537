"""`codearena judge --execute` and `codearena duel --execute` end to end: the real sandbox runs the answers'
code, a real CLI stores the verdicts in a real SQLite store, and the judge is tests/test_duel.py's local
OpenAI-compatible server (standing for a paid remote API) that sees whether the runs are in its prompt:
shown the runs, it prefers the answer whose program printed RAN_OK; without them it prefers the answer
that says GOOD. So a verdict tells which prompt the judge got."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from codearena.cli import main
from serving.judge import EXEC_SYSTEM_PROMPT, SYSTEM_PROMPT, JudgeSettings, PairTask, build_messages
from tests.sandbox_helpers import require_runner
from tests.test_duel import RAN_OK, FakeAPI, _answers_file, api  # noqa: F401 - api is a fixture used below
from votes.judgment import JudgmentRecord
from votes.runs import CodeRun
from votes.store import VoteStore

PROMPTS = [
    ("x1", "Write is_prime in Python", "Development and Programming", "Python"),
    ("x2", "Write a SQL query for the top customers", "Databases and Data Handling", "SQL"),
    ("x3", "Print a greeting in JavaScript", "Development and Programming", "JavaScript"),
    ("x4", "Sum a list in Python", "Development and Programming", "Python"),
]
PRINTS_OK = "```python\nprint('RESULT-' + 'OK')\n```"  # prints RAN_OK; the text itself does not hold it
ALPHA = {  # right code, modest words
    "x1": f"Here is one way:\n{PRINTS_OK}",
    "x2": "weak sql",
    "x3": "```js\nconsole.log(['RESULT', 'OK'].join('-'))\n```",
    "x4": "```python\nwhile True:\n    pass\n```",
}
BETA = {  # GOOD words, code that fails (but for x4)
    "x1": "GOOD, trust me:\n```python\nimport sys\nprint('beta-fails', file=sys.stderr)\nsys.exit(3)\n```",
    "x2": "GOOD sql",
    "x3": "GOOD:\n```javascript\nconsole.log(\n```",
    "x4": f"GOOD:\n{PRINTS_OK}",
}


def _prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({
        "id": pid, "messages": [{"role": "user", "content": text}], "programming_language": [lang],
        "category": cat}) + "\n" for pid, text, cat, lang in PROMPTS))
    return path


def _records(path: Path) -> dict[str, dict]:
    return {r["question_id"]: r for r in map(json.loads, path.read_text().splitlines())}


def _require_runners() -> None:
    require_runner("python")
    require_runner("javascript")


def test_judge_execute_shows_both_outputs_and_keeps_the_runs(api: Path, tmp_path: Path,  # noqa: F811
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _require_runners()
    a = _answers_file(tmp_path / "alpha.jsonl", "alpha", ALPHA)
    b = _answers_file(tmp_path / "beta.jsonl", "beta", BETA)
    db = tmp_path / "votes.db"
    base = ["judge", "--answers-a", str(a), "--answers-b", str(b), "--prompts", str(_prompts_file(tmp_path)),
            "--judge", "fake-judge", "--models", str(api), "--db", str(db), "--quiet"]
    assert main([*base, "--execute", "--run-timeout", "1"]) == 0
    out = capsys.readouterr().out
    assert "judged by fake-judge+exec" in out and "with source judge:fake-judge+exec" in out
    exec_file = tmp_path / "judgment-alpha-vs-beta-by-fake-judge+exec.jsonl"
    records = _records(exec_file)

    # What the judge server received: the execution-aware prompts, with both outputs of each pair.
    requests = [r["messages"] for r in FakeAPI.requests]
    assert len(requests) == 8 and {m[0]["content"] for m in requests} == {EXEC_SYSTEM_PROMPT}
    x1 = [m[1]["content"] for m in requests if "Write is_prime" in m[1]["content"]]
    assert len(x1) == 2 and all(RAN_OK in p and "beta-fails" in p and "exit status 3" in p for p in x1)
    # Each run follows its own answer, in both games (the runs swap with the answers).
    g1, g2 = (g["user_prompt"] for g in records["x1"]["games"])
    assert g1.index("Here is one way") < g1.index(RAN_OK) < g1.index("GOOD, trust me") < g1.index("beta-fails")
    assert g2.index("GOOD, trust me") < g2.index("beta-fails") < g2.index("Here is one way") < g2.index(RAN_OK)
    # No code, or a limit: said in words, not an error.
    assert records["x2"]["games"][0]["user_prompt"].count("No code was run: the answer has no fenced code block") == 2
    assert "limit of 1 s" in records["x4"]["games"][0]["user_prompt"]
    assert "SyntaxError" in records["x3"]["games"][0]["user_prompt"]

    # The verdicts follow the runs: alpha's code works on x1 and x3, though beta says GOOD.
    assert {q: r["winner"] for q, r in records.items()} == {"x1": "model_a", "x2": "model_b", "x3": "model_a",
                                                            "x4": "model_b"}
    assert {q: r["judge"] for q, r in records.items()} == dict.fromkeys(records, "fake-judge")
    runs = records["x1"]["runs"]
    assert runs["model_a"]["status"] == "ok" and RAN_OK in runs["model_a"]["stdout"]
    assert (runs["model_b"]["status"], runs["model_b"]["exit_code"]) == ("runtime_error", 3)
    assert records["x2"]["runs"]["model_a"]["status"] == "no_code"
    assert records["x3"]["runs"]["model_b"]["status"] == "compile_error"
    assert records["x4"]["runs"]["model_a"]["status"] in ("timeout", "cpu_limit")
    assert CodeRun.from_dict(runs["model_a"]).language == "python"

    # The store: the +exec rater, the runs in judge_detail and as the battle's runs.
    store = VoteStore(db)
    frame = store.battles_frame("judge:fake-judge+exec")
    assert len(frame) == 4
    battle = store.get(frame.set_index("prompt_id").loc["x1", "id"])
    assert battle.judge_detail["runs"] == runs
    assert [(r.side, r.turn, r.run.status) for r in battle.runs] == [("model_a", 1, "ok"),
                                                                     ("model_b", 1, "runtime_error")]
    exec_ids = set(frame["id"])

    # The plain judge on the same answers: CodeArena's prompt, another source, other battle ids.
    FakeAPI.requests = []
    assert main(base) == 0
    capsys.readouterr()
    plain = _records(tmp_path / "judgment-alpha-vs-beta-by-fake-judge.jsonl")
    assert {q: r["winner"] for q, r in plain.items()} == dict.fromkeys(plain, "model_b")
    assert all("runs" not in r for r in plain.values())
    assert not any("Code Execution" in m["content"] for r in FakeAPI.requests for m in r["messages"])
    assert plain["x1"]["games"][0]["user_prompt"] == build_messages(
        PROMPTS[0][1], ALPHA["x1"], BETA["x1"], JudgeSettings())[1]["content"]
    assert {r["messages"][0]["content"] for r in FakeAPI.requests} == {SYSTEM_PROMPT}
    assert store.sources() == {"judge:fake-judge": 4, "judge:fake-judge+exec": 4}
    assert exec_ids.isdisjoint(store.battles_frame("judge:fake-judge")["id"])

    # Again with --execute: every verdict is stored, so nothing is judged (nor run) again; the records
    # written still carry the runs, read back from the battles.
    FakeAPI.requests = []
    assert main([*base, "--execute"]) == 0
    assert FakeAPI.requests == [] and store.count() == 8
    assert _records(exec_file)["x1"]["runs"] == runs

    # The judgments file round-trips through the importer: the same battles, runs and all.
    capsys.readouterr()
    fresh = tmp_path / "fresh.db"
    assert main(["import", "codearena-judgments", str(exec_file), "--db", str(fresh)]) == 0
    text = capsys.readouterr().out
    assert "added 4" in text and "source judge:fake-judge+exec: 4" in text
    imported = VoteStore(fresh)
    for bid in exec_ids:
        got, want = imported.get(bid), store.get(bid)
        for name in ("source", "winner", "prompt_id", "answer_a", "answer_b", "judge_detail", "runs"):
            assert getattr(got, name) == getattr(want, name), name
    assert JudgmentRecord.from_battle(imported.get(battle.id)).rater == "fake-judge+exec"
    assert main(["import", "codearena-judgments", str(exec_file), "--db", str(db)]) == 0
    assert "added 0, already present 4" in capsys.readouterr().out


def test_duel_execute_stores_the_exec_rater(api: Path, tmp_path: Path,  # noqa: F811
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _require_runners()
    answers = tmp_path / "ans"
    answers.mkdir()
    _answers_file(answers / "good.jsonl", "good", ALPHA)  # cached: the duel generates nothing
    _answers_file(answers / "meh.jsonl", "meh", BETA)
    db, out = tmp_path / "votes.db", tmp_path / "j.jsonl"
    assert main(["duel", "good", "meh", "--execute", "--prompts", str(_prompts_file(tmp_path)), "--limit", "3",
                 "--judge", "fake-judge", "--models", str(api), "--db", str(db), "--answers-dir", str(answers),
                 "--out", str(out), "--quiet"]) == 0
    assert "with source judge:fake-judge+exec" in capsys.readouterr().out
    store = VoteStore(db)
    frame = store.battles_frame().set_index("prompt_id")
    assert store.sources() == {"judge:fake-judge+exec": 3}
    assert frame["winner"].to_dict() == {"x1": "model_a", "x2": "model_b", "x3": "model_a"}
    detail = store.get(frame.loc["x3", "id"]).judge_detail
    assert RAN_OK in detail["runs"]["model_a"]["stdout"] and detail["runs"]["model_a"]["language"] == "javascript"
    assert all(set(r["runs"]) == {"model_a", "model_b"} for r in map(json.loads, out.read_text().splitlines()))


def test_each_answer_runs_once_however_many_pairs_show_it() -> None:
    require_runner("python")
    from serving.answer_runs import AnswerRunner, ExecuteSettings

    shared = f"Shared:\n{PRINTS_OK}"
    tasks = [PairTask(question_id="q", question="?", model_a="m1", answer_a=shared, model_b=m, answer_b=f"{m}",
                      language="Python") for m in ("m2", "m3", "m4")]
    runner = AnswerRunner(ExecuteSettings(concurrency=2))
    ran = asyncio.run(runner.attach(tasks, progress=False))
    assert runner.runs_done == 4  # the shared answer once, three answers without code
    assert all(t.runs is not None and t.runs[0] is ran[0].runs[0] for t in ran)  # type: ignore[index]
    assert ran[0].runs[0].status == "ok" and ran[1].runs[1].status == "no_code"  # type: ignore[index]


def test_execute_options_bad_input(api: Path, tmp_path: Path,  # noqa: F811
                                   capsys: pytest.CaptureFixture[str]) -> None:
    a = _answers_file(tmp_path / "alpha.jsonl", "alpha", ALPHA)
    b = _answers_file(tmp_path / "beta.jsonl", "beta", BETA)
    base = ["judge", "--answers-a", str(a), "--answers-b", str(b), "--prompts", str(_prompts_file(tmp_path)),
            "--judge", "fake-judge", "--models", str(api), "--no-store", "--quiet"]
    for extra, message in ((["--run-timeout", "2"], "--run-timeout only make sense with --execute"),
                           (["--execute", "--run-timeout", "0"], "--run-timeout must be more than 0"),
                           (["--execute", "--run-concurrency", "0"], "--run-concurrency must be at least 1")):
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    assert FakeAPI.requests == [] and not list(tmp_path.glob("judgment-*"))


@pytest.mark.slow
def test_duel_execute_on_local_models(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The real local judge reads the execution-aware prompt (longer than the plain one) and still gives
    verdicts; every judgment keeps both runs. Verdicts themselves are the model's business."""
    from tests.test_duel import LOCAL_JUDGE, _require_local_models

    _require_local_models()
    require_runner("python")
    monkeypatch.delenv("CODEARENA_MODELS", raising=False)
    db, out = tmp_path / "votes.db", tmp_path / "judgments.jsonl"
    rc = main(["duel", "smollm2-135m", "qwen2.5-coder-0.5b", "--limit", "2", "--max-tokens", "96",
               "--judge-max-tokens", "96", "--db", str(db), "--answers-dir", str(tmp_path / "ans"),
               "--out", str(out), "--quiet", "--execute"])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2
    for r in records:
        assert set(r["runs"]) == {"model_a", "model_b"}
        assert all("Code Execution|>" in g["user_prompt"] for g in r["games"])
    errors = [r["error"] for r in records if r["error"]]
    assert all("conflicting" in e for e in errors), errors
    assert rc == (1 if errors else 0)
    assert VoteStore(db).sources() == ({f"judge:{LOCAL_JUDGE}+exec": 2 - len(errors)} if len(errors) < 2 else {})
    assert f"judged by {LOCAL_JUDGE}+exec" in capsys.readouterr().out
