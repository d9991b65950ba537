"""Code runs stored with the vote: the Battle field, the v1 -> v2 migration on a real v1 file, bad runs refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from votes import Battle, BattleError, StoreError, VoteStore
from votes.runs import BattleRun, CodeRun, RunLimits, RunRecordError, parse_runs, runs_json
from votes.store import SCHEMA_VERSION

# The schema exactly as release 1 wrote it (dumped from sqlite_master of a v1 store), kept here as text so
# that the test does not lean on the code it tests.
V1_DDL = """
CREATE TABLE "battles" (
   "id" TEXT PRIMARY KEY, "created_at" TEXT, "prompt_id" TEXT, "prompt" TEXT, "prompt_hash" TEXT,
   "category" TEXT, "language" TEXT, "turn" INTEGER, "model_a" TEXT NOT NULL, "model_b" TEXT NOT NULL,
   "answer_a" TEXT, "answer_b" TEXT, "conversation_a" TEXT, "conversation_b" TEXT, "winner" TEXT NOT NULL,
   "source" TEXT NOT NULL, "mode" TEXT NOT NULL, "voter" TEXT, "flags" TEXT, "judge_detail" TEXT
);
CREATE INDEX "idx_battles_source" ON "battles" ("source");
CREATE INDEX "idx_battles_model_a_model_b" ON "battles" ("model_a", "model_b");
CREATE TABLE "answers" (
   "model" TEXT, "question_id" TEXT, "answer" TEXT, "turns" TEXT, "source" TEXT, "created_at" TEXT, "meta" TEXT,
   PRIMARY KEY ("model", "question_id")
);
"""
V1_COLUMNS = ["id", "created_at", "prompt_id", "prompt", "prompt_hash", "category", "language", "turn", "model_a",
              "model_b", "answer_a", "answer_b", "conversation_a", "conversation_b", "winner", "source", "mode",
              "voter", "flags", "judge_detail"]


def code_run(stdout: str = "hello\n", **kw) -> CodeRun:
    base = dict(language="python", status="ok", limits=RunLimits(wall_s=3.0), exit_code=0, stdout=stdout,
                wall_s=0.021, cpu_s=0.018, blocks=(0, 2), code="print('hello')\n", runner="python",
                runner_version="Python 3.11.2", sandbox="bubblewrap 0.8.0")
    base.update(kw)
    return CodeRun(**base)


def battle_run(side: str = "model_a", turn: int = 1, **kw) -> BattleRun:
    return BattleRun(side=side, turn=turn, run=code_run(**kw), started_at="2026-01-02T03:04:05.000+00:00",
                     queued_s=0.25)


def write_v1_file(path: Path, n: int = 3) -> list[tuple]:
    rows = []
    for i in range(n):
        rows.append((f"id-{i}", f"2025-01-0{i + 1}T00:00:00.000+00:00", f"q{i}", f"prompt {i}", f"h{i}", "algo",
                     "python", 1, "m1", "m2", f"answer a {i}", f"answer b {i}", None, None,
                     ["model_a", "model_b", "tie"][i % 3], "human", "anonymous", f"v{i}",
                     json.dumps(["identity_leak:model_a"] if i == 1 else []), None))
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_DDL)
        conn.executemany(f"INSERT INTO battles VALUES ({', '.join('?' for _ in V1_COLUMNS)})", rows)
        conn.execute("INSERT INTO answers VALUES ('m1', 'q0', 'a', '[\"a\"]', 'f', 'now', '{}')")
        conn.execute("PRAGMA user_version = 1")
    return rows


def test_a_battle_keeps_its_runs_through_the_store(db_path: Path) -> None:
    runs = (battle_run("model_a"), battle_run("model_b", stdout="", status="runtime_error", exit_code=1,
                                              stderr="Traceback ...\n"),
            battle_run("model_a", turn=2, stdout="again\n"))
    b = Battle(model_a="m1", model_b="m2", winner="model_b", prompt="p", answer_a="a", answer_b="b", turn=2,
               runs=runs)
    store = VoteStore(db_path)
    store.add(b)
    got = VoteStore(db_path).get(b.id)
    assert got == b and got.runs == runs
    stored = json.loads(store.battles_frame()["runs"].iloc[0])
    assert [r["side"] for r in stored] == ["model_a", "model_b", "model_a"]
    assert stored[0]["run"]["limits"]["wall_s"] == 3.0 and stored[0]["run"]["blocks"] == [0, 2]
    # a battle without runs stores NULL, not "[]"
    plain = Battle(model_a="m1", model_b="m2", winner="tie")
    store.add(plain)
    assert store.get(plain.id).runs == ()
    assert store.db.execute("SELECT runs FROM battles WHERE id = ?", [plain.id]).fetchone() == (None,)


def test_a_v1_file_is_migrated_to_v2_with_its_rows_intact(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    rows = write_v1_file(path)
    store = VoteStore(path)
    assert store.schema_version() == SCHEMA_VERSION == 2
    columns = [r[1] for r in store.db.execute("PRAGMA table_info(battles)").fetchall()]
    assert columns == [*V1_COLUMNS, "runs", "timings", "pair_probability"]
    got = store.db.execute(f"SELECT {', '.join(V1_COLUMNS)}, runs, timings, pair_probability "
                           "FROM battles ORDER BY id").fetchall()
    assert got == [(*r, None, None, None) for r in rows]  # every old value as it was; the new column empty
    old = store.get("id-1")
    assert old.runs == () and old.flags == ["identity_leak:model_a"] and old.answer_a == "answer a 1"
    assert store.answers("m1")[0]["answer"] == "a"
    # the migrated file takes new votes with runs, and a second opening changes nothing
    b = Battle(model_a="m1", model_b="m2", winner="model_a", runs=(battle_run(),))
    store.add(b)
    store.close()
    again = VoteStore(path)
    assert again.schema_version() == 2 and again.count() == 4 and again.get(b.id).runs == b.runs


def test_a_v1_file_read_only_is_read_without_migrating(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    write_v1_file(path)
    before = path.read_bytes()
    reader = VoteStore(path, read_only=True)
    assert reader.schema_version() == 1 and reader.count() == 3
    assert [b.runs for b in reader.iter_battles()] == [(), (), ()]
    assert "runs" not in reader.battles_frame().columns
    reader.close()
    assert path.read_bytes() == before


def test_a_newer_file_than_v2_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    write_v1_file(path)
    VoteStore(path).close()  # now v2
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    for read_only in (False, True):
        with pytest.raises(StoreError, match="newer CodeArena"):
            VoteStore(path, read_only=read_only)


@pytest.mark.parametrize("runs, message", [
    ([{"side": "model_a", "turn": 1}], "needs 'run'"),
    ('[{"side": "model_c", "turn": 1, "run": {"language": "python", "status": "ok"}}]', "run side"),
    ('[{"side": "model_a", "turn": 0, "run": {"language": "python", "status": "ok"}}]', "turn must be"),
    ('[{"side": "model_a", "turn": 1, "run": {"language": "python", "status": "fine"}}]', "unknown run status"),
    ('[{"side": "model_a", "turn": 1, "run": {"language": "python", "status": "ok"}, "extra": 1}]', "unknown"),
    ("[not json", "not JSON"),
    ('{"side": "model_a"}', "must be a list"),
])
def test_bad_runs_are_refused_with_a_reason(runs, message) -> None:
    with pytest.raises(RunRecordError, match=message):
        parse_runs(runs)


def test_a_battle_refuses_runs_that_do_not_fit(db_path: Path) -> None:
    with pytest.raises(BattleError, match="BattleRun"):
        Battle(model_a="m1", model_b="m2", winner="tie", runs=({"side": "model_a"},))
    with pytest.raises(BattleError, match="turn 2 in a battle of 1"):
        Battle(model_a="m1", model_b="m2", winner="tie", runs=(battle_run(turn=2),))
    # a damaged stored row is an error naming the battle, not a half-loaded battle
    store = VoteStore(db_path)
    b = Battle(model_a="m1", model_b="m2", winner="tie", runs=[battle_run()])
    assert isinstance(b.runs, tuple)
    store.add(b)
    store.db.execute("UPDATE battles SET runs = ? WHERE id = ?", ['[{"side": "nobody"}]', b.id])
    store.db.conn.commit()
    with pytest.raises(BattleError, match=f"battle {b.id}: stored runs are damaged"):
        store.get(b.id)


def test_runs_json_round_trips() -> None:
    runs = (battle_run(), battle_run("model_b", stdin="1 2\n", compile_s=0.5, truncated=True))
    assert runs_json(()) is None
    assert parse_runs(runs_json(runs)) == runs
    assert parse_runs(json.loads(runs_json(runs))) == runs
    assert parse_runs(None) == () and parse_runs("") == () and parse_runs([]) == ()
