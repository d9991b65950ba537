"""`codearena judge` and `codearena duel` end to end: real CLI, real store, real openai client over real
HTTP. The only fake is the paid remote API itself: a local OpenAI-compatible server whose "judge" prefers
the answer that says GOOD (and whose "models" answer with or without GOOD), so every verdict is known.
The slow tests run the real local models on CPU."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codearena.cli import main
from serving.judge import FOLLOWUP
from votes.store import VoteStore

ANSWER_RE = re.compile(r"<\|The Start of Assistant ([AB])'s Answer\|>\n(.*?)\n<\|The End of Assistant \1's Answer\|>",
                       re.S)
EXECUTION_RE = re.compile(r"<\|The Start of Assistant ([AB])'s Code Execution\|>\n(.*?)\n"
                          r"<\|The End of Assistant \1's Code Execution\|>", re.S)
# What a program prints when it works (built at run time, so the answer's text never holds it).
RAN_OK = "RESULT-OK"


def fake_reply(body: dict) -> str:
    """What the fake API answers. As the judge: a verdict by the GOOD rule, none for NOVERDICT, only after
    the follow-up for LATE; shown the answers' code runs (an execution-aware prompt), the answer whose run
    printed RAN_OK wins first, whatever GOOD says. As an answering model: GOOD from 'model-good', a weak
    answer otherwise."""
    messages = body["messages"]
    if body["model"] != "judge-model":
        return "GOOD: a correct answer." if body["model"] == "model-good" else "I am not sure, maybe use a loop."
    prompt = messages[1]["content"]
    if "NOVERDICT" in prompt:
        return "Both answers have merit and I will not pick one."
    if "LATE" in prompt and len(messages) == 2:
        return "Assistant A explains more, assistant B is shorter."
    if "ECHO" in prompt and len(messages) == 2:  # a small judge parroting the instructions' label list
        return "Labels: [[A>>B]] [[A>B]] [[A=B]] [[B>A]] [[B>>A]]. A is fine, B is fine."
    runs = dict(EXECUTION_RE.findall(prompt))
    if runs and (RAN_OK in runs["A"]) != (RAN_OK in runs["B"]):
        return "A's code works. [[A>>B]]" if RAN_OK in runs["A"] else "B's code works. [[B>>A]]"
    answers = dict(ANSWER_RE.findall(prompt))
    good_a, good_b = "GOOD" in answers["A"], "GOOD" in answers["B"]
    if good_a and not good_b:
        return "A is correct. My final verdict is: [[A>>B]]"
    if good_b and not good_a:
        return "B is correct. My final verdict is: [[B>>A]]"
    return "They look similar, but A comes first: [[A>B]]"  # position bias, which the swap cancels


class FakeAPI(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._send({"object": "list", "data": []})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if body["model"] == "model-broken":  # a served model that fails every request
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        text = fake_reply(body)
        self._send({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split()), "total_tokens": 20}})


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Path]:
    """The fake server plus a models.toml naming it: judge 'fake-judge', models 'good' and 'meh'."""
    FakeAPI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    toml = tmp_path / "models.toml"
    toml.write_text("".join(
        f'[[models]]\nname = "{name}"\nbackend = "openai"\nmodel = "{model}"\nbase_url = "{url}"\n'
        f"max_retries = 0\ntimeout_s = 20\n\n"
        for name, model in (("fake-judge", "judge-model"), ("good", "model-good"), ("meh", "model-meh"),
                            ("broken", "model-broken")))
        # Remote API models whose key is not set: listed, but not usable.
        + "".join(f'[[models]]\nname = "{name}"\nbackend = "openai"\nmodel = "m"\n'
                  f'api_key_env = "CODEARENA_TEST_NO_SUCH_KEY"\n\n' for name in ("keyless", "keyless-judge")))
    try:
        yield toml
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


PROMPTS = [
    ("q1", "Write is_prime in Python", "Development and Programming", "Python"),
    ("q2", "Write a SQL query for the top customers", "Databases and Data Handling", "SQL"),
    ("q3", "LATE: explain closures in JavaScript", "Development and Programming", "JavaScript"),
    ("q4", "NOVERDICT: reverse a string in C", "Development and Programming", "C"),
]


def _prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({
        "id": pid, "messages": [{"role": "user", "content": text}], "difficulty": "easy",
        "programming_language": [lang], "category": cat}) + "\n" for pid, text, cat, lang in PROMPTS))
    return path


def _answers_file(path: Path, model: str, texts: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps({"question_id": qid, "answer_id": qid, "model_id": model,
                                        "choices": [{"index": 0, "turns": [{"content": t}]}]}) + "\n"
                            for qid, t in texts.items()))
    return path


def test_a_reply_echoing_every_label_gets_the_follow_up(api: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "echo.jsonl"
    prompts.write_text(json.dumps({"id": "e1", "messages": [{"role": "user", "content": "ECHO: sort a list"}],
                                   "programming_language": ["Python"], "category": "Algorithm Design"}) + "\n")
    a = _answers_file(tmp_path / "alpha.jsonl", "alpha", {"e1": "GOOD sorted(xs)"})
    b = _answers_file(tmp_path / "beta.jsonl", "beta", {"e1": "weak bubble"})
    out = tmp_path / "judgments.jsonl"
    assert main(["judge", "--answers-a", str(a), "--answers-b", str(b), "--prompts", str(prompts), "--judge",
                 "fake-judge", "--models", str(api), "--out", str(out), "--no-store", "--quiet"]) == 0
    (record,) = map(json.loads, out.read_text().splitlines())
    # The first reply names all five labels (a conflict); the follow-up alone decides each game.
    assert [g["followup"] for g in record["games"]] == [True, True]
    assert [g["score"] for g in record["games"]] == ["A>>B", "B>>A"]
    assert record["winner"] == "model_a" and record["error"] is None


# -- judge --------------------------------------------------------------------------------------------


def test_judge_two_answer_files(api: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _answers_file(tmp_path / "alpha.jsonl", "alpha",
                      {"q1": "GOOD is_prime", "q2": "weak sql", "q3": "closures capture", "q4": "GOOD reverse"})
    b = _answers_file(tmp_path / "beta.jsonl", "beta",
                      {"q1": "weak prime", "q2": "GOOD sql", "q3": "closures remember", "q4": "weak reverse"})
    out, db = tmp_path / "judgments.jsonl", tmp_path / "votes.db"
    argv = ["judge", "--answers-a", str(a), "--answers-b", str(b), "--prompts", str(_prompts_file(tmp_path)),
            "--judge", "fake-judge", "--models", str(api), "--out", str(out), "--db", str(db), "--quiet"]

    # q4 never gets a verdict: an error, reported, exit 1; the other three are stored.
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "1 of 4 judgments have no verdict" in captured.err and "question q4" in captured.err

    records = {r["question_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert {q: r["winner"] for q, r in records.items()} == {"q1": "model_a", "q2": "model_b", "q3": "tie", "q4": None}
    assert records["q1"]["points"] == 4 and records["q1"]["judge"] == "fake-judge"
    assert [g["score"] for g in records["q1"]["games"]] == ["A>>B", "B>>A"]
    # Game 2 shows the answers swapped.
    g1, g2 = (g["user_prompt"] for g in records["q1"]["games"])
    assert g1.index("GOOD is_prime") < g1.index("weak prime") and g2.index("weak prime") < g2.index("GOOD is_prime")
    # q3: no label at first, one follow-up each game, then the verdict; raw replies kept.
    assert [g["followup"] for g in records["q3"]["games"]] == [True, True]
    assert records["q3"]["games"][0]["judgment"].startswith("Assistant A explains more")
    followups = [r for r in FakeAPI.requests if len(r["messages"]) == 4]
    assert followups and all(r["messages"][-1]["content"] == FOLLOWUP for r in followups)
    assert records["q4"]["error"].startswith("game 1: no verdict label after the follow-up")

    store = VoteStore(db)
    frame = store.battles_frame(source="judge:fake-judge")
    assert sorted(zip(frame.prompt_id, frame.winner, strict=True)) == [("q1", "model_a"), ("q2", "model_b"),
                                                                        ("q3", "tie")]
    assert set(frame["mode"]) == {"anonymous"} and set(frame["model_a"]) == {"alpha"}
    detail = store.get(frame.id[0]).judge_detail
    assert len(detail["games"]) == 2 and detail["games"][0]["judgment"]

    # Run again: stored verdicts are reused, only q4 goes back to the judge, nothing is stored twice.
    FakeAPI.requests = []
    assert main(argv) == 1
    assert {r["messages"][1]["content"].count("NOVERDICT") for r in FakeAPI.requests} == {1}
    assert store.count() == 3
    again = {r["question_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert again["q1"]["winner"] == "model_a" and [g["score"] for g in again["q1"]["games"]] == ["A>>B", "B>>A"]
    assert again["q3"]["games"][1]["judgment"] == records["q3"]["games"][1]["judgment"]


def test_judge_bad_input(api: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _answers_file(tmp_path / "a.jsonl", "alpha", {"q1": "x"})
    b = _answers_file(tmp_path / "b.jsonl", "beta", {"q2": "y"})
    prompts = str(_prompts_file(tmp_path))
    base = ["judge", "--prompts", prompts, "--models", str(api), "--judge", "fake-judge", "--quiet"]

    assert main([*base, "--answers-a", str(a), "--answers-b", str(b)]) == 2
    assert "no question is answered in both" in capsys.readouterr().err

    assert main([*base, "--answers-a", str(a), "--answers-b", str(a)]) == 2
    assert "are both answers of 'alpha'" in capsys.readouterr().err

    assert main(["judge", "--prompts", prompts, "--models", str(api), "--judge", "gpt-99",
                 "--answers-a", str(a), "--answers-b", str(b)]) == 2
    assert "unknown model 'gpt-99'; known models: fake-judge, good, meh, broken, keyless, keyless-judge" in (
        capsys.readouterr().err)

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question_id": "q1", "model_id": "m", "choices": [{"turns": ["x"]}]}\n{oops\n')
    assert main([*base, "--answers-a", str(broken), "--answers-b", str(b)]) == 2
    assert f"{broken}:line 2" in capsys.readouterr().err
    assert not list(tmp_path.glob("judgment-*"))
    assert FakeAPI.requests == []


def test_judge_unusable_or_storing_nothing(api: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEARENA_TEST_NO_SUCH_KEY", raising=False)
    a = _answers_file(tmp_path / "a.jsonl", "alpha", {"q4": "x"})
    b = _answers_file(tmp_path / "b.jsonl", "beta", {"q4": "y"})
    db = tmp_path / "votes.db"
    base = ["judge", "--prompts", str(_prompts_file(tmp_path)), "--models", str(api), "--quiet",
            "--answers-a", str(a), "--answers-b", str(b), "--db", str(db)]
    assert main([*base, "--judge", "keyless-judge"]) == 2
    assert "judge 'keyless-judge' is not usable: " in capsys.readouterr().err
    assert not db.exists() and not list(tmp_path.glob("judgment-*"))
    # q4 gets no verdict: nothing stored, so no "battles stored in" line.
    assert main([*base, "--judge", "fake-judge"]) == 1
    captured = capsys.readouterr()
    assert "battles stored in" not in captured.out and "error: no battle stored" in captured.err


# -- duel ---------------------------------------------------------------------------------------------


def test_duel_generates_judges_stores_and_resumes(api: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    prompts = _prompts_file(tmp_path)
    db, answers = tmp_path / "votes.db", tmp_path / "model_answer"
    argv = ["duel", "good", "meh", "--prompts", str(prompts), "--judge", "fake-judge", "--models", str(api),
            "--db", str(db), "--answers-dir", str(answers), "--quiet", "--limit", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "answers good: 0 cached, 3 generated" in out
    # 'good' wins all three prompts: CodeArena score 1.0, with a row per category.
    assert re.search(r"│ all\s+│ 3 │\s+3 │\s+0 │\s+0 │\s+0 │\s+1\.000 │", out)
    assert re.search(r"│ Databases and Data Handling\s+│ 1 │\s+1 │", out)
    assert {p.name for p in answers.iterdir()} == {"good.jsonl", "meh.jsonl"}
    store = VoteStore(db)
    assert store.sources() == {"judge:fake-judge": 3}
    assert set(store.battles_frame()["winner"]) == {"model_a"}
    assert {r["question_id"] for r in store.answers("meh")} == {"q1", "q2", "q3"}

    # Again, with one more prompt: only that prompt is generated and judged.
    FakeAPI.requests = []
    assert main([*argv[:-2], "--limit", "4"]) == 1  # q4 gets no verdict
    out = capsys.readouterr().out
    assert "answers good: 3 cached, 1 generated" in out
    assert {r["messages"][-1]["content"][:9] for r in FakeAPI.requests if r["model"] != "judge-model"} == {"NOVERDICT"}
    assert store.count() == 3


def test_duel_baseline_mode(api: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "votes.db"
    assert main(["duel", "--baseline", "good", "meh", "--prompts", str(_prompts_file(tmp_path)), "--limit", "2",
                 "--judge", "fake-judge", "--models", str(api), "--db", str(db),
                 "--answers-dir", str(tmp_path / "ans"), "--quiet", "--out", str(tmp_path / "j.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "meh vs good, judged by fake-judge" in out
    assert re.search(r"│ all\s+│ 2 │\s+0 │\s+0 │\s+2 │\s+0 │\s+0\.000 │", out)
    frame = VoteStore(db).battles_frame()
    assert set(zip(frame.model_a, frame.model_b, frame.winner, strict=True)) == {("meh", "good", "model_b")}
    assert len((tmp_path / "j.jsonl").read_text().splitlines()) == 2


def test_duel_bad_input_touches_nothing(api: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "votes.db"
    common = ["--models", str(api), "--db", str(db), "--answers-dir", str(tmp_path / "ans"), "--judge", "fake-judge"]
    assert main(["duel", "good", "nope", *common]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "messages": [{"role": "user", "content": "x"}]}\n{"id": "b"}\n')
    assert main(["duel", "good", "meh", "--prompts", str(bad), *common]) == 2
    assert f"{bad}:line 2: not a prompt" in capsys.readouterr().err
    assert main(["duel", "--baseline", "good", "good", *common]) == 2
    assert "is the baseline" in capsys.readouterr().err
    assert main(["duel", "good", "meh", "--limit", "0", *common]) == 2
    assert not db.exists() and not (tmp_path / "ans").exists()
    assert FakeAPI.requests == []


def test_duel_with_unusable_models_stops_before_anything(api: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEARENA_TEST_NO_SUCH_KEY", raising=False)
    db, answers = tmp_path / "votes.db", tmp_path / "ans"
    assert main(["duel", "--baseline", "good", "keyless", "--judge", "keyless-judge", "--models", str(api),
                 "--prompts", str(_prompts_file(tmp_path)), "--db", str(db), "--answers-dir", str(answers),
                 "--quiet"]) == 2
    captured = capsys.readouterr()
    # Both unusable models are named with the reason; no "0 battles stored" report, nothing written.
    assert "model 'keyless' is not usable: " in captured.err and "CODEARENA_TEST_NO_SUCH_KEY" in captured.err
    assert "judge 'keyless-judge' is not usable: " in captured.err
    assert "stored" not in captured.out
    assert not db.exists() and not answers.exists()
    assert FakeAPI.requests == []


def test_duel_with_cached_answers_needs_no_key_for_that_model(api: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEARENA_TEST_NO_SUCH_KEY", raising=False)
    answers = tmp_path / "ans"
    answers.mkdir()
    _answers_file(answers / "keyless.jsonl", "keyless", {"q1": "GOOD is_prime", "q2": "weak sql"})
    assert main(["duel", "meh", "keyless", "--judge", "fake-judge", "--models", str(api), "--limit", "2",
                 "--prompts", str(_prompts_file(tmp_path)), "--db", str(tmp_path / "votes.db"),
                 "--answers-dir", str(answers), "--quiet"]) == 0
    assert VoteStore(tmp_path / "votes.db").count() == 2


def test_duel_that_stores_no_battle_fails(api: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "votes.db"
    common = ["--judge", "fake-judge", "--models", str(api), "--db", str(db), "--answers-dir",
              str(tmp_path / "ans"), "--quiet", "--prompts", str(_prompts_file(tmp_path)), "--limit", "2"]
    # Every answer of 'broken' fails: no pair to judge, nothing stored.
    assert main(["duel", "--baseline", "good", "broken", *common]) == 1
    captured = capsys.readouterr()
    assert "answers broken: 0 cached, 0 generated, 2 failed" in captured.out
    assert "battles stored in" not in captured.out
    assert "error: no battle stored" in captured.err
    assert VoteStore(db).count() == 0


# -- the real local models (CPU, minutes) --------------------------------------------------------------

LOCAL_JUDGE = "qwen2.5-coder-0.5b"


def _require_local_models() -> None:
    from serving.backends import make_backend
    from serving.models import load_models

    for spec in load_models(None).values():
        ok, why = make_backend(spec).availability()
        if not ok:
            pytest.skip(f"local model {spec.name} unavailable: {why}")


@pytest.mark.slow
def test_grammar_follow_up_makes_the_local_judge_answer() -> None:
    """A first reply cut at 1 token cannot hold a verdict; the grammar-constrained follow-up must."""
    import asyncio

    from serving.backends import make_backend
    from serving.judge import LABELS, JudgeSettings, backend_ask, judge_pair
    from serving.models import load_models

    _require_local_models()
    backend = make_backend(load_models(None)[LOCAL_JUDGE])

    async def go():
        try:
            return await judge_pair(backend_ask(backend), question_id="p", question="Write is_prime(n) in Python.",
                                    model_a="x", answer_a="def is_prime(n):\n    return n > 1 and all(n % d for d in "
                                    "range(2, int(n ** 0.5) + 1))", model_b="y", answer_b="print('hello')",
                                    judge=LOCAL_JUDGE, settings=JudgeSettings(max_tokens=1))
        finally:
            await backend.aclose()

    judgment = asyncio.run(go())
    assert judgment.error is None, judgment.error
    for game in judgment.games:
        assert game.followup and len(game.replies) == 2
        assert re.fullmatch(r"\[\[(A>>B|A>B|A=B|B>A|B>>A)\]\]", game.replies[1].strip()), game.replies
        assert game.label in LABELS
    assert judgment.winner in ("model_a", "model_b", "tie")


@pytest.mark.slow
def test_duel_on_local_models(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    _require_local_models()
    monkeypatch.delenv("CODEARENA_MODELS", raising=False)
    db, out = tmp_path / "votes.db", tmp_path / "judgments.jsonl"
    rc = main(["duel", "smollm2-135m", "qwen2.5-coder-0.5b", "--limit", "2", "--max-tokens", "48",
               "--judge-max-tokens", "96", "--db", str(db), "--answers-dir", str(tmp_path / "ans"),
               "--out", str(out), "--quiet"])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2
    errors = [r["error"] for r in records if r["error"]]
    # The grammar-constrained follow-up means a missing label cannot survive; only a first reply naming two
    # different verdicts could still be an error.
    assert all("conflicting" in e for e in errors), errors
    assert rc == (1 if errors else 0)
    store = VoteStore(db)
    assert store.sources() == {f"judge:{LOCAL_JUDGE}": 2 - len(errors)}
    assert {r["question_id"] for r in store.answers("smollm2-135m")} == {"codearena-sample-001", "codearena-sample-002"}
    assert "smollm2-135m vs qwen2.5-coder-0.5b, judged by qwen2.5-coder-0.5b" in capsys.readouterr().out
