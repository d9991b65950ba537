"""The vote store: one SQLite file that the arena app, the duel and the importers all write to.

Why the write path looks the way it does (measured on these machines, see shared/notes/machine-facts.md):
a deferred transaction (``db.atomic()``) under concurrent writers fails its lock upgrade at once and loses
rows; WAL + a busy timeout + ``BEGIN IMMEDIATE`` for every write lost nothing. A retry on "database is
locked" covers the rare case where even the timeout runs out.

A file is someone's data before it is ours: its schema is checked on a plain connection before anything is
written to it, the journal mode included, so an SQLite file of another program (its own ``battles`` table,
a negative schema version) is refused unchanged. SQLite's own errors (a full disk, a damaged page, a
read-only file) become :class:`StoreError` naming the file, after the transaction they hit is rolled back.
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

SCHEMA_VERSION = 2
DEFAULT_DB = "codearena.db"
SQLITE_MAGIC = b"SQLite format 3\x00"

# The battles table as version 1 created it. Frozen: migrations build on it step by step, so a new column
# goes into a migration (and BATTLE_SCHEMA below), never here.
BATTLE_SCHEMA_V1: dict[str, type] = {
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
BATTLE_SCHEMA: dict[str, type] = {
    **BATTLE_SCHEMA_V1,
    "runs": str,  # v2: JSON list of votes.runs.BattleRun (the code runs before the vote), NULL for none
    "timings": str,  # v2: JSON votes.latency.BattleTimings (each side's time to first token, total, tokens/s)
    "pair_probability": float,  # v2: the sampler's probability of this pair (inverse-propensity weights)
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
    db["battles"].create(BATTLE_SCHEMA_V1, pk="id", not_null={"model_a", "model_b", "winner", "source", "mode"})
    db["battles"].create_index(["source"])
    db["battles"].create_index(["model_a", "model_b"])
    db["answers"].create(ANSWER_SCHEMA, pk=("model", "question_id"))


# version -> {table: columns} a file of that version has (at least): what tells our store from another
# program's SQLite file that happens to have a table called battles.
EXPECTED_TABLES: dict[int, dict[str, tuple[str, ...]]] = {
    1: {"battles": tuple(BATTLE_SCHEMA_V1), "answers": tuple(ANSWER_SCHEMA)},
    2: {"battles": tuple(BATTLE_SCHEMA), "answers": tuple(ANSWER_SCHEMA)},
}


V2_COLUMNS = {"runs": "TEXT", "timings": "TEXT", "pair_probability": "REAL"}


def _add_runs_v2(db: sqlite_utils.Database) -> None:
    """v1 -> v2: battles keep the code runs of their answers, the answers' timings and the probability with
    which their pair was sampled (nullable columns; rows stay as they are)."""
    have = db["battles"].columns_dict
    for column, kind in V2_COLUMNS.items():
        if column not in have:
            db.execute(f"ALTER TABLE battles ADD COLUMN {column} {kind}")


# version -> step that brings a file from version-1 to version. A later release appends here, so an older
# file opens: it is migrated in place, in one transaction.
MIGRATIONS: dict[int, Any] = {1: _create_v1, 2: _add_runs_v2}


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
        try:
            if read_only:
                self._check_readable_store()
            else:
                self._check_writable()
                self._migrate()
        except BaseException:
            self.close()
            raise

    # -- connections -------------------------------------------------------------------------------
    def _check_file(self) -> None:
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory, not a vote store file")
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"{self.path}: not a regular file, so not a vote store")
        if self.path.exists() and self.path.stat().st_size > 0:
            try:
                with open(self.path, "rb") as fh:
                    magic = fh.read(16)
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot be read ({exc.strerror or exc})") from None
            if magic != SQLITE_MAGIC:
                raise StoreError(f"{self.path}: not an SQLite database; refusing to touch it")
        elif not self.path.parent.exists():
            raise StoreError(f"{self.path}: folder {self.path.parent} does not exist")

    def _check_writable(self) -> None:
        """Permissions first: SQLite would open a read-only file and fail only at the first vote."""
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise StoreError(f"{self.path}: the file is read-only; votes cannot be stored in it "
                             "(check its permissions, or pass another --db)")
        folder = self.path.parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StoreError(f"{self.path}: folder {folder} is not writable; the store needs it for the file and "
                             "its -wal/-shm journal files")

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves; Python's implicit BEGIN is deferred.
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
                if self.read_only:
                    conn.execute("PRAGMA query_only = ON")
                else:
                    # Only ever on a file whose schema is ours (or an empty one): a foreign file keeps its mode.
                    self._check_schema(conn)
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                conn.close()
                raise self._error(exc, "cannot be opened") from None
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils view on this thread's connection, for reads and ad-hoc queries."""
        return sqlite_utils.Database(self._connect())

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        """An SQLite error as one line a user can act on, naming the file."""
        msg = str(exc)
        if "full" in msg:
            why = "the disk is full (or a file size limit was reached)"
        elif "readonly" in msg or "read-only" in msg:
            why = "it is read-only (file or folder permissions, or a read-only disk)"
        elif "malformed" in msg or "not a database" in msg or "corrupt" in msg:
            why = (f"the file is damaged ({msg}); restore a backup, or try `sqlite3 {self.path} .recover`")
        elif "disk I/O" in msg:
            why = "a disk I/O error (a full disk, a file size limit or a failing disk)"
        elif "locked" in msg or "busy" in msg:
            why = "another process holds the write lock for too long; try again"
        else:
            why = msg
        return StoreError(f"{self.path}: {doing}: {why}")

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads: SQLite's errors (a damaged page) as a StoreError naming the file."""
        import pandas as pd

        try:
            yield
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
            raise self._error(exc.__cause__ or exc if isinstance(exc, pd.errors.DatabaseError) else exc,
                              "cannot be read") from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write inside the block is one transaction: all of it is stored or none of it (an error, a
        full disk, a kill -9 or a power cut in the middle leave the store as it was). Other writers wait."""
        with self._write():
            yield

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction, retried while another writer holds the lock past the busy timeout; inside
        :meth:`transaction`, a part of that one."""
        conn = self._connect()
        if getattr(self._local, "in_transaction", False):
            yield conn
            return
        delay = 0.05
        deadline = time.monotonic() + max(self.busy_timeout_s, 1.0) * 2
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    if self.read_only:
                        raise
                    raise self._error(exc, "cannot store") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        self._local.in_transaction = True
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            # SQLite rolls some failures back itself (a full disk, an I/O error): a second ROLLBACK would
            # only say "no transaction is active" over the real error.
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if self.read_only or not isinstance(exc, (sqlite3.Error, UnicodeEncodeError, OverflowError)):
                raise
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc, "nothing was stored") from None
            raise StoreError(f"{self.path}: nothing was stored: a value cannot be stored ({exc})") from None
        finally:
            self._local.in_transaction = False

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
        with self._reading():
            return int(self._connect().execute("PRAGMA user_version").fetchone()[0])

    def _check_schema(self, conn: sqlite3.Connection) -> int:
        """The file's schema version, once the file is known to be a store of ours, an older one, or empty;
        anything else is refused before a byte of it changes."""
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {name: [c[1] for c in conn.execute(f"PRAGMA table_info({_quote(name)})")]
                  for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                              "AND name NOT LIKE 'sqlite_%'")}
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer CodeArena (schema {version}, this release reads up to "
                f"{SCHEMA_VERSION}); upgrade codearena to open it"
            )
        if version < 0:
            raise StoreError(f"{self.path}: schema version {version} is not a CodeArena one: not a vote store; "
                             "refusing to touch it")
        if version == 0:
            if tables:
                raise StoreError(f"{self.path}: an SQLite file but not a CodeArena vote store (tables "
                                 f"{', '.join(sorted(tables))}, no CodeArena schema version); refusing to change it")
            return version
        for table, columns in EXPECTED_TABLES[version].items():
            missing = [c for c in columns if c not in tables.get(table, [])]
            if missing:
                what = f"no {table} table" if table not in tables else f"table {table} lacks {', '.join(missing)}"
                raise StoreError(f"{self.path}: an SQLite file but not a CodeArena vote store ({what}); "
                                 "refusing to change it")
        return version

    def _check_readable_store(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            raise StoreError(f"{self.path}: no vote store there (votes are stored by serve, duel, judge, import)")
        try:
            version = self._check_schema(self._connect())
        except sqlite3.DatabaseError as exc:
            raise self._error(exc, "cannot be read as a vote store") from None
        if version == 0:
            raise StoreError(f"{self.path}: an SQLite file but not a CodeArena vote store (no battles table)")

    def _migrate(self) -> None:
        conn = self._connect()  # checks the schema
        with self._reading():
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if current == SCHEMA_VERSION:
            return
        with self._write() as conn:
            # Re-read inside the lock: another process may have migrated meanwhile.
            current = self._check_schema(conn)
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
        """Store many votes, all or none: one transaction (``chunk`` only bounds the rows held in memory at
        once). Ids already present are skipped (that is what makes imports idempotent)."""
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

        with self.transaction():
            for b in battles:
                batch.append(b)
                if len(batch) >= chunk:
                    flush()
            flush()
        return AddResult(added, skipped)

    def count(self, source: str | None = None) -> int:
        with self._reading():
            if source is None:
                return int(self._connect().execute("SELECT count(*) FROM battles").fetchone()[0])
            return int(self._connect().execute("SELECT count(*) FROM battles WHERE source = ?",
                                               (source,)).fetchone()[0])

    def sources(self) -> dict[str, int]:
        with self._reading():
            rows = self._connect().execute("SELECT source, count(*) FROM battles GROUP BY source ORDER BY source")
            return {s: int(n) for s, n in rows}

    def get(self, battle_id: str) -> Battle:
        with self._reading():
            rows = list(self.db.query("SELECT * FROM battles WHERE id = ?", [battle_id]))
        if not rows:
            raise KeyError(battle_id)
        return Battle.from_row(rows[0])

    def stored_sources(self, ids: Iterable[str], *, chunk: int = 500) -> dict[str, str]:
        """id -> source of those of ``ids`` already stored (an import checks what it would add again)."""
        ids = list(ids)
        found: dict[str, str] = {}
        with self._reading():
            for i in range(0, len(ids), chunk):
                part = ids[i:i + chunk]
                marks = ", ".join("?" for _ in part)
                rows = self._connect().execute(f"SELECT id, source FROM battles WHERE id IN ({marks})", part)
                found.update({str(bid): str(src) for bid, src in rows})
        return found

    def battles_of_pair(self, source: str, prompt_id: str | None, model_a: str, model_b: str) -> list[Battle]:
        """The stored battles of one source on one prompt between model_a and model_b (in that order)."""
        with self._reading():
            rows = list(self.db.query("SELECT * FROM battles WHERE source = ? AND prompt_id IS ? AND model_a = ? "
                                      "AND model_b = ? ORDER BY created_at, id",
                                      [source, prompt_id, model_a, model_b]))
        return [Battle.from_row(r) for r in rows]

    def iter_battles(self, source: str | None = None, mode: str | None = None) -> Iterator[Battle]:
        where, params = _filters(source, mode)
        with self._reading():
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
        with self._reading():
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
        with self._reading():
            for row in self.db.query(sql + " ORDER BY model, question_id", params):
                row["turns"] = json.loads(row["turns"]) if row["turns"] else []
                row["meta"] = json.loads(row["meta"]) if row["meta"] else {}
                out.append(row)
        return out

    def answer_models(self) -> list[str]:
        with self._reading():
            return [r[0] for r in self._connect().execute("SELECT DISTINCT model FROM answers ORDER BY model")]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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
