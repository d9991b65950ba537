"""Code runs in every export (Chatbot Arena JSONL, CSV, Parquet + card, DPO pairs) and back through import."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from codearena.cli import main
from tests.test_store_runs import battle_run
from votes.record import Battle
from votes.runs import parse_runs
from votes.store import VoteStore


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def store(db_path: Path) -> tuple[Path, dict[str, Battle]]:
    s = VoteStore(db_path)
    both = (battle_run("model_a"),
            battle_run("model_b", status="runtime_error", exit_code=None, signal="SIGSEGV", stdout="",
                       stderr="Segmentation fault\n", compile_s=0.4, language="c", runner="gcc"),
            battle_run("model_a", stdout="second press\n", stdin="3\n"))
    battles = {
        "both": Battle(model_a="qwen", model_b="smol", winner="model_b", prompt="p1", answer_a="A1", answer_b="B1",
                       prompt_id="q1", runs=both, voter="v1"),
        "one": Battle(model_a="smol", model_b="qwen", winner="model_a", prompt="p2", answer_a="A2", answer_b="B2",
                      prompt_id="q2", runs=(battle_run("model_b", status="no_code", language=None, exit_code=None,
                                                       stdout="", stderr="nothing to run", code="", blocks=()),),
                      voter="v2"),
        "none": Battle(model_a="qwen", model_b="smol", winner="tie", prompt="p3", answer_a="A3", answer_b="B3",
                       prompt_id="q3", voter="v3"),
    }
    s.add_many(battles.values())
    s.close()
    return db_path, battles


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_exported_runs_import_back_unchanged(store, tmp_path: Path, capsys, fmt: str) -> None:
    db, battles = store
    out = tmp_path / (f"votes.{fmt}" if fmt != "parquet" else "release")
    rc, _, err = cli(capsys, "export", "votes", "--db", str(db), "--format", fmt, "--out", str(out))
    assert rc == 0, err
    new = tmp_path / "new.db"
    rc, text, err = cli(capsys, "import", "arena-battles", str(out), "--db", str(new))
    assert rc == 0 and "added 3" in text and "rejected 0" in text, text + err
    got = {b.id: b for b in VoteStore(new).iter_battles()}
    for b in battles.values():
        assert got[b.id].runs == b.runs
    assert got[battles["both"].id].runs[1].run.signal == "SIGSEGV"
    assert got[battles["both"].id].runs[2].run.stdin == "3\n"


def test_jsonl_carries_runs_as_lists_and_the_card_documents_them(store, tmp_path: Path) -> None:
    db, battles = store
    out = tmp_path / "votes.jsonl"
    assert main(["export", "votes", "--db", str(db), "--out", str(out)]) == 0
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    both = rows[battles["both"].id]["runs"]
    assert [r["side"] for r in both] == ["model_a", "model_b", "model_a"]
    assert both[0]["run"]["stdout"] == "hello\n" and both[0]["run"]["limits"]["wall_s"] == 3.0
    assert rows[battles["none"].id]["runs"] == []

    release = tmp_path / "release"
    assert main(["export", "votes", "--db", str(db), "--out", str(release)]) == 0
    df = pq.read_table(release / "battles.parquet").to_pandas()
    cell = df.loc[df["id"] == battles["both"].id, "runs"].iloc[0]
    assert parse_runs(cell) == battles["both"].runs
    card = (release / "README.md").read_text()
    assert "- `runs`: JSON text" in card and "rendered" in card and "limits" in card

    csv = tmp_path / "votes.csv"
    assert main(["export", "votes", "--db", str(db), "--out", str(csv)]) == 0
    flat = pd.read_csv(csv)
    text = flat.loc[flat["id"] == battles["one"].id, "runs"].iloc[0]
    assert json.loads(text)[0]["run"]["stderr"] == "nothing to run"  # flattened as JSON text


def test_preference_pairs_carry_each_sides_runs_beside_trl_fields(store, tmp_path: Path) -> None:
    db, battles = store
    out = tmp_path / "prefs.jsonl"
    assert main(["export", "preferences", "--db", str(db), "--out", str(out)]) == 0
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == 2  # the tie is no preference
    both = rows[battles["both"].id]  # B won: chosen is model_b's answer
    assert (both["prompt"], both["chosen"], both["rejected"]) == ("p1", "B1", "A1")
    assert [r["run"]["signal"] for r in both["runs_chosen"]] == ["SIGSEGV"]
    assert [r["run"]["stdout"] for r in both["runs_rejected"]] == ["hello\n", "second press\n"]
    one = rows[battles["one"].id]  # A won; only B ran
    assert one["runs_chosen"] == [] and one["runs_rejected"][0]["run"]["status"] == "no_code"
    # TRL reads the three fields as plain strings
    assert all(isinstance(r[k], str) for r in rows.values() for k in ("prompt", "chosen", "rejected"))


def test_a_file_with_bad_runs_rejects_those_rows_with_a_reason(tmp_path: Path, capsys) -> None:
    good = battle_run().to_dict()
    bad_status = {**good, "run": {**good["run"], "status": "exploded"}}
    rows = [
        {"model_a": "a", "model_b": "b", "winner": "model_a", "question_id": "1", "runs": [good]},
        {"model_a": "a", "model_b": "b", "winner": "model_b", "question_id": "2", "runs": [bad_status]},
        {"model_a": "a", "model_b": "b", "winner": "tie", "question_id": "3", "runs": "[{broken"},
        {"model_a": "a", "model_b": "b", "winner": "tie", "question_id": "4", "runs": [{**good, "turn": 3}]},
        {"model_a": "a", "model_b": "b", "winner": "tie", "question_id": "5"},
    ]
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    db = tmp_path / "in.db"
    rc, text, err = cli(capsys, "import", "arena-battles", str(path), "--db", str(db))
    assert rc == 0, err
    assert "added 2" in text and "rejected 3" in text, text
    assert "bad runs: run 0: unknown run status 'exploded'" in text
    assert "bad runs: runs: not JSON" in text
    assert "a run of turn 3 in a battle of 1 turn(s)" in text
    stored = {b.prompt_id: b for b in VoteStore(db).iter_battles()}
    assert set(stored) == {"1", "5"} and stored["1"].runs == (battle_run(),) and stored["5"].runs == ()
