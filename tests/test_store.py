"""The vote store: nothing lost under concurrent writers, bad input refused without side effects.

The store's contract is run against both engines where it is engine-neutral (``target``: an SQLite file,
and a fresh PostgreSQL database, tests.pg_helpers); what is one engine's own stays on that engine."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from votes import Battle, BattleError, StoreError, VoteStore, import_id
from votes.store import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path: Path) -> str:
    """Where a store lives: an SQLite file, or a PostgreSQL URL (own database per test)."""
    if request.param == "sqlite":
        return str(tmp_path / "votes.db")
    return request.getfixturevalue("pg_url")


def vote(i: int = 0, **kw) -> Battle:
    base = dict(model_a=f"m{i % 3}", model_b=f"m{i % 3 + 1}", winner="model_a", prompt="write fizzbuzz",
                prompt_id=f"q{i}", category="algorithm", language="python")
    base.update(kw)
    return Battle(**base)


def test_round_trip_keeps_every_field(target: str) -> None:
    store = VoteStore(target)
    b = vote(answer_a="def f(): ...", answer_b="print(1)", flags=["identity_leak"], voter="abc123",
             judge_detail={"games": [{"score": "A>B"}]},
             conversation_a=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
             source="judge:qwen", winner="tie (bothbad)", turn=2)
    store.add(b)
    got = VoteStore(target).get(b.id)
    assert got == b
    assert got.prompt_hash == b.prompt_hash and len(got.prompt_hash) == 16


def test_frame_filters_by_source_and_mode(target: str) -> None:
    store = VoteStore(target)
    store.add(vote(1))
    store.add(vote(2, source="judge:gpt"))
    store.add(vote(3, source="judge:qwen", mode="named"))
    assert len(store.battles_frame()) == 3
    assert list(store.battles_frame(source="human")["prompt_id"]) == ["q1"]
    assert len(store.battles_frame(source="judge:")) == 2
    assert len(store.battles_frame(mode="anonymous")) == 2
    assert store.sources() == {"human": 1, "judge:gpt": 1, "judge:qwen": 1}


def test_a_frame_reads_only_the_columns_asked(target: str) -> None:
    from ratings.source import load_battles, rating_columns

    store = VoteStore(target)
    store.add(vote(1, answer_a="a long answer", flags=["identity_leak:model_a"]))
    store.add(vote(2))
    frame = store.battles_frame(columns=["model_a", "winner"])
    assert list(frame.columns) == ["model_a", "winner"] and len(frame) == 2
    with pytest.raises(ValueError, match="no column"):
        store.battles_frame(columns=["model_a; DROP TABLE battles"])
    # what `codearena rate` reads: no answer texts unless style control asks for them
    loaded = load_battles(target, columns=rating_columns())
    assert list(loaded.battles.columns) == list(rating_columns()) and len(loaded.battles) == 1  # flagged left out
    assert "answer_a" in load_battles(target, columns=rating_columns(answers=True)).battles


def test_votes_are_append_only(target: str) -> None:
    store = VoteStore(target)
    b = vote()
    store.add(b)
    with pytest.raises(BattleError, match="already stored"):
        store.add(b)
    assert store.count() == 1


def test_add_many_is_idempotent_on_ids(target: str) -> None:
    store = VoteStore(target)
    batch = [vote(i, id=import_id("mt-bench-human", i)) for i in range(50)]
    assert store.add_many(batch).added == 50
    again = store.add_many([vote(i, id=import_id("mt-bench-human", i)) for i in range(50)])
    assert (again.added, again.skipped) == (0, 50)
    assert store.count() == 50


def test_sixteen_threads_lose_nothing(target: str) -> None:
    store = VoteStore(target)
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(500):
                store.add(vote(i, voter=f"t{t}"))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 8000
    per_voter = store.battles_frame(columns=["voter"])["voter"].value_counts()
    assert sorted(per_voter) == [500] * 16


def test_four_processes_lose_nothing(target: str) -> None:
    VoteStore(target)  # create the schema once, as the app would at start-up
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from votes import Battle, VoteStore
        store = VoteStore(sys.argv[1])
        for i in range(500):
            store.add(Battle(model_a="a", model_b="b", winner="tie", voter=sys.argv[2]))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, target, f"p{p}"]) for p in range(4)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    assert VoteStore(target).count() == 2000


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"winner": "A>B"}, "unknown winner label"),
        ({"model_b": "m0", "model_a": "m0"}, "same model"),
        ({"model_a": "  "}, "non-empty model name"),
        ({"source": "robot"}, "bad source"),
        ({"mode": "secret"}, "bad mode"),
    ],
)
def test_bad_votes_are_refused_and_change_nothing(db_path: Path, kw: dict, message: str) -> None:
    store = VoteStore(db_path)
    with pytest.raises(BattleError, match=message):
        store.add(vote(**kw))
    assert store.count() == 0


def test_a_file_that_is_not_sqlite_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(StoreError, match="not an SQLite database"):
        VoteStore(path)
    assert path.read_text() == "these are my notes, not a database\n"


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    VoteStore(db_path).add(vote())
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer CodeArena"):
        VoteStore(db_path)


def test_an_empty_sqlite_file_is_migrated_in_place(db_path: Path) -> None:
    # A version-0 file with no tables (what `sqlite3 votes.db "VACUUM"` leaves): ours to create.
    with sqlite3.connect(db_path) as conn:
        conn.execute("VACUUM")
    store = VoteStore(db_path)
    assert store.schema_version() == SCHEMA_VERSION
    store.add(vote())
    assert store.count() == 1


def test_another_programs_sqlite_file_is_refused_unchanged(db_path: Path) -> None:
    # Issue 9: a version-0 file with someone's tables is theirs (CodeArena never wrote a version-0 file
    # with tables): no table added, no switch to WAL, not a byte changed. Was: migrated in place.
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE keep_me (x)")
        conn.execute("INSERT INTO keep_me VALUES (42)")
    before = db_path.read_bytes()
    with pytest.raises(StoreError, match="not a CodeArena vote store.*keep_me"):
        VoteStore(db_path)
    assert db_path.read_bytes() == before
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_answers_are_kept_per_model_and_question(target: str) -> None:
    store = VoteStore(target)
    res = store.add_answers([{"model": "m", "question_id": 1, "turns": ["one", "two"], "source": "f.jsonl"}])
    assert res.added == 1
    assert store.add_answers([{"model": "m", "question_id": "1", "turns": ["other"]}]).skipped == 1
    (row,) = store.answers("m")
    assert row["answer"] == "one" and row["turns"] == ["one", "two"] and row["question_id"] == "1"


def test_read_only_opening_changes_nothing(tmp_path: Path) -> None:
    foreign = tmp_path / "theirs.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (x)")
    before = foreign.read_bytes()
    with pytest.raises(StoreError, match="not a CodeArena vote store"):
        VoteStore(foreign, read_only=True)
    assert foreign.read_bytes() == before
    with pytest.raises(StoreError, match="no vote store there"):
        VoteStore(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()


def test_read_only_store_reads_but_cannot_write(db_path: Path) -> None:
    VoteStore(db_path).add(vote())
    reader = VoteStore(db_path, read_only=True)
    assert reader.count() == 1 and len(reader.battles_frame()) == 1
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.add(vote(2))
