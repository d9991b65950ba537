"""How fast an answer came: time to first token, total time, tokens, and the endpoint that served it.

Owned by the votes room because it is stored with the answers (the answers table's ``meta``, a
``model_answer`` line) and with the battle whose answers it timed; ``serving`` measures it and ``ratings``
turns many of them into a model's median latency. ``to_dict``/``from_dict`` are the stored form (JSON-safe)
and round-trip; ``from_dict`` validates, so a damaged record raises :class:`TimingRecordError`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from votes.record import Battle
from votes.stored import record_fields

log = logging.getLogger(__name__)

# Where ``tokens`` came from: the server's own count (usage), or the streamed text deltas counted by the
# caller (one per token on llama.cpp and vLLM, close to it elsewhere).
TOKEN_SOURCES: tuple[str, ...] = ("server", "chunks")


class TimingRecordError(ValueError):
    """A timing record that does not hold together (a negative time, a first token after the end, ...)."""


def _seconds(name: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise TimingRecordError(f"{name} must be a non-negative number of seconds, got {value!r}")


@dataclass(frozen=True)
class AnswerTiming:
    """One answer (one turn of one side). ``ttft_s`` is None where the answer was not streamed (a
    non-streaming HTTP call sees only the whole reply); ``endpoint`` is None for in-process engines."""

    total_s: float
    ttft_s: float | None = None
    tokens: int | None = None
    tokens_source: str | None = None  # one of TOKEN_SOURCES when ``tokens`` is known
    endpoint: str | None = None

    def __post_init__(self) -> None:
        _seconds("total_s", self.total_s, optional=False)
        _seconds("ttft_s", self.ttft_s, optional=True)
        if self.ttft_s is not None and self.ttft_s > self.total_s:
            raise TimingRecordError(f"ttft_s ({self.ttft_s}) is after the end of the answer ({self.total_s})")
        if self.tokens is not None and (isinstance(self.tokens, bool) or not isinstance(self.tokens, int)
                                        or self.tokens < 0):
            raise TimingRecordError(f"tokens must be a whole number >= 0, got {self.tokens!r}")
        if self.tokens_source is not None and self.tokens_source not in TOKEN_SOURCES:
            raise TimingRecordError(f"tokens_source must be one of {', '.join(TOKEN_SOURCES)}, "
                                    f"got {self.tokens_source!r}")
        if self.endpoint is not None and not isinstance(self.endpoint, str):
            raise TimingRecordError(f"endpoint must be a string, got {self.endpoint!r}")

    @property
    def tokens_per_s(self) -> float | None:
        """End to end: tokens over the whole answer's time, what a user waiting for all of it sees (the
        same definition whether or not the first token's time is known)."""
        if self.tokens is None or self.total_s <= 0:
            return None
        return self.tokens / self.total_s

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["tokens_per_s"] = self.tokens_per_s  # derived; written for readers of the file, ignored on load
        return out

    @classmethod
    def from_dict(cls, data: Any) -> AnswerTiming:
        values = record_fields(cls, data, TimingRecordError, label="a timing record", kind="timing",
                               derived=("tokens_per_s",))
        if "total_s" not in values:
            raise TimingRecordError("a timing record needs total_s")
        return cls(**values)


def timings_from_meta(meta: Any) -> list[AnswerTiming]:
    """The per-turn timings kept in an answers-table ``meta`` (``{"timing": [...]}``, one per turn); empty
    for answers stored before timings were recorded, or imported without them."""
    if not isinstance(meta, dict) or not isinstance(meta.get("timing"), list):
        return []
    return [AnswerTiming.from_dict(t) for t in meta["timing"] if t is not None]


@dataclass(frozen=True)
class BattleTimings:
    """The timings of a battle's answers, one per turn on each side, as the battle is stored with its vote."""

    a: tuple[AnswerTiming, ...] = ()
    b: tuple[AnswerTiming, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"a": [t.to_dict() for t in self.a], "b": [t.to_dict() for t in self.b]}

    @classmethod
    def from_dict(cls, data: Any) -> BattleTimings:
        if not isinstance(data, dict) or set(data) - {"a", "b"}:
            raise TimingRecordError(f"battle timings must be a mapping with keys a and b, got {data!r:.80}")
        sides = []
        for key in ("a", "b"):
            value = data.get(key) or []
            if not isinstance(value, list):
                raise TimingRecordError(f"battle timings side {key!r} must be a list, got {value!r:.80}")
            sides.append(tuple(AnswerTiming.from_dict(t) for t in value))
        return cls(*sides)

    @classmethod
    def of(cls, a: Sequence[AnswerTiming | None], b: Sequence[AnswerTiming | None]) -> BattleTimings:
        """From per-turn lists where a turn may lack a timing (it is left out)."""
        return cls(tuple(t for t in a if t is not None), tuple(t for t in b if t is not None))


# The column of the battles table that will hold BattleTimings.to_dict() as JSON text (schema v2).
BATTLE_TIMINGS_COLUMN = "timings"


def battle_with_timings(battle: Battle, timings: BattleTimings) -> Battle:
    """The battle as it is stored with its answers' timings (none timed: as it was)."""
    if not (timings.a or timings.b):
        return battle
    return dataclasses.replace(battle, timings=timings.to_dict())
