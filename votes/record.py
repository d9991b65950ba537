"""The battle record: the one contract between the arena app, the duel, the importers and the ratings.

A battle is one vote on two answers to one prompt. Its fields and winner labels follow the Chatbot Arena
battle schema (``model_a, model_b, winner`` with winner in ``model_a | model_b | tie | tie (bothbad)``), so
files the field already has load unchanged, and what we export loads in their tools.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from votes.runs import BattleRun, RunRecordError, parse_runs, runs_json

WINNERS: tuple[str, ...] = ("model_a", "model_b", "tie", "tie (bothbad)")
MODES: tuple[str, ...] = ("anonymous", "named")
# human | judge:<name> | import:<dataset>
SOURCE_RE = re.compile(r"^(human|judge:[^\s]+|import:[^\s]+)$")

# Characters no model name may hold: C0/C1 controls (ANSI escapes start with ESC, \x1b), bidi overrides and
# other invisible format characters (a name that prints as another one), line separators and lone surrogates
# (not encodable as UTF-8, so not storable). Names reach terminals, CSV files and web pages.
BAD_NAME_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")
# More turns than any conversation a voter reads; the bound also keeps turn inside SQLite's INTEGER.
MAX_TURN = 10_000
# Unix seconds that are a datetime (years 1..9999); anything else is not a vote time.
MIN_TSTAMP, MAX_TSTAMP = -62_135_596_800.0, 253_402_300_799.0

# Namespace for deterministic ids of imported rows: importing the same row twice yields the same id,
# which the store's primary key turns into "already there".
IMPORT_NAMESPACE = uuid.UUID("5b0c1d4e-8a51-4c59-9e7f-2f3c1a6d0c11")


class BattleError(ValueError):
    """A battle that must not be stored, with the reason in words a user can act on."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def parse_flags(value: Any) -> list[str]:
    """A vote's flags as a list whatever carries them: a list (JSONL, Parquet), its JSON text (the store, a
    CSV cell), a bare flag, or nothing. The one reader of flags for the store, the importers and the ratings."""
    if value is None or isinstance(value, float) and value != value:  # None or NaN
        return []
    if hasattr(value, "tolist") and not isinstance(value, str):  # a numpy array from Parquet
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v]
    text = str(value).strip()
    if not text:
        return []
    if text.startswith("["):
        from votes.files import parse_json

        try:
            parsed = parse_json(text, "flags")
        except ValueError:
            return [text]
        return [str(v) for v in parsed if v] if isinstance(parsed, list) else [text]
    return [text]


def text_hash(text: str) -> str:
    """Short stable hash of a text: identifies a prompt without storing it twice, or a voter without storing who."""
    # surrogatepass: the same hash as plain UTF-8 for every valid text, and no crash on a lone surrogate.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a model name (a control or invisible character, named by its code point), or
    None when it can."""
    m = BAD_NAME_CHARS.search(name)
    if m is None:
        return None
    return f"holds the control character U+{ord(m.group()):04X} at position {m.start()}"


def text_problem(value: str) -> str | None:
    """Why a text cannot be stored (a lone surrogate: not UTF-8), or None."""
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid Unicode (lone surrogate U+{ord(value[exc.start]):04X} at position {exc.start})"
    return None


def unix_to_iso(ts: float) -> str:
    """Unix seconds as the store's ``created_at`` (ISO UTC, like :func:`utc_now`); a time outside years
    1..9999 (or not finite) raises :class:`BattleError`."""
    if not MIN_TSTAMP <= ts <= MAX_TSTAMP:  # False for NaN too
        raise BattleError(f"tstamp {ts!r} is not a Unix time (seconds between years 1 and 9999)")
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def import_id(dataset: str, *key_parts: Any) -> str:
    """Deterministic battle id for an imported row, so a second import of the same file adds nothing."""
    key = json.dumps([dataset, *key_parts], sort_keys=True, default=str)
    return str(uuid.uuid5(IMPORT_NAMESPACE, key))


@dataclass(frozen=True)
class Battle:
    """One vote. Construct it and it is checked; an invalid battle raises :class:`BattleError`."""

    model_a: str
    model_b: str
    winner: str
    source: str = "human"
    mode: str = "anonymous"
    prompt_id: str | None = None
    prompt: str | None = None
    prompt_hash: str | None = None
    category: str | None = None
    language: str | None = None
    turn: int = 1
    answer_a: str | None = None
    answer_b: str | None = None
    # Full multi-turn conversations (OpenAI message lists) when the battle had follow-up turns.
    conversation_a: list[dict[str, str]] | None = None
    conversation_b: list[dict[str, str]] | None = None
    voter: str | None = None  # a hash, never a raw identity
    flags: list[str] = field(default_factory=list)
    judge_detail: dict[str, Any] | None = None
    # The code runs the voter asked for before the vote (Run buttons), per side and turn, in order.
    runs: tuple[BattleRun, ...] = ()
    # How long each side's answers took (votes.latency.BattleTimings.to_dict), when they were timed.
    timings: dict[str, Any] | None = None
    # The probability with which the arena's sampler chose this pair (either order): inverse-propensity
    # weights (`rate --reweight propensity`) undo a sampler that favours some pairs.
    pair_probability: float | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        for side in ("model_a", "model_b"):
            name = getattr(self, side)
            if not isinstance(name, str) or not name.strip():
                raise BattleError(f"{side} must be a non-empty model name, got {name!r}")
            problem = name_problem(name)
            if problem:
                raise BattleError(f"{side} {name!r} {problem}")
        if self.model_a == self.model_b:
            raise BattleError(f"model_a and model_b are the same model ({self.model_a!r}): a battle needs two")
        if self.winner not in WINNERS:
            raise BattleError(f"unknown winner label {self.winner!r}; expected one of {', '.join(WINNERS)}")
        if not isinstance(self.source, str) or not SOURCE_RE.match(self.source):
            raise BattleError(
                f"bad source {self.source!r}; expected 'human', 'judge:<name>' or 'import:<dataset>'"
            )
        if self.mode not in MODES:
            raise BattleError(f"bad mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if not isinstance(self.turn, int) or isinstance(self.turn, bool) or self.turn < 1:
            raise BattleError(f"turn must be a positive integer, got {self.turn!r}")
        if self.turn > MAX_TURN:
            raise BattleError(f"turn {self.turn} is beyond {MAX_TURN} turns")
        for key in TEXT_FIELDS:
            value = getattr(self, key)
            problem = text_problem(value) if isinstance(value, str) else None
            if problem:
                raise BattleError(f"{key} {problem}")
        for side in ("conversation_a", "conversation_b"):
            for message in getattr(self, side) or ():
                content = message.get("content") if isinstance(message, dict) else None
                problem = text_problem(content) if isinstance(content, str) else None
                if problem:
                    raise BattleError(f"{side}: a message {problem}")
        if self.prompt is not None and self.prompt_hash is None:
            object.__setattr__(self, "prompt_hash", text_hash(self.prompt))
        self._check_runs()
        p = self.pair_probability
        if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1):
            raise BattleError(f"pair_probability must be a number in (0, 1], got {p!r}")
        if self.timings is not None and not isinstance(self.timings, dict):
            raise BattleError(f"timings must be an object, got {type(self.timings).__name__}")

    def _check_runs(self) -> None:
        runs = self.runs
        if isinstance(runs, list):
            object.__setattr__(self, "runs", tuple(runs))
        if not isinstance(self.runs, tuple) or not all(isinstance(r, BattleRun) for r in self.runs):
            raise BattleError(f"runs must be BattleRun records, got {runs!r:.200}")
        for r in self.runs:
            if r.turn > self.turn:
                raise BattleError(f"a run of turn {r.turn} in a battle of {self.turn} turn(s)")

    def to_row(self) -> dict[str, Any]:
        """The store's row: JSON-typed fields serialised, everything else as is."""
        # Not asdict(): it deep-copies every field and was 65% of import time.
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in JSON_FIELDS:
            value = row[key]
            if value is not None:
                text = json.dumps(value, ensure_ascii=False)
                # A lone surrogate deep in judge_detail cannot be stored as UTF-8; escaped, it can.
                row[key] = json.dumps(value) if text_problem(text) else text
        runs = runs_json(self.runs)
        # The same for a run's output: escaped where it holds what UTF-8 cannot store.
        row["runs"] = runs if runs is None or not text_problem(runs) else runs_json(self.runs, ascii_only=True)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Battle:
        data = {f.name: row.get(f.name) for f in fields(cls) if f.name in row}
        for key in JSON_FIELDS:
            if isinstance(data.get(key), str):
                data[key] = json.loads(data[key])
        if data.get("flags") is None:
            data["flags"] = []
        if data.get("turn") is None:
            data["turn"] = 1
        if "runs" in data:
            try:
                data["runs"] = parse_runs(data["runs"])
            except RunRecordError as exc:
                raise BattleError(f"battle {data.get('id')}: stored runs are damaged: {exc}") from exc
        return cls(**data)


# Free text that must be storable as UTF-8 (model names are checked apart, more strictly).
TEXT_FIELDS: tuple[str, ...] = ("prompt_id", "prompt", "category", "language", "answer_a", "answer_b", "voter",
                                "source", "id")
JSON_FIELDS: tuple[str, ...] = ("conversation_a", "conversation_b", "flags", "judge_detail", "timings")
BATTLE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Battle))
