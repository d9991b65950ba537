"""The vote store on a real PostgreSQL (own database per test): schema version and migration, refusing what
is not ours, read-only opening, idempotent all-or-nothing imports, the same rows as SQLite, a broken
connection survived, and the arena state replicas share (leader lock, snapshot, rate limits)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.pg_helpers import TcpForwarder, sql
from votes import Battle, StoreError, VoteStore
from votes.store import SCHEMA_VERSION, open_store

ROOT = Path(__file__).resolve().parents[1]

# A version-1 store as this release's PostgreSQL schema spelled it, kept as text so that the test does not
# lean on the code it tests.
V1_DDL = """
CREATE TABLE battles (id TEXT COLLATE "C" PRIMARY KEY, created_at TEXT COLLATE "C", prompt_id TEXT COLLATE "C",
  prompt TEXT COLLATE "C", prompt_hash TEXT COLLATE "C", category TEXT COLLATE "C", language TEXT COLLATE "C",
  turn BIGINT, model_a TEXT COLLATE "C" NOT NULL, model_b TEXT COLLATE "C" NOT NULL, answer_a TEXT COLLATE "C",
  answer_b TEXT COLLATE "C", conversation_a TEXT COLLATE "C", conversation_b TEXT COLLATE "C",
  winner TEXT COLLATE "C" NOT NULL, source TEXT COLLATE "C" NOT NULL, mode TEXT COLLATE "C" NOT NULL,
  voter TEXT COLLATE "C", flags TEXT COLLATE "C", judge_detail TEXT COLLATE "C");
CREATE TABLE answers (model TEXT COLLATE "C", question_id TEXT COLLATE "C", answer TEXT COLLATE "C",
  turns TEXT COLLATE "C", source TEXT COLLATE "C", created_at TEXT COLLATE "C", meta TEXT COLLATE "C",
  PRIMARY KEY (model, question_id));
CREATE TABLE codearena_schema (version INTEGER NOT NULL);
INSERT INTO codearena_schema VALUES (1);
INSERT INTO battles (id, created_at, prompt_id, prompt, turn, model_a, model_b, answer_a, answer_b, winner,
  source, mode, voter, flags) VALUES
  ('id-0', '2025-01-01T00:00:00.000+00:00', 'q0', 'prompt 0', 1, 'm1', 'm2', 'a0', 'b0', 'model_a', 'human',
   'anonymous', 'v0', '[]'),
  ('id-1', '2025-01-02T00:00:00.000+00:00', 'q1', 'prompt 1', 1, 'm1', 'm2', 'a1', 'b1', 'tie', 'human',
   'anonymous', 'v1', '["identity_leak:model_a"]');
INSERT INTO answers VALUES ('m1', 'q0', 'a', '["a"]', 'f', 'now', '{}');
"""


def vote(i: int = 0, **kw) -> Battle:
    base = dict(model_a=f"m{i % 3}", model_b=f"m{i % 3 + 1}", winner="model_a", prompt=f"prompt {i}",
                prompt_id=f"q{i}")
    base.update(kw)
    return Battle(**base)


def tables(url: str) -> list[str]:
    return [r[0] for r in sql(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                   "'public' ORDER BY table_name")]


def test_a_url_opens_the_postgresql_store_and_a_path_the_sqlite_one(pg_url: str, tmp_path: Path) -> None:
    assert type(open_store(pg_url)).__name__ == "PostgresStore"
    assert type(VoteStore(pg_url)).__name__ == "PostgresStore"
    assert type(open_store(tmp_path / "v.db")).__name__ == "SQLiteStore"
    assert VoteStore(pg_url).schema_version() == SCHEMA_VERSION
    assert {"battles", "answers", "codearena_schema"} <= set(tables(pg_url))


def test_a_v1_database_is_migrated_with_its_rows_intact(pg_url: str) -> None:
    sql(pg_url, V1_DDL)
    before = sql(pg_url, "SELECT * FROM battles ORDER BY id")
    store = VoteStore(pg_url)
    assert store.schema_version() == SCHEMA_VERSION == 2
    got = sql(pg_url, "SELECT * FROM battles ORDER BY id")
    assert got == [(*r, None, None, None) for r in before]  # old values as they were; the new columns empty
    assert store.get("id-1").flags == ["identity_leak:model_a"] and store.answers("m1")[0]["answer"] == "a"
    b = vote(timings={"a": None}, pair_probability=0.5)
    store.add(b)
    assert VoteStore(pg_url).get(b.id) == b  # a second opening migrates nothing and reads the new vote


def test_a_v1_database_opened_read_only_is_not_migrated(pg_url: str) -> None:
    sql(pg_url, V1_DDL)
    reader = VoteStore(pg_url, read_only=True)
    assert reader.schema_version() == 1 and reader.count() == 2
    assert list(reader.battles_frame(columns=["id", "winner"])["winner"]) == ["model_a", "tie"]
    assert sql(pg_url, "SELECT version FROM codearena_schema") == [(1,)]
    assert "runs" not in [r[0] for r in sql(pg_url, "SELECT column_name FROM information_schema.columns "
                                                    "WHERE table_name = 'battles'")]


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    VoteStore(pg_url).add(vote())
    sql(pg_url, f"UPDATE codearena_schema SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=r"newer CodeArena \(schema 3, this release reads up to 2\)"):
        VoteStore(pg_url)
    with pytest.raises(StoreError, match="newer CodeArena"):
        VoteStore(pg_url, read_only=True)


def test_another_programs_tables_are_refused_unchanged(pg_url: str) -> None:
    sql(pg_url, "CREATE TABLE battles (x INTEGER); INSERT INTO battles VALUES (42)")
    with pytest.raises(StoreError, match="has a battles table but no CodeArena schema version"):
        VoteStore(pg_url)
    assert tables(pg_url) == ["battles"] and sql(pg_url, "SELECT * FROM battles") == [(42,)]


def test_other_tables_in_the_database_are_left_alone(pg_url: str) -> None:
    sql(pg_url, "CREATE TABLE notes (x INTEGER); INSERT INTO notes VALUES (7)")
    VoteStore(pg_url).add(vote())
    assert sql(pg_url, "SELECT * FROM notes") == [(7,)]


def test_read_only_opening_changes_nothing(pg_url: str) -> None:
    with pytest.raises(StoreError, match="no vote store there"):
        VoteStore(pg_url, read_only=True)
    assert tables(pg_url) == []  # nothing created
    VoteStore(pg_url).add(vote())
    reader = VoteStore(pg_url, read_only=True)
    assert reader.count() == 1 and len(reader.battles_frame()) == 1
    import psycopg

    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        reader.add(vote(2))
    with pytest.raises(StoreError, match="opened read-only"):
        reader.check_writable()
    assert VoteStore(pg_url).count() == 1


def test_a_missing_database_or_server_is_one_clear_line(pg_url: str) -> None:
    with pytest.raises(StoreError, match="cannot connect: PostgreSQL is unreachable.*does not exist"):
        VoteStore(pg_url + "_nope")
    with pytest.raises(StoreError, match="cannot connect"):
        VoteStore("postgresql://postgres@127.0.0.1:1/x", connect_timeout_s=2)


def test_an_import_transaction_is_all_or_nothing(pg_url: str) -> None:
    store = VoteStore(pg_url)
    with pytest.raises(RuntimeError), store.transaction():
        store.add_many([vote(1), vote(2)])
        assert store.count() == 2  # visible inside the transaction
        raise RuntimeError("the import failed half way")
    assert store.count() == 0
    # a text PostgreSQL cannot hold fails the whole import with a message, and stores nothing
    with pytest.raises(StoreError, match="NUL character"):
        store.add_many([vote(3), vote(4, prompt="a\x00b")])
    assert store.count() == 0


def test_import_twice_through_the_cli_adds_nothing_the_second_time(pg_url: str, tmp_path: Path) -> None:
    rows = [{"model_a": "m1", "model_b": "m2", "winner": w, "question_id": f"q{i}", "tstamp": 1700000000 + i}
            for i, w in enumerate(["model_a", "model_b", "tie", "tie (bothbad)"])]
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cmd = [sys.executable, "-m", "codearena", "import", "arena-battles", str(path), "--db", pg_url]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert VoteStore(pg_url).count() == 4
    rate = subprocess.run([sys.executable, "-m", "codearena", "rate", pg_url, "--source", "all", "--format", "json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert rate.returncode == 0, rate.stderr
    assert {r["model"] for r in json.loads(rate.stdout)} == {"m1", "m2"}


def test_the_rows_are_what_sqlite_keeps(pg_url: str, tmp_path: Path) -> None:
    battles = [vote(i, judge_detail={"z": 1, "a": ["é", None]}, flags=["x"], answer_a="ünïcode ✓", turn=1,
                    conversation_a=[{"role": "user", "content": "hi"}], pair_probability=1 / 3,
                    created_at="2025-01-01T00:00:00.000+00:00", id=f"id-{i:02d}") for i in range(5)]
    lite, pg = VoteStore(tmp_path / "v.db"), VoteStore(pg_url)
    for store in (lite, pg):
        store.add_many(battles)
        store.add_answers([{"model": "m", "question_id": 1, "turns": ["ß"], "meta": {"k": [1.5]},
                            "created_at": "2025-01-01"}])
    for table in ("battles", "answers"):
        assert list(pg.iter_rows(table)) == list(lite.iter_rows(table))
    assert list(pg.iter_battles()) == list(lite.iter_battles()) == battles
    a, b = lite.battles_frame(), pg.battles_frame()
    assert a.equals(b) and list(a.dtypes) == list(b.dtypes)


def test_the_store_survives_a_dropped_connection(pg_url: str) -> None:
    fwd = TcpForwarder()
    fwd.start()
    try:
        store = VoteStore(fwd.url(pg_url), connect_timeout_s=2)
        store.add(vote(1))
        assert store.count() == 1
        fwd.stop()  # every connection drops, new ones are refused: an outage
        with pytest.raises(StoreError, match="unreachable"):
            store.add(vote(2))
        with pytest.raises(StoreError, match="unreachable"):
            store.count()
        fwd.start()  # the server is back: the same store object works again, nothing to restart
        store.add(vote(3))
        assert store.count() == 2
        assert sorted(store.battles_frame()["prompt_id"]) == ["q1", "q3"]
    finally:
        fwd.close()


def test_one_store_object_leads_and_another_takes_over_when_it_goes(pg_url: str) -> None:
    first, second = VoteStore(pg_url), VoteStore(pg_url)
    assert first.lead("leaderboard") and first.lead("leaderboard")
    assert not second.lead("leaderboard")
    assert second.lead("other-role")  # roles are separate locks
    first.close()  # its session ends (as when a replica is killed): the lock goes with it
    assert second.lead("leaderboard")


def test_shared_state_is_read_only_when_newer(pg_url: str) -> None:
    a, b = VoteStore(pg_url), VoteStore(pg_url)
    assert b.get_shared("snap") is None
    a.put_shared("snap", '{"n": 1}', 1)
    at, version, payload = b.get_shared("snap")
    assert (version, payload) == (1, '{"n": 1}')
    assert b.get_shared("snap", newer_than=at) is None
    a.put_shared("snap", '{"n": 2}', 2)
    assert b.get_shared("snap", newer_than=at)[1:] == (2, '{"n": 2}')


def test_a_rate_limit_holds_across_store_objects_and_threads(pg_url: str) -> None:
    replicas = [VoteStore(pg_url) for _ in range(3)]  # as three arena processes would each open it
    taken: list[bool] = []
    lock = threading.Lock()

    def client(store: VoteStore) -> None:
        for _ in range(10):
            ok = store.rate_take("votes:203.0.113.9", 12, 60) is None
            with lock:
                taken.append(ok)

    threads = [threading.Thread(target=client, args=(replicas[i % 3],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(taken) == 12 and len(taken) == 60
    wait = replicas[0].rate_take("votes:203.0.113.9", 12, 60)
    assert wait is not None and 0 < wait <= 60
    assert replicas[1].rate_take("votes:203.0.113.9", 12, 60, count=False) is not None
    assert replicas[2].rate_take("votes:198.51.100.1", 12, 60) is None  # another client has its own
