"""The vote store on PostgreSQL: what several arena replicas share (``--db postgresql://user@host/dbname``).

Imported only for a PostgreSQL URL, so SQLite users never need psycopg. The queries are the shared ones of
``votes.store``; what is PostgreSQL's own lives here:

- Connections: a small pool per store object (psycopg connections are not thread-safe; a connection per
  Gradio worker thread would exhaust the server's ``max_connections`` with three replicas). A connection
  found broken (the server restarted, the network dropped) is thrown away with every idle one, and the
  next request connects again: the arena recovers without a restart. A read that fails on a connection
  that had been idle is retried once on a fresh one; a write is retried only when its ``BEGIN`` failed, so
  nothing is ever written twice.
- Durability: every vote is its own transaction, committed (``synchronous_commit`` as the server sets it,
  ``on`` by default: flushed to the WAL) before ``add`` returns, so a vote acknowledged to a voter is kept
  whatever happens to the replica that took it.
- Schema: a ``codearena_schema`` table holds the version; opening takes an advisory lock for the check and
  the migration, so replicas starting together migrate once. A database that holds a ``battles`` or
  ``answers`` table without that version table is someone else's and is refused unchanged; other tables in
  the database are left alone.
- Text: JSON columns are TEXT (byte for byte what SQLite keeps, so ``Battle.from_row`` and a copy's
  checksum see the same values) and every text column sorts with the "C" collation (SQLite's byte order).
  PostgreSQL cannot store NUL characters in text; such a value is refused with a message.
- Read-only opening: every transaction is ``READ ONLY`` (``default_transaction_read_only``), so a rating
  command cannot change the store even by mistake.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg
from psycopg import errors as pg_errors

from votes.store import (
    ANSWER_KEY,
    ANSWER_SCHEMA,
    BATTLE_NOT_NULL,
    BATTLE_SCHEMA_V1,
    EXPECTED_TABLES,
    SCHEMA_VERSION,
    V2_COLUMNS,
    StoreError,
    VoteStore,
    safe_location,
)

SQL_TYPES = {str: 'TEXT COLLATE "C"', int: "BIGINT", float: "DOUBLE PRECISION"}
VERSION_TABLE = "codearena_schema"
# The arena state replicas share (v2): the leaderboard snapshot, and rate-limit counters (UNLOGGED: a
# crash may forget the last minute of counts, which costs nothing, and saves a WAL write per request).
SHARED_TABLE = "arena_shared"
RATE_TABLE = "arena_rate"
# Advisory lock keys live in one space per database; these are ours (crc32 of a fixed text).
_MIGRATION_LOCK = zlib.crc32(b"codearena:migrate")


def _lock_key(role: str) -> int:
    return zlib.crc32(f"codearena:lead:{role}".encode())


def _create_v1(cur: psycopg.Cursor) -> None:
    cols = ", ".join(f"{c} {SQL_TYPES[t]}{' NOT NULL' if c in BATTLE_NOT_NULL else ''}"
                     f"{' PRIMARY KEY' if c == 'id' else ''}" for c, t in BATTLE_SCHEMA_V1.items())
    cur.execute(f"CREATE TABLE battles ({cols})")
    cur.execute("CREATE INDEX battles_source ON battles (source)")
    cur.execute("CREATE INDEX battles_models ON battles (model_a, model_b)")
    cols = ", ".join(f"{c} {SQL_TYPES[t]}" for c, t in ANSWER_SCHEMA.items())
    cur.execute(f"CREATE TABLE answers ({cols}, PRIMARY KEY ({', '.join(ANSWER_KEY)}))")
    cur.execute(f"CREATE TABLE {VERSION_TABLE} (version INTEGER NOT NULL)")
    cur.execute(f"INSERT INTO {VERSION_TABLE} VALUES (0)")


def _v2(cur: psycopg.Cursor) -> None:
    """v1 -> v2: battles keep their code runs, answer timings and pair probability (nullable columns, rows
    as they were); the arena state shared by replicas gets its tables."""
    for column, kind in V2_COLUMNS.items():
        cur.execute(f"ALTER TABLE battles ADD COLUMN IF NOT EXISTS {column} {SQL_TYPES[kind]}")
    cur.execute(f"CREATE TABLE IF NOT EXISTS {SHARED_TABLE} (key TEXT COLLATE \"C\" PRIMARY KEY, "
                "written_at DOUBLE PRECISION NOT NULL, version BIGINT NOT NULL, payload TEXT NOT NULL)")
    cur.execute(f"CREATE UNLOGGED TABLE IF NOT EXISTS {RATE_TABLE} (key TEXT COLLATE \"C\", window_start BIGINT, "
                "count INTEGER NOT NULL, PRIMARY KEY (key, window_start))")


# version -> the step that brings a database from version-1 to version, as votes.store_sqlite.MIGRATIONS.
MIGRATIONS: dict[int, Any] = {1: _create_v1, 2: _v2}


class _Pool:
    """At most ``size`` connections, made on demand, handed to one thread at a time."""

    def __init__(self, connect: Any, size: int, wait_s: float) -> None:
        self._connect = connect
        self.size = size
        self.wait_s = wait_s
        self._idle: list[psycopg.Connection] = []
        self._out = 0
        self._cond = threading.Condition()

    def get(self) -> tuple[psycopg.Connection, bool]:
        """A connection, and whether it had been used before (so may have gone stale meanwhile)."""
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while not self._idle and self._out >= self.size:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"all {self.size} connections busy for {self.wait_s:.0f} s")
                self._cond.wait(left)
            self._out += 1
            if self._idle:
                return self._idle.pop(), True
        try:
            return self._connect(), False
        except BaseException:
            with self._cond:
                self._out -= 1
                self._cond.notify()
            raise

    def put(self, conn: psycopg.Connection) -> None:
        stale: list[psycopg.Connection] = []
        usable = not conn.closed and not conn.broken and conn.info.transaction_status == \
            psycopg.pq.TransactionStatus.IDLE
        with self._cond:
            self._out -= 1
            if usable:
                self._idle.append(conn)
            else:
                # One dead connection usually means all of them (a restart, a network cut): drop the idle
                # ones too, so the next requests connect afresh instead of each failing once.
                stale, self._idle = self._idle, []
            self._cond.notify()
        if not usable:
            stale.append(conn)
        for c in stale:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()


class PostgresStore(VoteStore):
    """Append-only battles plus stored answers, in a PostgreSQL database. Safe to share between threads."""

    shares_state: ClassVar[bool] = True
    INSERT_IGNORE: ClassVar[str] = "INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    INSERT_REPLACE: ClassVar[str] = ("INSERT INTO {table} ({cols}) VALUES ({marks}) "
                                     "ON CONFLICT ({key}) DO UPDATE SET {updates}")
    NULL_SAFE_EQUAL: ClassVar[str] = "IS NOT DISTINCT FROM"

    def __init__(self, url: str, *, read_only: bool = False, pool_size: int = 8, connect_timeout_s: float = 10.0,
                 pool_wait_s: float = 30.0) -> None:
        """``read_only``: for commands that only read (rate, validate, export, audit): the database must
        already hold a vote store, and every transaction is read-only."""
        self.url = url
        self.location = safe_location(url)
        self.read_only = read_only
        self.connect_timeout_s = connect_timeout_s
        self._pool = _Pool(self._new_connection, pool_size, pool_wait_s)
        self._local = threading.local()
        self._leases: dict[str, tuple[psycopg.Connection, bool]] = {}  # role -> (session, holds the lock)
        self._lease_lock = threading.Lock()
        self._rate_calls = 0
        try:
            if read_only:
                self._check_readable_store()
            else:
                self._migrate()
        except BaseException:
            self.close()
            raise

    # -- connections -------------------------------------------------------------------------------
    def _new_connection(self) -> psycopg.Connection:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout_s)),
                                   application_name="codearena", keepalives=1, keepalives_idle=30,
                                   keepalives_interval=10, keepalives_count=3)
        except psycopg.Error as exc:
            raise self._error(exc, "cannot connect") from None
        if self.read_only:
            conn.execute("SET default_transaction_read_only = on")
        return conn

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        """A PostgreSQL error as one line a user can act on, naming the database."""
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, pg_errors.UntranslatableCharacter) or "NUL (0x00)" in msg or "\\u0000" in msg:
            why = "a text holds a NUL character (\\x00), which PostgreSQL cannot store"
        elif isinstance(exc, psycopg.OperationalError):
            why = f"PostgreSQL is unreachable or dropped the connection ({msg})"
        elif isinstance(exc, pg_errors.InsufficientPrivilege):
            why = f"the database user may not do this ({msg})"
        elif isinstance(exc, pg_errors.ReadOnlySqlTransaction):
            why = f"the server only allows reads (a standby, or a read-only user) ({msg})"
        else:
            why = msg
        return StoreError(f"{self.location}: {doing}: {why}")

    @contextmanager
    def _connection(self) -> Iterator[tuple[psycopg.Connection, bool]]:
        try:
            conn, reused = self._pool.get()
        except TimeoutError as exc:
            raise StoreError(f"{self.location}: {exc}; the server is overloaded or a transaction hangs") from None
        try:
            yield conn, reused
        finally:
            self._pool.put(conn)

    def _sql(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        current = getattr(self._local, "conn", None)
        if current is not None:  # inside transaction(): read what it wrote
            cur = current.execute(self._sql(sql), tuple(params))
            return [d.name for d in cur.description or ()], cur.fetchall()
        for attempt in (0, 1):
            with self._connection() as (conn, reused):
                try:
                    cur = conn.execute(self._sql(sql), tuple(params))
                    return [d.name for d in cur.description or ()], cur.fetchall()
                except psycopg.OperationalError as exc:
                    if attempt == 0 and reused and conn.broken:
                        continue  # a connection gone stale while idle: once more on a fresh one
                    raise self._error(exc, "cannot be read") from None
                except psycopg.Error as exc:
                    raise self._error(exc, "cannot be read") from None
        raise AssertionError("unreachable")

    def _iter(self, sql: str, params: Sequence[Any] = (), *, chunk: int = 2000) -> Iterator[dict[str, Any]]:
        with self._connection() as (conn, _):
            try:
                # A server-side cursor lives in a transaction: rows come ``chunk`` at a time.
                with conn.transaction(), conn.cursor(name="codearena_iter") as cur:
                    cur.itersize = chunk
                    cur.execute(self._sql(sql), tuple(params))
                    names: list[str] | None = None
                    for row in cur:
                        if names is None:
                            names = [d.name for d in cur.description or ()]
                        yield dict(zip(names, row, strict=True))
            except psycopg.Error as exc:
                raise self._error(exc, "cannot be read") from None

    @contextmanager
    def _write(self) -> Iterator[psycopg.Cursor]:
        current = getattr(self._local, "conn", None)
        if current is not None:  # a part of the transaction() around it
            yield current.cursor()
            return
        for attempt in (0, 1):
            with self._connection() as (conn, reused):
                try:
                    conn.execute("BEGIN")
                except psycopg.OperationalError as exc:
                    if attempt == 0 and reused:
                        continue  # nothing was sent but BEGIN: safe to take a fresh connection
                    raise self._error(exc, "nothing was stored") from None
                self._local.conn = conn
                committing = False
                try:
                    yield conn.cursor()
                    committing = True
                    conn.execute("COMMIT")
                except BaseException as exc:
                    if not conn.broken and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        try:
                            conn.execute("ROLLBACK")
                        except psycopg.Error:
                            pass
                    if self.read_only or not isinstance(exc, psycopg.Error):
                        raise
                    if committing:
                        raise self._error(exc, "the connection broke while committing, so whether it was "
                                          "stored is unknown") from None
                    raise self._error(exc, "nothing was stored") from None
                finally:
                    self._local.conn = None
                return

    def _is_duplicate(self, exc: BaseException) -> bool:
        return isinstance(exc, pg_errors.UniqueViolation)

    def check_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self.location}: opened read-only")
        try:
            with self._write() as cur:
                # The lock a vote's INSERT takes, then rolled back: a read-only user or a standby fails here.
                cur.execute("SET LOCAL lock_timeout = '10s'")
                cur.execute("LOCK TABLE battles IN ROW EXCLUSIVE MODE")
                raise _RollBack
        except _RollBack:
            pass
        except StoreError as exc:
            why = str(exc).removeprefix(f"{self.location}: nothing was stored: ")
            raise StoreError(f"{self.location}: votes cannot be written: {why}") from None

    def close(self) -> None:
        with self._lease_lock:
            leases, self._leases = [c for c, _ in self._leases.values()], {}
        for conn in leases:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
        self._pool.close()

    # -- schema ------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        return self._check_schema()

    def _check_schema(self) -> int:
        """The database's schema version, once it is known to hold a store of ours, an older one, or none;
        anything else is refused before a byte of it changes."""
        names = ("battles", "answers", VERSION_TABLE)
        _, rows = self._fetch("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema "
                              "= current_schema() AND table_name IN (?, ?, ?) ORDER BY ordinal_position", names)
        tables: dict[str, list[str]] = {}
        for table, column in rows:
            tables.setdefault(table, []).append(column)
        if VERSION_TABLE not in tables:
            theirs = [t for t in ("battles", "answers") if t in tables]
            if theirs:
                raise StoreError(f"{self.location}: the database has a {' and an '.join(theirs)} table but no "
                                 "CodeArena schema version: not a CodeArena vote store; refusing to change it")
            return 0
        versions = [int(v) for (v,) in self._fetch(f"SELECT version FROM {VERSION_TABLE}")[1]]
        if len(versions) != 1:
            raise StoreError(f"{self.location}: {VERSION_TABLE} holds {len(versions)} rows, not one version: "
                             "not a CodeArena vote store as this release knows it; refusing to change it")
        version = versions[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.location}: written by a newer CodeArena (schema {version}, this release "
                             f"reads up to {SCHEMA_VERSION}); upgrade codearena to open it")
        if version < 1:
            raise StoreError(f"{self.location}: schema version {version} is not a CodeArena one: not a vote "
                             "store; refusing to touch it")
        for table, columns in EXPECTED_TABLES[version].items():
            missing = [c for c in columns if c not in tables.get(table, [])]
            if missing:
                what = f"no {table} table" if table not in tables else f"table {table} lacks {', '.join(missing)}"
                raise StoreError(f"{self.location}: not a CodeArena vote store ({what}); refusing to change it")
        return version

    def _check_readable_store(self) -> None:
        if self._check_schema() == 0:
            raise StoreError(f"{self.location}: no vote store there (votes are stored by serve, duel, judge, "
                             "import)")

    def _migrate(self) -> None:
        if self._check_schema() == SCHEMA_VERSION:
            return
        with self._write() as cur:
            # Replicas that start together wait here; each re-reads the version once it has the lock.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            current = self._check_schema()
            for version in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](cur)
                cur.execute(f"UPDATE {VERSION_TABLE} SET version = %s", (version,))

    # -- arena state shared by replicas ------------------------------------------------------------
    def lead(self, role: str) -> bool:
        with self._lease_lock:
            held = self._leases.get(role)
            if held is not None:
                conn, holding = held
                try:
                    if holding:
                        conn.execute("SELECT 1")  # the lock lives as long as this session
                        return True
                    got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(role),)).fetchone()[0]
                except psycopg.Error:
                    conn.close()  # the session (and with it the lock) is gone: try again afresh
                    held = None
                else:
                    self._leases[role] = (conn, bool(got))
                    return bool(got)
            conn = self._new_connection()
            try:
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(role),)).fetchone()[0]
            except psycopg.Error as exc:
                conn.close()
                raise self._error(exc, "cannot take the lock") from None
            self._leases[role] = (conn, bool(got))
            return bool(got)

    def put_shared(self, key: str, payload: str, version: int) -> float:
        with self._write() as cur:
            cur.execute(f"INSERT INTO {SHARED_TABLE} (key, written_at, version, payload) VALUES "
                        "(%s, extract(epoch FROM clock_timestamp()), %s, %s) ON CONFLICT (key) DO UPDATE SET "
                        "written_at = EXCLUDED.written_at, version = EXCLUDED.version, payload = EXCLUDED.payload "
                        "RETURNING written_at", (key, version, payload))
            return float(cur.fetchone()[0])

    def get_shared(self, key: str, newer_than: float | None = None) -> tuple[float, int, str] | None:
        sql = f"SELECT written_at, version, payload FROM {SHARED_TABLE} WHERE key = ?"
        params: list[Any] = [key]
        if newer_than is not None:
            sql += " AND written_at > ?"
            params.append(newer_than)
        rows = self._fetch(sql, params)[1]
        return (float(rows[0][0]), int(rows[0][1]), str(rows[0][2])) if rows else None

    def rate_take(self, key: str, limit: int, window_s: float, *, count: bool = True) -> float | None:
        # A sliding window approximated from two fixed ones (the current count plus the previous window's,
        # weighted by how much of it still overlaps the last window_s), on the database's clock so that
        # replicas agree; the increment and the test are one statement, so concurrent requests of one
        # client on several replicas cannot both take the last slot.
        w = max(1, round(window_s))
        self._rate_calls += 1
        if self._rate_calls % 500 == 0:
            self._forget_old_windows(w)
        head = (f"WITH t AS (SELECT extract(epoch FROM clock_timestamp()) AS now), "
                f"w AS (SELECT (floor(now / %(w)s) * %(w)s)::bigint AS start, now FROM t), "
                f"p AS (SELECT coalesce((SELECT r.count FROM {RATE_TABLE} r WHERE r.key = %(k)s AND "
                f"r.window_start = w.start - %(w)s), 0) * (1 - (w.now - w.start) / %(w)s) AS weighted, "
                f"w.start, w.now FROM w) ")
        params = {"k": key, "w": w, "limit": limit}
        with self._write() as cur:
            if count:
                cur.execute(head + f"INSERT INTO {RATE_TABLE} AS r (key, window_start, count) "
                            "SELECT %(k)s, p.start, 1 FROM p WHERE p.weighted + 1 <= %(limit)s "
                            "ON CONFLICT (key, window_start) DO UPDATE SET count = r.count + 1 "
                            "WHERE r.count + (SELECT weighted FROM p) + 1 <= %(limit)s RETURNING r.count",
                            params)
                if cur.fetchone() is not None:
                    return None
                cur.execute(head + "SELECT %(w)s - (now - start) FROM p", params)
            else:
                cur.execute(head + f"SELECT CASE WHEN p.weighted + coalesce((SELECT r.count FROM {RATE_TABLE} "
                            "r WHERE r.key = %(k)s AND r.window_start = p.start), 0) + 1 <= %(limit)s "
                            "THEN NULL ELSE %(w)s - (p.now - p.start) END FROM p", params)
            wait = cur.fetchone()[0]
        return None if wait is None else float(wait)

    def rate_record(self, key: str, window_s: float) -> None:
        w = max(1, round(window_s))
        with self._write() as cur:
            cur.execute(f"INSERT INTO {RATE_TABLE} AS r (key, window_start, count) VALUES "
                        "(%(k)s, (floor(extract(epoch FROM clock_timestamp()) / %(w)s) * %(w)s)::bigint, 1) "
                        "ON CONFLICT (key, window_start) DO UPDATE SET count = r.count + 1", {"k": key, "w": w})

    def _forget_old_windows(self, w: int) -> None:
        with self._write() as cur:
            cur.execute(f"DELETE FROM {RATE_TABLE} WHERE window_start < "
                        "extract(epoch FROM clock_timestamp()) - greatest(2 * %s, 7200)", (w,))


class _RollBack(Exception):
    """Ends a probe transaction (check_writable) with a rollback."""

