"""`codearena store copy`: SQLite -> PostgreSQL -> SQLite gives the same battles, a second run adds nothing,
and a copy that cannot be verified is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from codearena.cli import main
from tests.pg_helpers import sql
from tests.test_store_runs import battle_run, write_v1_file
from votes import Battle, VoteStore
from votes.copy import table_checksum


def sample_store(path: Path) -> list[Battle]:
    battles = [
        Battle(model_a="m1", model_b="m2", winner="model_a", prompt="write fizzbuzz", prompt_id="q1",
               answer_a="for i in …", answer_b="print('ü')", flags=["identity_leak:model_a"], voter="v1",
               judge_detail={"games": [{"score": "A>B", "z": None}]}, category="algorithm", language="python"),
        Battle(model_a="m2", model_b="m3", winner="tie (bothbad)", source="judge:qwen", mode="named", turn=2,
               conversation_a=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
               runs=(battle_run(),), timings={"a": [{"ttft_s": 0.5}], "b": None}, pair_probability=1 / 7),
        Battle(model_a="m1", model_b="m3", winner="tie", source="import:mt-bench-human",
               created_at="2024-01-01T00:00:00.000+00:00"),
    ]
    store = VoteStore(path)
    store.add_many(battles)
    store.add_answers([{"model": "m1", "question_id": "q1", "turns": ["one", "two"], "meta": {"tokens": 3}},
                       {"model": "m2", "question_id": "q1", "answer": "x"}])
    store.close()
    return battles


def test_round_trip_sqlite_postgres_sqlite_keeps_every_battle(tmp_path: Path, pg_url: str, capsys) -> None:
    src, back = tmp_path / "src.db", tmp_path / "back.db"
    battles = sample_store(src)
    assert main(["store", "copy", str(src), pg_url]) == 0
    out = capsys.readouterr().out
    assert "battles 3 (added 3, already there 0)" in out and "answers 2 (added 2" in out and "verified" in out
    assert main(["store", "copy", pg_url, str(back)]) == 0
    lite, pg, again = VoteStore(src), VoteStore(pg_url), VoteStore(back)
    assert sorted(again.iter_battles(), key=lambda b: b.id) == sorted(battles, key=lambda b: b.id)
    for table in ("battles", "answers"):
        assert list(again.iter_rows(table)) == list(lite.iter_rows(table)) == list(pg.iter_rows(table))
        assert table_checksum(again, table) == table_checksum(pg, table) == table_checksum(lite, table)
    assert again.answers() == lite.answers()
    # idempotent: the same copy again adds nothing, and still verifies
    capsys.readouterr()
    assert main(["store", "copy", str(src), pg_url]) == 0
    assert "battles 3 (added 0, already there 3)" in capsys.readouterr().out
    assert pg.count() == 3


def test_a_v1_sqlite_file_copies_into_a_v2_postgresql_store(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "v1.db"
    write_v1_file(src)
    assert main(["store", "copy", str(src), pg_url]) == 0
    assert VoteStore(src, read_only=True).schema_version() == 1  # the source was only read
    assert VoteStore(pg_url).get("id-1").flags == ["identity_leak:model_a"]


def test_a_conflicting_row_in_the_destination_fails_verification(tmp_path: Path, pg_url: str, capsys) -> None:
    src = tmp_path / "src.db"
    battles = sample_store(src)
    assert main(["store", "copy", str(src), pg_url]) == 0
    sql(pg_url, "UPDATE battles SET winner = 'model_b' WHERE id = %s", (battles[0].id,))
    capsys.readouterr()
    assert main(["store", "copy", str(src), pg_url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "battles differs" in err and "\n" not in err


@pytest.mark.parametrize("case", ["missing", "same", "not-a-store"])
def test_bad_stores_are_one_line_and_exit_2(tmp_path: Path, case: str, capsys) -> None:
    src = tmp_path / "src.db"
    if case != "missing":
        sample_store(src)
    dst = {"missing": tmp_path / "dst.db", "same": src, "not-a-store": tmp_path / "notes.db"}[case]
    if case == "not-a-store":
        dst.write_text("my notes\n")
    assert main(["store", "copy", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    if case == "not-a-store":
        assert dst.read_text() == "my notes\n"
