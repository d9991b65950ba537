"""`codearena judge` stores its verdicts where the --db help says ($CODEARENA_DB or ./codearena.db), so
they reach `codearena rate --source judge:NAME`; --no-store keeps the store untouched. Uses the fake
OpenAI-compatible judge server of tests/test_duel.py (the only fake: the paid remote API)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codearena.cli import main
from tests.test_duel import _answers_file, _prompts_file, api  # noqa: F401 - api is a fixture
from votes.store import VoteStore


def _argv(api_toml: Path, tmp_path: Path) -> list[str]:
    a = _answers_file(tmp_path / "alpha.jsonl", "alpha", {"q1": "GOOD is_prime", "q2": "weak sql"})
    b = _answers_file(tmp_path / "beta.jsonl", "beta", {"q1": "weak prime", "q2": "GOOD sql"})
    return ["judge", "--answers-a", str(a), "--answers-b", str(b), "--prompts", str(_prompts_file(tmp_path)),
            "--judge", "fake-judge", "--models", str(api_toml), "--out", str(tmp_path / "j.jsonl"), "--quiet"]


def test_judge_stores_into_codearena_db_by_default(api: Path, tmp_path: Path,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("CODEARENA_DB", str(db))
    assert main(_argv(api, tmp_path)) == 0
    assert f"battles stored in {db}" in capsys.readouterr().out
    frame = VoteStore(db).battles_frame(source="judge:fake-judge")
    assert sorted(zip(frame.prompt_id, frame.winner, strict=True)) == [("q1", "model_a"), ("q2", "model_b")]
    assert main(["rate", str(db), "--source", "judge:fake-judge", "--format", "json"]) == 0
    assert {r["model"] for r in json.loads(capsys.readouterr().out)} == {"alpha", "beta"}


def test_judge_no_store_touches_no_store(api: Path, tmp_path: Path,  # noqa: F811
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CODEARENA_DB", str(tmp_path / "env.db"))
    monkeypatch.chdir(tmp_path)
    assert main([*_argv(api, tmp_path), "--no-store"]) == 0
    assert "battles stored" not in capsys.readouterr().out
    assert not (tmp_path / "env.db").exists() and not (tmp_path / "codearena.db").exists()
    assert len((tmp_path / "j.jsonl").read_text().splitlines()) == 2
