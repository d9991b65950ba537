"""The vote store: one interface, two engines. SQLite (``votes.store_sqlite``) is the embedded default, one
file; PostgreSQL (``votes.store_postgres``) is for several arena replicas sharing one store.

:func:`open_store` picks the engine from what ``--db`` names: a ``postgresql://`` URL, or a file path. Every
query the rooms use is written once, here, in the SQL both engines speak (with ``?`` marks); each engine
class holds what differs: its connections and transactions, its schema checks and migrations, its error
words, and the few spellings of SQL that are not shared (one block of class attributes each). Two classes
rather than one dialect object because most of the difference is behaviour, not SQL text: SQLite retries
``BEGIN IMMEDIATE`` on a busy file, PostgreSQL reconnects after a broken connection and locks with advisory
locks.

Guarantees, on both: votes are append-only, each in its own transaction, committed before ``add`` returns;
an import is one transaction (all or nothing) and idempotent (ids already stored are skipped); the schema
carries a version and older stores are migrated, newer ones refused; read-only opening changes nothing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from votes.location import DEFAULT_DB, default_db_path  # noqa: F401 - part of the store API
from votes.record import BATTLE_COLUMNS, Battle, BattleError, utc_now

SCHEMA_VERSION = 2
SQLITE_MAGIC = b"SQLite format 3\x00"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

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
V2_COLUMNS: dict[str, type] = {
    "runs": str,  # v2: JSON list of votes.runs.BattleRun (the code runs before the vote), NULL for none
    "timings": str,  # v2: JSON votes.latency.BattleTimings (each side's time to first token, total, tokens/s)
    "pair_probability": float,  # v2: the sampler's probability of this pair (inverse-propensity weights)
}
BATTLE_SCHEMA: dict[str, type] = {**BATTLE_SCHEMA_V1, **V2_COLUMNS}
# The table and the record must not drift apart.
assert set(BATTLE_SCHEMA) == set(BATTLE_COLUMNS), set(BATTLE_SCHEMA) ^ set(BATTLE_COLUMNS)
BATTLE_NOT_NULL = ("model_a", "model_b", "winner", "source", "mode")

ANSWER_SCHEMA: dict[str, type] = {
    "model": str,
    "question_id": str,
    "answer": str,  # the first turn's text, what the arena shows
    "turns": str,  # JSON list of all turns' texts
    "source": str,  # where it came from: a generate run, an import file
    "created_at": str,
    "meta": str,  # JSON: tokens, timings, answer_id, ...
}
ANSWER_KEY = ("model", "question_id")
# Each table's columns and primary key, in the order a copy and a checksum read them.
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "battles": (tuple(BATTLE_SCHEMA), ("id",)),
    "answers": (tuple(ANSWER_SCHEMA), ANSWER_KEY),
}

# version -> {table: columns} a store of that version has (at least): what tells our store from another
# program's tables that happen to be called battles.
EXPECTED_TABLES: dict[int, dict[str, tuple[str, ...]]] = {
    1: {"battles": tuple(BATTLE_SCHEMA_V1), "answers": tuple(ANSWER_SCHEMA)},
    2: {"battles": tuple(BATTLE_SCHEMA), "answers": tuple(ANSWER_SCHEMA)},
}


class StoreError(ValueError):
    """The store cannot be used as asked (not a vote store, from a newer release, unreachable, ...)."""


@dataclass(frozen=True)
class AddResult:
    added: int
    skipped: int  # already present (same id): imports are idempotent



def is_postgres_url(target: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL: what selects the PostgreSQL store."""
    return isinstance(target, str) and target.lower().startswith(POSTGRES_SCHEMES)


def safe_location(target: str | os.PathLike[str]) -> str:
    """What to print for a store: its path, or its URL without a password."""
    text = os.fspath(target)
    if not is_postgres_url(text):
        return text
    return re.sub(r"^([a-zA-Z]+://[^:/@]*):[^@/]*@", r"\1:***@", text)


def store_class(target: str | os.PathLike[str] | None) -> type[VoteStore]:
    if is_postgres_url(target):
        try:
            from votes.store_postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(f"{safe_location(str(target))}: a PostgreSQL store needs psycopg 3 "
                             f"({exc}); install it with: pip install 'codearena[postgres]'") from None
        return PostgresStore
    from votes.store_sqlite import SQLiteStore

    return SQLiteStore


def open_store(target: str | os.PathLike[str] | None = None, *, read_only: bool = False, **options: Any) -> VoteStore:
    """The vote store ``target`` names (default ``$CODEARENA_DB`` or ./codearena.db): a PostgreSQL URL
    (``postgresql://user@host/dbname``) or an SQLite file. ``read_only``: for commands that only read (rate,
    validate, export, audit): the store must exist, and nothing in it is created, migrated or changed."""
    if target is None:
        target = default_db_path()
    return store_class(target)(target, read_only=read_only, **options)


def store_exists(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` names a store that may already hold votes: an existing file, or any PostgreSQL
    URL (a database is only known by connecting to it)."""
    from pathlib import Path

    return is_postgres_url(target) or Path(target).is_file()


class VoteStore:
    """Append-only battles plus stored answers. Safe to share between threads.

    ``VoteStore(target)`` opens the engine ``target`` names, as :func:`open_store` does; the engines are
    ``votes.store_sqlite.SQLiteStore`` and ``votes.store_postgres.PostgresStore``.
    """

    read_only: bool
    location: str  # the file or the URL (without a password): for messages
    # True where several processes share the store's arena state (the leaderboard snapshot, rate limits):
    # PostgreSQL. SQLite keeps that state in the one serving process.
    shares_state: ClassVar[bool] = False

    # -- the SQL that differs between engines (each engine sets these) ---------------------------------
    INSERT_IGNORE: ClassVar[str] = "INSERT OR IGNORE INTO {table} ({cols}) VALUES ({marks})"
    INSERT_REPLACE: ClassVar[str] = "INSERT OR REPLACE INTO {table} ({cols}) VALUES ({marks})"
    NULL_SAFE_EQUAL: ClassVar[str] = "IS"

    def __new__(cls, *args: Any, **kwargs: Any) -> VoteStore:
        if cls is VoteStore:
            target = args[0] if args else kwargs.get("path", kwargs.get("target"))
            cls = store_class(default_db_path() if target is None else target)
        return super().__new__(cls)

    # -- what each engine provides ---------------------------------------------------------------------
    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        """Column names and every row of one read query."""
        raise NotImplementedError

    def _iter(self, sql: str, params: Sequence[Any] = (), *, chunk: int = 2000) -> Iterator[dict[str, Any]]:
        """The rows of one read query as dicts, without holding them all at once."""
        raise NotImplementedError

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """A cursor in one write transaction (committed at the end; inside :meth:`transaction`, part of it)."""
        raise NotImplementedError
        yield

    def _is_duplicate(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the engine's unique-key violation."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def schema_version(self) -> int:
        raise NotImplementedError

    def check_writable(self) -> None:
        """Raise :class:`StoreError` unless a vote can be written now: for a server that must not find out
        at its first vote."""
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write inside the block is one transaction: all of it is stored or none of it (an error, a
        kill -9 or a power cut in the middle leave the store as it was)."""
        with self._write():
            yield

    def _marks(self, n: int) -> str:
        return ", ".join("?" for _ in range(n))

    # -- battles -----------------------------------------------------------------------------------
    def add(self, battle: Battle) -> str:
        """Store one vote in its own transaction, committed before this returns. Returns its id; an id
        already stored is an error."""
        if not isinstance(battle, Battle):
            raise BattleError(f"expected a Battle, got {type(battle).__name__}")
        row = battle.to_row()
        sql = f"INSERT INTO battles ({', '.join(row)}) VALUES ({self._marks(len(row))})"
        with self._write() as cur:
            try:
                cur.execute(self._sql(sql), tuple(row.values()))
            except Exception as exc:
                if self._is_duplicate(exc):
                    raise BattleError(f"battle {battle.id} is already stored: votes are append-only") from exc
                raise
        return battle.id

    def add_many(self, battles: Iterable[Battle], *, chunk: int = 5000) -> AddResult:
        """Store many votes, all or none: one transaction (``chunk`` only bounds the rows held in memory at
        once). Ids already present are skipped (that is what makes imports idempotent)."""
        return self.add_rows("battles", (b.to_row() for b in battles), chunk=chunk)

    def add_rows(self, table: str, rows: Iterable[dict[str, Any]], *, chunk: int = 5000,
                 replace: bool = False) -> AddResult:
        """Store rows of ``table`` as they are (a copy between stores, an import), in one transaction;
        rows whose key is already stored are skipped (or replaced, with ``replace``)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        added = skipped = 0
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal added, skipped
            if not batch:
                return
            cols = list(batch[0])
            verb = self.INSERT_REPLACE if replace else self.INSERT_IGNORE
            sql = verb.format(table=table, cols=", ".join(cols), marks=self._marks(len(cols)),
                              key=", ".join(TABLES[table][1]),
                              updates=", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in TABLES[table][1]))
            with self._write() as cur:
                n = self._executemany(cur, self._sql(sql), [tuple(r[c] for c in cols) for r in batch])
            added += n
            skipped += len(batch) - n
            batch.clear()

        with self.transaction():
            for r in rows:
                batch.append(r)
                if len(batch) >= chunk:
                    flush()
            flush()
        return AddResult(added, skipped)

    def _executemany(self, cur: Any, sql: str, rows: list[tuple]) -> int:
        """Run ``sql`` once per row; the number of rows it changed."""
        cur.executemany(sql, rows)
        return max(int(cur.rowcount), 0)

    def _sql(self, sql: str) -> str:
        """The engine's spelling of a shared query (its parameter marks)."""
        return sql

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._fetch(sql, params)[1][0][0]

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        names, rows = self._fetch(sql, params)
        return [dict(zip(names, r, strict=True)) for r in rows]

    def count(self, source: str | None = None) -> int:
        if source is None:
            return int(self._one("SELECT count(*) FROM battles"))
        return int(self._one("SELECT count(*) FROM battles WHERE source = ?", (source,)))

    def count_rows(self, table: str) -> int:
        """The rows of ``table`` (battles or answers)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        return int(self._one(f"SELECT count(*) FROM {table}"))

    def sources(self) -> dict[str, int]:
        _, rows = self._fetch("SELECT source, count(*) FROM battles GROUP BY source ORDER BY source")
        return {s: int(n) for s, n in rows}

    def get(self, battle_id: str) -> Battle:
        rows = self._dicts("SELECT * FROM battles WHERE id = ?", (battle_id,))
        if not rows:
            raise KeyError(battle_id)
        return Battle.from_row(rows[0])

    def stored_sources(self, ids: Iterable[str], *, chunk: int = 500) -> dict[str, str]:
        """id -> source of those of ``ids`` already stored (an import checks what it would add again)."""
        ids = list(ids)
        found: dict[str, str] = {}
        for i in range(0, len(ids), chunk):
            part = ids[i:i + chunk]
            _, rows = self._fetch(f"SELECT id, source FROM battles WHERE id IN ({self._marks(len(part))})", part)
            found.update({str(bid): str(src) for bid, src in rows})
        return found

    def battles_of_pair(self, source: str, prompt_id: str | None, model_a: str, model_b: str) -> list[Battle]:
        """The stored battles of one source on one prompt between model_a and model_b (in that order)."""
        rows = self._dicts(f"SELECT * FROM battles WHERE source = ? AND prompt_id {self.NULL_SAFE_EQUAL} ? "
                           "AND model_a = ? AND model_b = ? ORDER BY created_at, id",
                           (source, prompt_id, model_a, model_b))
        return [Battle.from_row(r) for r in rows]

    def iter_battles(self, source: str | None = None, mode: str | None = None) -> Iterator[Battle]:
        where, params = _filters(source, mode)
        for row in self._iter(f"SELECT * FROM battles{where} ORDER BY created_at, id", params):
            yield Battle.from_row(row)

    def iter_rows(self, table: str, *, chunk: int = 2000) -> Iterator[dict[str, Any]]:
        """Every row of ``table`` as stored (JSON columns as their text), in key order: what a copy and a
        checksum read."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        cols, key = TABLES[table]
        present = self._columns(table)
        select = ", ".join(c if c in present else f"NULL AS {c}" for c in cols)
        yield from self._iter(f"SELECT {select} FROM {table} ORDER BY {', '.join(key)}", chunk=chunk)

    def _columns(self, table: str) -> set[str]:
        """The columns ``table`` has in this store (a v1 store read read-only lacks the v2 ones)."""
        names, _ = self._fetch(f"SELECT * FROM {table} WHERE 1 = 0")
        return set(names)

    def battles_frame(self, source: str | None = None, mode: str | None = None, *,
                      columns: Iterable[str] | None = None):
        """Battles as a pandas DataFrame (the input of everything in ``ratings``), reading only ``columns``
        when given (a store of a million votes is mostly answer texts no rating reads).

        ``source``: ``human``, ``judge:NAME``, ``import:NAME``, a prefix ending in ``:`` (``judge:``) or
        ``None``/``all`` for every source. ``mode``: ``anonymous``/``named``/``None`` for both.
        """
        import pandas as pd

        cols = "*"
        if columns is not None:
            wanted = list(dict.fromkeys(columns))
            unknown = [c for c in wanted if c not in BATTLE_SCHEMA]
            if unknown or not wanted:
                raise ValueError(f"battles have no column(s) {', '.join(map(repr, unknown)) or '(none asked)'}")
            # An older store read read-only (v1) lacks the newer columns: they read as empty.
            present = self._columns("battles")
            cols = ", ".join(c if c in present else f"NULL AS {c}" for c in wanted)
        where, params = _filters(source, mode)
        names, rows = self._fetch(f"SELECT {cols} FROM battles{where} ORDER BY created_at, id", params)
        return pd.DataFrame.from_records(rows, columns=names, coerce_float=True)

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
        return self.add_rows("answers", prepared, replace=replace)

    def answers(self, model: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM answers", []
        if model is not None:
            sql, params = sql + " WHERE model = ?", [model]
        out = []
        for row in self._dicts(sql + " ORDER BY model, question_id", params):
            row["turns"] = json.loads(row["turns"]) if row["turns"] else []
            row["meta"] = json.loads(row["meta"]) if row["meta"] else {}
            out.append(row)
        return out

    def answer_models(self) -> list[str]:
        return [r[0] for r in self._fetch("SELECT DISTINCT model FROM answers ORDER BY model")[1]]

    # -- arena state shared by replicas (PostgreSQL; see shares_state) ---------------------------------
    def lead(self, role: str) -> bool:
        """Whether this store object holds the deployment-wide lock of ``role`` (taken if free, kept until
        :meth:`close` or a lost connection): one replica computes what all of them show."""
        raise StoreError(f"{self.location}: this store is not shared between replicas")

    def put_shared(self, key: str, payload: str, version: int) -> float:
        """Keep ``payload`` (text, e.g. JSON) under ``key`` for every replica, tagged ``version``; returns
        when it was written (the store's clock, as :meth:`get_shared` reports it)."""
        raise StoreError(f"{self.location}: this store is not shared between replicas")

    def get_shared(self, key: str, newer_than: float | None = None) -> tuple[float, int, str] | None:
        """(written at, version, payload) of ``key``; None when there is none, or none written after
        ``newer_than`` (so an unchanged payload is not read again)."""
        raise StoreError(f"{self.location}: this store is not shared between replicas")

    def rate_take(self, key: str, limit: int, window_s: float, *, count: bool = True) -> float | None:
        """A deployment-wide rate limit: None when one more event of ``key`` fits ``limit`` per ``window_s``
        (and, with ``count``, it is counted), else the seconds until it would."""
        raise StoreError(f"{self.location}: this store is not shared between replicas")

    def rate_record(self, key: str, window_s: float) -> None:
        """Count one event of ``key`` that already happened, whatever the count."""
        raise StoreError(f"{self.location}: this store is not shared between replicas")

    def __enter__(self) -> VoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
