"""The vote store on SQLite: one file that the arena app, the duel and the importers all write to (the
embedded default; the queries themselves are shared with PostgreSQL in ``votes.store``).

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

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from votes.store import (
    ANSWER_SCHEMA,
    BATTLE_NOT_NULL,
    BATTLE_SCHEMA_V1,
    EXPECTED_TABLES,
    SCHEMA_VERSION,
    SQLITE_MAGIC,
    V2_COLUMNS,
    StoreError,
    VoteStore,
    default_db_path,
)

SQL_TYPES = {str: "TEXT", int: "INTEGER", float: "REAL"}


class _RollBack(Exception):
    """Ends a probe transaction (check_writable) with a rollback."""


def _create_v1(db: sqlite_utils.Database) -> None:
    db["battles"].create(BATTLE_SCHEMA_V1, pk="id", not_null=set(BATTLE_NOT_NULL))
    db["battles"].create_index(["source"])
    db["battles"].create_index(["model_a", "model_b"])
    db["answers"].create(ANSWER_SCHEMA, pk=("model", "question_id"))


def _add_runs_v2(db: sqlite_utils.Database) -> None:
    """v1 -> v2: battles keep the code runs of their answers, the answers' timings and the probability with
    which their pair was sampled (nullable columns; rows stay as they are)."""
    have = db["battles"].columns_dict
    for column, kind in V2_COLUMNS.items():
        if column not in have:
            db.execute(f"ALTER TABLE battles ADD COLUMN {column} {SQL_TYPES[kind]}")


# version -> step that brings a file from version-1 to version. A later release appends here, so an older
# file opens: it is migrated in place, in one transaction.
MIGRATIONS: dict[int, Any] = {1: _create_v1, 2: _add_runs_v2}


class SQLiteStore(VoteStore):
    """Append-only battles plus stored answers, in one SQLite file.

    Safe to share between threads: each thread gets its own connection.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout_s: float = 30.0,
                 read_only: bool = False) -> None:
        """``read_only``: for commands that only read (rate, validate, export): the file must already be a
        vote store, and nothing in it is changed: no schema created, no migration, no journal-mode switch."""
        self.path = Path(path if path is not None else default_db_path())
        self.location = str(self.path)
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
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise self._error(exc, "cannot be read") from None

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

    # -- the shared queries' hooks (votes.store.VoteStore) ---------------------------------------------
    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        with self._reading():
            cur = self._connect().execute(sql, tuple(params))
            return [d[0] for d in cur.description], cur.fetchall()

    def _iter(self, sql: str, params: Sequence[Any] = (), *, chunk: int = 2000) -> Iterator[dict[str, Any]]:
        with self._reading():
            cur = self._connect().execute(sql, tuple(params))
            names = [d[0] for d in cur.description]
            while rows := cur.fetchmany(chunk):
                for r in rows:
                    yield dict(zip(names, r, strict=True))

    def _executemany(self, cur: sqlite3.Connection, sql: str, rows: list[tuple]) -> int:
        before = cur.total_changes
        cur.executemany(sql, rows)
        return cur.total_changes - before

    def _is_duplicate(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
