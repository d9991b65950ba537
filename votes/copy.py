"""Copying a vote store to another (SQLite <-> PostgreSQL, either way), verified.

Rows are copied as stored (JSON columns as their text), in one transaction on the destination (all or
nothing), and idempotently: a row whose key the destination already holds is left as it is, so a second
run adds nothing. Afterwards the copy is checked: for each table, the destination must hold as many of the
source's keys as the source has rows, and the same content, by an order-independent checksum over every
column (the sum of each row's SHA-256, so two stores that sort differently still agree).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from votes.store import TABLES, StoreError, VoteStore, open_store

Progress = Callable[[int, int], None]  # (rows just read, rows to copy in all)


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int  # in the source
    added: int
    already: int  # the destination held their key already (idempotent re-runs)
    checksum: str  # of the source's rows, equal to the destination's over the same keys


@dataclass(frozen=True)
class CopyReport:
    src: str
    dst: str
    tables: tuple[TableCopy, ...]

    def summary(self) -> str:
        parts = [f"{t.table} {t.rows} (added {t.added}, already there {t.already})" for t in self.tables]
        sums = ", ".join(f"{t.table} {t.checksum[:16]}" for t in self.tables)
        return f"copied {self.src} -> {self.dst}: {'; '.join(parts)}; verified: counts and checksums match ({sums})"


def row_digest(table: str, row: dict[str, Any]) -> int:
    """One row's SHA-256 over every column of ``table``, in the schema's order, as an integer."""
    cols = TABLES[table][0]
    text = json.dumps([row.get(c) for c in cols], ensure_ascii=False, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest(), "big")


class _Checksum:
    def __init__(self) -> None:
        self.total = 0
        self.rows = 0

    def add(self, digest: int) -> None:
        self.total = (self.total + digest) % (1 << 256)
        self.rows += 1

    @property
    def hex(self) -> str:
        return f"{self.total:064x}"


def table_checksum(store: VoteStore, table: str, keys: set[tuple] | None = None) -> tuple[int, str]:
    """(rows, checksum) of ``table`` in ``store``; with ``keys``, over the rows with those keys only."""
    key_cols = TABLES[table][1]
    acc = _Checksum()
    for row in store.iter_rows(table):
        if keys is None or tuple(row[c] for c in key_cols) in keys:
            acc.add(row_digest(table, row))
    return acc.rows, acc.hex


def copy_store(src: str, dst: str, *, progress: Progress | None = None) -> CopyReport:
    """Copy every battle and answer of the store ``src`` into ``dst`` (created if needed), then verify."""
    source = open_store(src, read_only=True)
    try:
        target = open_store(dst)
        try:
            return _copy(source, target, progress)
        finally:
            target.close()
    finally:
        source.close()


def _copy(source: VoteStore, target: VoteStore, progress: Progress | None) -> CopyReport:
    if source.location == target.location:
        raise StoreError(f"{source.location}: SRC and DST are the same store")
    sums: dict[str, _Checksum] = {t: _Checksum() for t in TABLES}
    keys: dict[str, set[tuple]] = {t: set() for t in TABLES}
    added: dict[str, int] = {}
    total = sum(source.count_rows(t) for t in TABLES)

    def read(table: str) -> Iterator[dict[str, Any]]:
        key_cols = TABLES[table][1]
        n = 0
        for row in source.iter_rows(table):
            sums[table].add(row_digest(table, row))
            keys[table].add(tuple(row[c] for c in key_cols))
            n += 1
            if progress is not None and n % 1000 == 0:
                progress(1000, total)
            yield row
        if progress is not None and n % 1000:
            progress(n % 1000, total)

    with target.transaction():  # both tables, all or nothing
        for table in TABLES:
            added[table] = target.add_rows(table, read(table)).added
    out = []
    for table in TABLES:
        rows, checksum = table_checksum(target, table, keys[table])
        want = sums[table]
        if rows != want.rows:
            raise StoreError(f"{target.location}: after the copy, {table} holds {rows} of the source's "
                             f"{want.rows} rows; the copy is incomplete")
        if checksum != want.hex:
            raise StoreError(f"{target.location}: {table} differs from {source.location}: some rows already "
                             "there hold other content under the same keys (a copy never overwrites a row)")
        out.append(TableCopy(table, want.rows, added[table], want.rows - added[table], want.hex))
    return CopyReport(source.location, target.location, tuple(out))

