"""What every importer shares: the errors, a rejected row, the options, the report, and the small
conversions from a source row's cells to a battle's fields."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from votes.importers.names import ARENA_HARD_BASELINE
from votes.record import MAX_TURN, Battle, BattleError, parse_flags, unix_to_iso


class ImportFormatError(ValueError):
    """A file that cannot be imported at all; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class Rejection:
    where: str  # "file:line N" or "file: idx 12"
    reason: str


@dataclass(frozen=True)
class ImportOptions:
    dataset: str  # goes into ids and the default source import:<dataset>
    as_source: str | None = None  # who voted, when the caller knows: human | judge:NAME
    judge_file: Path | None = None  # pandalm: a judge verdict file joined on idx
    judge_name: str | None = None
    baseline: str = ARENA_HARD_BASELINE


@dataclass
class ImportReport:
    """What an import did: rows read, battles (or answers) added, already there, rejected and why."""

    format: str
    files: list[str] = field(default_factory=list)
    read: int = 0
    added: int = 0
    skipped: int = 0  # already stored (same deterministic id): a re-import
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first row that had it
    sources: Counter[str] = field(default_factory=Counter)  # source -> battles produced
    # Stored source -> rows whose id is already stored under that other source: ids are per row, not per
    # source, so the store keeps the old vote; a second copy under the new source would count it twice.
    conflicts: Counter[str] = field(default_factory=Counter)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def nothing_readable(self) -> bool:
        """Every row was rejected: most likely a file of another format (pandalm's turn files given as
        pandalm), which a user must hear about rather than read "added 0"."""
        return self.rejected_total > 0 and self.added == 0 and self.skipped == 0 and not self.conflicts \
            and not self.sources

    def nothing_readable_message(self) -> str:
        reason, n = self.rejected.most_common(1)[0]
        return (f"no row could be read as {self.format}: is this a {self.format} file? (most common rejection, "
                f"{n} of {self.rejected_total} rows: {reason}, first at {self.examples[reason]})")

    def conflict_messages(self) -> list[str]:
        return [f"{n} already stored under source {source} (ids are per row, not per source): delete them "
                f"first or import into another DB" for source, n in sorted(self.conflicts.items())]

    def reject(self, rej: Rejection) -> None:
        self.rejected[rej.reason] += 1
        self.examples.setdefault(rej.reason, rej.where)

    def summary(self) -> str:
        lines = [f"{self.format}: read {self.read} rows from {len(self.files)} file(s); added {self.added}, "
                 f"already present {self.skipped}, rejected {self.rejected_total}"
                 + (" (stored all or nothing, in one transaction)" if self.added else "")]
        for source, n in sorted(self.sources.items()):
            lines.append(f"  source {source}: {n}")
        for reason, n in self.rejected.most_common():
            lines.append(f"  rejected {n}: {reason} (first at {self.examples[reason]})")
        lines += [f"  not imported: {m}" for m in self.conflict_messages()]
        return "\n".join(lines)


Row = tuple[str, dict[str, Any]]
Parsed = Battle | Rejection


def battle_or_rejection(where: str, **kwargs: Any) -> Parsed:
    try:
        return Battle(**kwargs)
    except BattleError as exc:
        return Rejection(where, str(exc))


def str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def turn_of(where: str, value: Any) -> int:
    """A row's turn: 1 when missing or not a number (as before); a number no conversation has (Infinity,
    1e20) makes the file malformed."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not abs(value) <= MAX_TURN:
        raise ImportFormatError(f"{where}: turn {value!r} is out of range (at most {MAX_TURN})")
    try:
        turn = int(value) if value is not None else 1
    except (TypeError, ValueError, OverflowError):
        return 1
    if abs(turn) > MAX_TURN:  # "1" * 30 as a string
        raise ImportFormatError(f"{where}: turn {value!r} is out of range (at most {MAX_TURN})")
    return turn


def created_at(where: str, tstamp: Any) -> str | None:
    """Arena ``tstamp`` (Unix seconds) as the store's ``created_at`` (ISO UTC, like votes.record.utc_now);
    None when missing or not a number; a number that is no time (Infinity, 1e20) makes the file malformed."""
    try:
        ts = float(tstamp)
    except (TypeError, ValueError, OverflowError):
        return None
    if math.isnan(ts):
        return None
    try:
        return unix_to_iso(ts)
    except BattleError as exc:
        raise ImportFormatError(f"{where}: {exc}") from None


def created_at_kwargs(where: str, tstamp: Any) -> dict[str, Any]:
    """``{"created_at": ...}`` for a Battle when the row has a usable time, else nothing (the default: now)."""
    value = created_at(where, tstamp)
    return {} if value is None else {"created_at": value}


def conversation(value: Any) -> list[dict[str, str]] | None:
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return [{"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in value]
    return None


def last_reply(conv: list[dict[str, str]] | None) -> str | None:
    replies = [m["content"] for m in conv or [] if m["role"] == "assistant"]
    return replies[-1] if replies else None


def first_prompt(conv: list[dict[str, str]] | None) -> str | None:
    users = [m["content"] for m in conv or [] if m["role"] == "user"]
    return users[0] if users else None


def flags_of(value: Any) -> list[str]:
    """A row's flags (identity_leak, swapped, ...): a list, or the JSON text a CSV export holds."""
    return parse_flags(value)
