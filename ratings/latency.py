"""Each model's median latency, to show beside its rating (as Copilot Arena's leaderboard does): time to
first token, whole-answer time and tokens per second, over every timed answer of the model.

Medians, not means: one answer stuck behind a restarting server must not move a model's figure. Each
column's median is over the answers that have that figure (a non-streamed answer has no first-token time),
and its count is given, so a median of three answers is read as such.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from votes.latency import AnswerTiming, BattleTimings

TIMING_COLUMNS: tuple[str, ...] = ("model", "ttft_s", "total_s", "tokens_per_s", "endpoint", "origin")
LATENCY_COLUMNS: tuple[str, ...] = ("model", "answers", "ttft_answers", "ttft_s", "total_s", "tokens_per_s")


def timings_frame(records: Iterable[tuple[str, AnswerTiming]], *, origin: str = "answer") -> pd.DataFrame:
    """One row per timed answer: (model, timing) pairs -> TIMING_COLUMNS."""
    rows = [(model, t.ttft_s, t.total_s, t.tokens_per_s, t.endpoint, origin) for model, t in records]
    frame = pd.DataFrame(rows, columns=list(TIMING_COLUMNS))
    for col in ("ttft_s", "total_s", "tokens_per_s"):
        frame[col] = frame[col].astype(float)
    return frame


def battle_timings_frame(battles: pd.DataFrame, column: str = "timings") -> pd.DataFrame:
    """The answer timings a battles frame carries in its ``timings`` column (BattleTimings as JSON text or
    a mapping; side a is model_a's); an empty frame when there is no such column (stores before schema v2,
    files without it)."""
    if column not in battles.columns:
        return timings_frame([])
    records: list[tuple[str, AnswerTiming]] = []
    for model_a, model_b, value in zip(battles["model_a"], battles["model_b"], battles[column], strict=True):
        data = _mapping(value)
        if data is None:
            continue
        timings = BattleTimings.from_dict(data)
        records.extend((str(model_a), t) for t in timings.a)
        records.extend((str(model_b), t) for t in timings.b)
    return timings_frame(records, origin="battle")


def _mapping(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return json.loads(text) if text else None


def median_latency(timings: pd.DataFrame) -> pd.DataFrame:
    """Per model (sorted by name): how many timed answers, how many with a first-token time, and the median
    ttft_s, total_s and tokens_per_s (NaN where the model has none of that figure)."""
    if len(timings) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "model" else float) for c in LATENCY_COLUMNS})
    grouped = timings.groupby("model", sort=True)
    out = pd.DataFrame({
        "answers": grouped.size(),
        "ttft_answers": grouped["ttft_s"].count(),
        "ttft_s": grouped["ttft_s"].median(),
        "total_s": grouped["total_s"].median(),
        "tokens_per_s": grouped["tokens_per_s"].median(),
    }).reset_index()
    out["answers"] = out["answers"].astype(int)
    out["ttft_answers"] = out["ttft_answers"].astype(int)
    return out[list(LATENCY_COLUMNS)]
