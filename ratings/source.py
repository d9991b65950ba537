"""The one I/O edge of the ratings: battles from a vote store or a battles file, filtered as asked.

Every path that turns votes into numbers (rate, validate, export) selects its battles through
:func:`select_battles`, so the same file or store gives the same votes whichever command reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from votes.prefetch import PendingRead
from votes.record import parse_flags

SQLITE_MAGIC = b"SQLite format 3\x00"

# The source a store is ranked on unless --source says otherwise: judge and imported votes are other
# datasets. A battles file is usually one dataset, so a file keeps every source unless asked.
DEFAULT_SOURCE = "human"
FILE_DEFAULT_SOURCE = "all"

# A flag prefix that marks a vote whose answers revealed which model wrote them; FastChat drops such
# battles because the vote is no longer blind.
IDENTITY_LEAK = "identity_leak"


@dataclass(frozen=True)
class LoadedBattles:
    battles: pd.DataFrame
    origin: str  # "store" | "file"
    dropped_named: int  # named-mode votes left out of the ranking
    source_filter: str
    dropped_flagged: int = 0  # identity-leak flagged votes left out
    notes: list[str] = field(default_factory=list)


# A path with one of these suffixes is meant as a vote store: it is opened as one, so a file that is not
# SQLite gets the store's "not an SQLite database" error, not "unknown battles format '.db'".
STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def is_store(path: str | Path) -> bool:
    """True for a PostgreSQL URL, an SQLite file (by its magic bytes) or a path named like a store
    (STORE_SUFFIXES)."""
    from votes.store import is_postgres_url

    if is_postgres_url(path):
        return True
    p = Path(path)
    if not p.is_file():
        return False
    if p.suffix.lower() in STORE_SUFFIXES:
        return True
    with open(p, "rb") as fh:
        return fh.read(16) == SQLITE_MAGIC


# What a rating reads of a stored vote (``codearena rate``): the bulky texts (answers, conversations, runs,
# judge details) only when an option needs them (see :func:`rating_columns`).
RATING_COLUMNS: tuple[str, ...] = ("id", "created_at", "prompt_id", "prompt_hash", "category", "language", "turn",
                                   "model_a", "model_b", "winner", "source", "mode", "voter", "flags", "timings",
                                   "pair_probability")


def rating_columns(*, answers: bool = False, prompts: bool = False) -> tuple[str, ...]:
    """The store columns a rating reads: :data:`RATING_COLUMNS`, plus the answers (style control, length
    bias) and the prompt texts (de-duplicating repeated prompts) when asked."""
    extra = (("answer_a", "answer_b") if answers else ()) + (("prompt", "conversation_a") if prompts else ())
    return RATING_COLUMNS + extra


def source_mask(sources: pd.Series, source: str | None) -> np.ndarray:
    """True where a battle's source matches ``source`` (None/"all": every one; "judge:": a prefix)."""
    if source in (None, "all"):
        return np.ones(len(sources), dtype=bool)
    col = sources.astype(str)
    keep = col.str.startswith(source) if source.endswith(":") else col == source
    return keep.to_numpy()


def named_mask(battles: pd.DataFrame) -> np.ndarray | None:
    """True for named-mode votes, from ``mode`` (store, our exports) or ``anony`` (Chatbot Arena)."""
    if "mode" in battles.columns:
        return (battles["mode"].astype(str) == "named").to_numpy()
    if "anony" in battles.columns:
        return battles["anony"].astype(str).str.lower().isin(["false", "0"]).to_numpy()
    return None


def flagged_mask(battles: pd.DataFrame) -> np.ndarray | None:
    """True for votes flagged with an identity leak; None when the frame has no ``flags`` column."""
    if "flags" not in battles.columns:
        return None
    flags = battles["flags"]
    # Only a cell whose text names the flag can carry it: parse those alone (a million "[]" cells are the
    # common case, and parsing each was most of the time of reading a large store).
    maybe = flags.map(lambda v: IDENTITY_LEAK in v if isinstance(v, str) else v is not None and not (
        isinstance(v, float) and np.isnan(v))).to_numpy(dtype=bool)
    out = np.zeros(len(flags), dtype=bool)
    for i in np.flatnonzero(maybe):
        out[i] = any(f.startswith(IDENTITY_LEAK) for f in parse_flags(flags.iloc[i]))
    return out


def select_battles(battles: pd.DataFrame, *, source: str | None = DEFAULT_SOURCE, include_named: bool = False,
                   include_flagged: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The battles that count, and notes on what was left out.

    ``source``: None/"all" keeps every source, a prefix ending in ":" ("judge:") keeps that family, any
    other name keeps that source. A frame without a ``source``/``mode``/``flags`` column keeps everything
    on that axis (a plain model_a,model_b,winner file). Named-mode votes (brand bias) and votes flagged
    ``identity_leak*`` (not blind) are left out unless asked for.
    """
    df = battles
    notes: list[str] = []
    if source not in (None, "all") and "source" in df.columns:
        df = df.loc[source_mask(df["source"], source)]
    if not include_named:
        named = named_mask(df)
        if named is not None and named.any():
            notes.append(f"{int(named.sum())} named-mode vote(s) left out")
            df = df.loc[~named]
    if not include_flagged:
        flagged = flagged_mask(df)
        if flagged is not None and flagged.any():
            notes.append(f"{int(flagged.sum())} vote(s) flagged {IDENTITY_LEAK} left out")
            df = df.loc[~flagged]
    return df.reset_index(drop=True), notes


def _count(notes: list[str], what: str) -> int:
    for n in notes:
        if what in n:
            return int(n.split()[0])
    return 0


def load_battles(path: str | Path, *, source: str | None = None, include_named: bool = False,
                 include_flagged: bool = False, columns: tuple[str, ...] | None = None,
                 pending: PendingRead | None = None) -> LoadedBattles:
    """Battles to rate. ``source``: human | judge:NAME | judge: | import:NAME | all.

    Default: DEFAULT_SOURCE for a store, every source for a file (a file is usually one dataset). Named
    votes and identity-leak flagged votes are left out unless asked for (see :func:`select_battles`).
    ``columns``: read only these from a store (e.g. :data:`RATING_COLUMNS`); a file is read whole.
    ``pending``: this file's read, started earlier (votes.prefetch.read_in_background).
    """
    from votes.store import is_postgres_url, open_store

    if not is_postgres_url(path):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
    if is_store(path):
        # Read-only: rating, validating or exporting must never create or migrate a store.
        store = open_store(path, read_only=True)
        path = store.location  # what messages name (a URL without its password)
        try:
            src = source or DEFAULT_SOURCE
            raw = store.battles_frame(source=src, columns=columns)
            have_sources = store.sources() if len(raw) == 0 else {}
        finally:
            store.close()
        origin = "store"
        if len(raw) == 0:
            if not have_sources:
                # No other source to suggest: pointing at --source would send the user on a useless search.
                raise ValueError(f"{path}: the store has no battles yet")
            have = ", ".join(f"{s} ({n})" for s, n in have_sources.items())
            raise ValueError(f"{path}: no battles with source {src!r}; sources in the store: {have} "
                             "(choose one with --source, or --source all)")
    else:
        from votes.files import read_battles_file

        raw = pending.result() if pending is not None and pending.path == path else read_battles_file(path)
        origin = "file"
        src = source or FILE_DEFAULT_SOURCE
        if src != "all":
            if "source" not in raw.columns:
                raise ValueError(f"{path}: --source {src} asked, but the file has no 'source' column")
            raw = raw.loc[source_mask(raw["source"], src)].reset_index(drop=True)
            if len(raw) == 0:
                raise ValueError(f"{path}: no battles with source {src!r}")
    df, notes = select_battles(raw, source=src, include_named=include_named, include_flagged=include_flagged)
    if len(df) == 0:
        hints = []
        if not include_named and _count(notes, "named-mode"):
            hints.append("--include-named")
        if not include_flagged and _count(notes, IDENTITY_LEAK):
            hints.append("--include-flagged")
        raise ValueError(f"{path}: every battle was left out ({'; '.join(notes)}); pass {' / '.join(hints)}")
    return LoadedBattles(battles=df, origin=origin, dropped_named=_count(notes, "named-mode"), source_filter=src,
                         dropped_flagged=_count(notes, IDENTITY_LEAK), notes=notes)


def load_answer_timings(path: str | Path) -> pd.DataFrame:
    """The latencies of the answers a vote store keeps (``generate`` and ``duel`` record one per turn in
    the answers table), one row per timed answer (ratings.latency.TIMING_COLUMNS); empty for a battles
    file or a store whose answers carry none."""
    from ratings.latency import timings_frame
    from votes.latency import TimingRecordError, timings_from_meta

    if not is_store(path):
        return timings_frame([])
    from votes.store import open_store

    store = open_store(path, read_only=True)
    try:
        rows = store.answers()
    finally:
        store.close()
    records = []
    for r in rows:
        try:
            records.extend((str(r["model"]), t) for t in timings_from_meta(r["meta"]))
        except TimingRecordError as exc:
            raise ValueError(f"{path}: answer of {r['model']!r} to {r['question_id']!r}: bad timing "
                             f"({exc})") from exc
    return timings_frame(records)


def load_latency(path: str | Path, battles: pd.DataFrame) -> pd.DataFrame:
    """Each model's median latency (ratings.latency.median_latency) over the timed answers of a store's
    answers table and of ``battles`` (their ``timings`` column, where there is one); an empty frame when
    nothing is timed."""
    from ratings.latency import battle_timings_frame, median_latency

    frames = [f for f in (load_answer_timings(path), battle_timings_frame(battles)) if len(f)]
    return median_latency(pd.concat(frames, ignore_index=True) if frames else battle_timings_frame(battles))


PROPENSITY_WEIGHT = "propensity_weight"


def with_propensity_weights(battles: pd.DataFrame) -> pd.DataFrame:
    """The battles with a ``propensity_weight`` column, 1 / the probability the arena's sampler chose each
    battle's pair with (``Battle.pair_probability``); every battle must carry it."""
    if "pair_probability" not in battles.columns or battles["pair_probability"].isna().any():
        have = 0 if "pair_probability" not in battles.columns else int(battles["pair_probability"].notna().sum())
        raise ValueError(f"--reweight propensity needs the sampling probability of every vote; {have} of "
                         f"{len(battles)} have one (the arena records it for anonymous votes since schema v2)")
    p = pd.to_numeric(battles["pair_probability"], errors="coerce").to_numpy(dtype=float)
    if not ((p > 0) & (p <= 1)).all():
        raise ValueError("--reweight propensity: pair_probability values must be in (0, 1]")
    return battles.assign(**{PROPENSITY_WEIGHT: 1.0 / p})
