"""`codearena generate`: model_answer output, resume, failures, bad input, the store; real backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codearena.cli import main
from votes.store import VoteStore


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def replay_models(tmp_path, shared_data) -> Path:
    root = shared_data("mt-bench-answers")
    path = tmp_path / "models.toml"
    path.write_text(f"""
[[models]]
name = "gpt-4"
backend = "replay"
model = "{root / 'model_answer/gpt-4.jsonl'}"
concurrency = 4
[models.options]
questions = "{root / 'question.jsonl'}"

[[models]]
name = "remote"
backend = "openai"
model = "m"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "CODEARENA_TEST_MISSING_KEY"
""", encoding="utf-8")
    return path


def run_generate(models: Path, out: Path, prompts: Path | str, *extra: str) -> int:
    return main(["generate", "gpt-4", "--models", str(models), "--prompts", str(prompts), "--out", str(out),
                 "--no-progress", *extra])


def test_multi_turn_answers_in_model_answer_format(tmp_path, replay_models, shared_data, capsys):
    root = shared_data("mt-bench-answers")
    out = tmp_path / "answers.jsonl"
    assert run_generate(replay_models, out, root / "question.jsonl", "--limit", "4") == 0
    rows = lines(out)
    stored = {str(r["question_id"]): r for r in map(json.loads, open(root / "model_answer/gpt-4.jsonl"))}
    assert len(rows) == 4
    for row in rows:
        assert set(row) == {"question_id", "answer_id", "model_id", "choices", "tstamp"}
        assert row["model_id"] == "gpt-4" and row["choices"][0]["index"] == 0
        turns = [t["content"] for t in row["choices"][0]["turns"]]
        assert turns == stored[row["question_id"]]["choices"][0]["turns"]  # both MT-bench turns
        assert len(turns) == 2
    assert "gpt-4: 4 answered, 0 already in" in capsys.readouterr().out


def test_rerun_resumes_and_a_torn_last_line_is_redone(tmp_path, replay_models, shared_data, capsys):
    questions = shared_data("mt-bench-answers") / "question.jsonl"
    out = tmp_path / "answers.jsonl"
    assert run_generate(replay_models, out, questions, "--limit", "3") == 0
    first = lines(out)
    with out.open("a", encoding="utf-8") as fh:  # a crash in the middle of writing a fourth answer
        fh.write('{"question_id": "84", "model_id": "gpt-4", "choi')
    capsys.readouterr()
    assert run_generate(replay_models, out, questions, "--limit", "5") == 0
    assert "2 answered, 3 already in" in capsys.readouterr().out
    rows = lines(out)  # every line parses: the torn one is gone
    assert rows[:3] == first
    assert sorted(r["question_id"] for r in rows) == ["81", "82", "83", "84", "85"]
    assert run_generate(replay_models, out, questions, "--limit", "5") == 0
    assert len(lines(out)) == 5


def test_failed_prompts_are_reported_and_the_rest_is_kept(tmp_path, replay_models, shared_data, capsys):
    questions = shared_data("mt-bench-answers") / "question.jsonl"
    first = json.loads(questions.open().readline())
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps(r) for r in [
        {"id": "known", "messages": [{"role": "user", "content": first["turns"][0]}]},
        {"id": "unknown", "messages": [{"role": "user", "content": "Write fizzbuzz in Rust."}]},
    ]) + "\n", encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    assert run_generate(replay_models, out, prompts) == 1
    captured = capsys.readouterr()
    assert "1 answered, 0 already in" in captured.out and "1 failed" in captured.out
    assert "failed: prompt unknown: prompt not among the replay questions" in captured.err
    assert [r["question_id"] for r in lines(out)] == ["known"]


def test_store_flag_puts_answers_in_the_vote_store(tmp_path, replay_models, shared_data):
    questions = shared_data("mt-bench-answers") / "question.jsonl"
    db = tmp_path / "votes.db"
    assert run_generate(replay_models, tmp_path / "a.jsonl", questions, "--limit", "2", "--db", str(db),
                        "--store") == 0
    stored = VoteStore(db).answers("gpt-4")
    assert [a["question_id"] for a in stored] == ["81", "82"]
    assert len(stored[0]["turns"]) == 2 and stored[0]["answer"] == stored[0]["turns"][0]


@pytest.mark.parametrize(("model", "out_name", "message"), [
    ("nope", "a.jsonl", "unknown model 'nope'; known models: gpt-4, remote"),
    ("remote", "a.jsonl", "model 'remote' is not usable: environment variable CODEARENA_TEST_MISSING_KEY"),
    ("remote", "missing-dir/a.jsonl", "model 'remote' is not usable"),  # a refused run makes no folder
    ("gpt-4", ".", "is a folder; name the JSONL file to write"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, replay_models, capsys, monkeypatch, model, out_name, message):
    monkeypatch.delenv("CODEARENA_TEST_MISSING_KEY", raising=False)
    out = tmp_path / out_name
    code = main(["generate", model, "--models", str(replay_models), "--out", str(out), "--no-progress"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or out == tmp_path
    assert not (tmp_path / "missing-dir").exists()


def test_out_in_a_folder_that_does_not_exist_yet_is_created(tmp_path, replay_models, shared_data, capsys,
                                                            monkeypatch):
    # The README's first-run command: `generate MODEL --prompts builtin --out answers/qwen.jsonl` in a
    # fresh folder (was: "output folder answers does not exist").
    monkeypatch.chdir(tmp_path)
    questions = shared_data("mt-bench-answers") / "question.jsonl"
    assert run_generate(replay_models, Path("answers/deep/gpt-4.jsonl"), questions, "--limit", "2") == 0
    assert sorted(r["question_id"] for r in lines(tmp_path / "answers/deep/gpt-4.jsonl")) == ["81", "82"]
    assert "2 answered" in capsys.readouterr().out


def test_unreachable_server_is_refused_before_anything_is_written(tmp_path, replay_models, capsys, monkeypatch):
    monkeypatch.setenv("CODEARENA_TEST_MISSING_KEY", "k")
    out = tmp_path / "a.jsonl"
    # The model is listed as unusable before anything starts: nothing is written.
    assert main(["generate", "remote", "--models", str(replay_models), "--out", str(out), "--limit", "2",
                 "--no-progress"]) == 2
    assert "cannot reach http://127.0.0.1:9/v1" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_local_model_end_to_end_with_token_counts(tmp_path, capsys):
    pytest.importorskip("llama_cpp")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps(r) for r in [
        {"id": "rev", "messages": [{"role": "user", "content": "Write a Python function that reverses a string."}],
         "programming_language": "python", "category": "code generation"},
        {"id": "sum", "messages": [{"role": "user", "content": "Write a JavaScript function summing an array."}],
         "programming_language": "javascript"},
    ]) + "\n", encoding="utf-8")
    out = tmp_path / "smol.jsonl"
    assert main(["generate", "smollm2-135m", "--prompts", str(prompts), "--out", str(out), "--max-tokens", "16",
                 "--no-progress"]) == 0
    rows = {r["question_id"]: r for r in lines(out)}
    assert set(rows) == {"rev", "sum"}
    for row in rows.values():
        turn = row["choices"][0]["turns"][0]
        assert turn["token_len"] == 16 and turn["content"].strip()
    summary = capsys.readouterr().out
    assert "2 answered" in summary and "32 tokens" in summary and "tok/s" in summary
