"""The vote store: one SQLite file that the arena app, the duel and the importers all write to.

Why the write path looks the way it does (measured on these machines, see shared/notes/machine-facts.md):
a deferred transaction (``db.atomic()``) under concurrent writers fails its lock upgrade at once and loses
rows; WAL + a busy timeout + ``BEGIN IMMEDIATE`` for every write lost nothing. A retry on "database is
locked" covers the rare case where even the timeout runs out.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from votes.record import BATTLE_COLUMNS, Battle, BattleError, utc_now

SCHEMA_VERSION = 1
DEFAULT_DB = "codearena.db"
SQLITE_MAGIC = b"SQLite format 3\x00"

BATTLE_SCHEMA: dict[str, type] = {
    "id": str,
    "created_at": str,
    "prompt_id": str,
    "prompt": str,
    "prompt_hash": str,
    "category": str,
    "language": str,
    "turn": int,
    "model_a": str,
    "model_b": str,
    "answer_a": str,
    "answer_b": str,
    "conversation_a": str,
    "conversation_b": str,
    "winner": str,
    "source": str,
    "mode": str,
    "voter": str,
    "flags": str,
    "judge_detail": str,
}
# The table and the record must not drift apart.
assert set(BATTLE_SCHEMA) == set(BATTLE_COLUMNS), set(BATTLE_SCHEMA) ^ set(BATTLE_COLUMNS)

ANSWER_SCHEMA: dict[str, type] = {
    "model": str,
    "question_id": str,
    "answer": str,  # the first turn's text, what the arena shows
    "turns": str,  # JSON list of all turns' texts
    "source": str,  # where it came from: a generate run, an import file
    "created_at": str,
    "meta": str,  # JSON: tokens, timings, answer_id, ...
}


class StoreError(ValueError):
    """The store file cannot be used as asked (not SQLite, from a newer release, ...)."""


class _RollBack(Exception):
    """Ends a probe transaction (check_writable) with a rollback."""


@dataclass(frozen=True)
class AddResult:
    added: int
    skipped: int  # already present (same id): imports are idempotent


def default_db_path() -> str:
    return os.environ.get("CODEARENA_DB", DEFAULT_DB)


def _create_v1(db: sqlite_utils.Database) -> None:
    db["battles"].create(BATTLE_SCHEMA, pk="id", not_null={"model_a", "model_b", "winner", "source", "mode"})
    db["battles"].create_index(["source"])
    db["battles"].create_index(["model_a", "model_b"])
    db["answers"].create(ANSWER_SCHEMA, pk=("model", "question_id"))


# version -> step that brings a file from version-1 to version. A later release appends here, so an older
# file opens: it is migrated in place, in one transaction.
MIGRATIONS: dict[int, Any] = {1: _create_v1}


class VoteStore:
    """Append-only battles plus stored answers, in one SQLite file.

    Safe to share between threads: each thread gets its own connection.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout_s: float = 30.0,
                 read_only: bool = False) -> None:
        """``read_only``: for commands that only read (rate, validate, export): the file must already be a
        vote store, and nothing in it is changed: no schema created, no migration, no journal-mode switch."""
        self.path = Path(path if path is not None else default_db_path())
        self.busy_timeout_s = busy_timeout_s
        self.read_only = read_only
        self._local = threading.local()
        self._check_file()
        if read_only:
            self._check_readable_store()
        else:
            self._migrate()

    # -- connections -------------------------------------------------------------------------------
    def _check_file(self) -> None:
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory, not a vote store file")
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as fh:
                if fh.read(16) != SQLITE_MAGIC:
                    raise StoreError(f"{self.path}: not an SQLite database; refusing to touch it")
        elif not self.path.parent.exists():
            raise StoreError(f"{self.path}: folder {self.path.parent} does not exist")

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves; Python's implicit BEGIN is deferred.
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            if self.read_only:
                conn.execute("PRAGMA query_only = ON")
            else:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils view on this thread's connection, for reads and ad-hoc queries."""
        return sqlite_utils.Database(self._connect())

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction, retried while another writer holds the lock past the busy timeout."""
        conn = self._connect()
        delay = 0.05
        deadline = time.monotonic() + max(self.busy_timeout_s, 1.0) * 2
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def check_writable(self) -> None:
        """Raise :class:`StoreError` unless a vote can be written now (a read-only file or folder, a
        read-only mount): for a server that must not find out at its first vote."""
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only")
        for what, target in (("file", self.path), ("folder", self.path.parent)):
            if target.exists() and not os.access(target, os.W_OK):
                raise StoreError(f"{self.path}: the vote store {what} is not writable; votes could not be stored")
        try:
            # A write that changes nothing, rolled back: it takes the write lock as a vote would.
            with self._write() as conn:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                conn.execute(f"PRAGMA user_version = {version}")
                raise _RollBack
        except _RollBack:
            pass
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: votes cannot be written ({exc})") from exc

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- schema ------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        return int(self._connect().execute("PRAGMA user_version").fetchone()[0])

    def _check_readable_store(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            raise StoreError(f"{self.path}: no vote store there (votes are stored by serve, duel, judge, import)")
        self._readable_version()
        tables = {r[0] for r in self._connect().execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "battles" not in tables:
            raise StoreError(f"{self.path}: an SQLite file but not a CodeArena vote store (no battles table)")

    def _readable_version(self) -> int:
        """The file's schema version, refusing a file this release cannot read."""
        try:
            current = self.schema_version()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot be read as SQLite ({exc})") from exc
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer CodeArena (schema {current}, this release reads up to "
                f"{SCHEMA_VERSION}); upgrade codearena to open it"
            )
        return current

    def _migrate(self) -> None:
        if self._readable_version() == SCHEMA_VERSION:
            return
        with self._write() as conn:
            # Re-read inside the lock: another process may have migrated meanwhile.
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            db = sqlite_utils.Database(conn)
            for version in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](db)
                conn.execute(f"PRAGMA user_version = {version}")

    # -- battles -----------------------------------------------------------------------------------
    def add(self, battle: Battle) -> str:
        """Store one vote in its own transaction. Returns its id; an id already stored is an error."""
        if not isinstance(battle, Battle):
            raise BattleError(f"expected a Battle, got {type(battle).__name__}")
        row = battle.to_row()
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._write() as conn:
            try:
                conn.execute(f"INSERT INTO battles ({cols}) VALUES ({marks})", tuple(row.values()))
            except sqlite3.IntegrityError as exc:
                raise BattleError(f"battle {battle.id} is already stored: votes are append-only") from exc
        return battle.id

    def add_many(self, battles: Iterable[Battle], *, chunk: int = 5000) -> AddResult:
        """Store many votes; ids already present are skipped (that is what makes imports idempotent)."""
        added = skipped = 0
        batch: list[Battle] = []

        def flush() -> None:
            nonlocal added, skipped
            if not batch:
                return
            rows = [b.to_row() for b in batch]
            cols = list(rows[0])
            sql = f"INSERT OR IGNORE INTO battles ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
            with self._write() as conn:
                before = conn.total_changes
                conn.executemany(sql, [tuple(r[c] for c in cols) for r in rows])
                n = conn.total_changes - before
            added += n
            skipped += len(rows) - n
            batch.clear()

        for b in battles:
            batch.append(b)
            if len(batch) >= chunk:
                flush()
        flush()
        return AddResult(added, skipped)

    def count(self, source: str | None = None) -> int:
        if source is None:
            return int(self._connect().execute("SELECT count(*) FROM battles").fetchone()[0])
        return int(self._connect().execute("SELECT count(*) FROM battles WHERE source = ?", (source,)).fetchone()[0])

    def sources(self) -> dict[str, int]:
        rows = self._connect().execute("SELECT source, count(*) FROM battles GROUP BY source ORDER BY source")
        return {s: int(n) for s, n in rows}

    def get(self, battle_id: str) -> Battle:
        rows = list(self.db.query("SELECT * FROM battles WHERE id = ?", [battle_id]))
        if not rows:
            raise KeyError(battle_id)
        return Battle.from_row(rows[0])

    def iter_battles(self, source: str | None = None, mode: str | None = None) -> Iterator[Battle]:
        where, params = _filters(source, mode)
        for row in self.db.query(f"SELECT * FROM battles{where} ORDER BY created_at, id", params):
            yield Battle.from_row(row)

    def battles_frame(self, source: str | None = None, mode: str | None = None, *, columns: Iterable[str] | None = None):
        """Battles as a pandas DataFrame (the input of everything in ``ratings``).

        ``source``: ``human``, ``judge:NAME``, ``import:NAME``, a prefix ending in ``:`` (``judge:``) or
        ``None``/``all`` for every source. ``mode``: ``anonymous``/``named``/``None`` for both.
        """
        import pandas as pd

        cols = ", ".join(columns) if columns else "*"
        where, params = _filters(source, mode)
        return pd.read_sql_query(f"SELECT {cols} FROM battles{where} ORDER BY created_at, id", self._connect(),
                                 params=params)

    # -- answers -----------------------------------------------------------------------------------
    def add_answers(self, rows: Iterable[dict[str, Any]], *, replace: bool = False) -> AddResult:
        """Store answers (model, question_id, turns list, ...). Existing (model, question_id) are kept
        unless ``replace``."""
        prepared = []
        for r in rows:
            turns = r.get("turns") or [r.get("answer", "")]
            prepared.append({
                "model": r["model"],
                "question_id": str(r["question_id"]),
                "answer": r.get("answer", turns[0]),
                "turns": json.dumps(turns, ensure_ascii=False),
                "source": r.get("source"),
                "created_at": r.get("created_at") or utc_now(),
                "meta": json.dumps(r.get("meta") or {}, ensure_ascii=False),
            })
        if not prepared:
            return AddResult(0, 0)
        cols = list(ANSWER_SCHEMA)
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany(f"{verb} INTO answers ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                             [tuple(r[c] for c in cols) for r in prepared])
            n = conn.total_changes - before
        return AddResult(n, len(prepared) - n)

    def answers(self, model: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM answers", []
        if model is not None:
            sql, params = sql + " WHERE model = ?", [model]
        out = []
        for row in self.db.query(sql + " ORDER BY model, question_id", params):
            row["turns"] = json.loads(row["turns"]) if row["turns"] else []
            row["meta"] = json.loads(row["meta"]) if row["meta"] else {}
            out.append(row)
        return out

    def answer_models(self) -> list[str]:
        return [r[0] for r in self._connect().execute("SELECT DISTINCT model FROM answers ORDER BY model")]


def _filters(source: str | None, mode: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if source not in (None, "all"):
        if source.endswith(":"):
            clauses.append("source LIKE ?")
            params.append(source + "%")
        else:
            clauses.append("source = ?")
            params.append(source)
    if mode is not None:
        clauses.append("mode = ?")
        params.append(mode)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
