"""A leaderboard file (model + rating, optional CIs or bootstrap samples) as a ranking to validate against.

Arena-Hard's leaderboards hold the baseline model fixed (its score is 50 in every bootstrap round), and
some files give it a single bootstrap value, or none, while every other model has R. Such a model is
fixed: its one value (or its rating, when it has no samples) stands for all R rounds. Any other mismatch
of sample counts is an error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ratings.separability import RankingLike, intervals


class BoardFileError(ValueError):
    """A leaderboard table that cannot be used as a ranking; the message names the file."""


def _samples_of(value: Any) -> list[float] | None:
    """A bootstrap cell as a list of floats; None for a missing cell (NaN, None, empty list)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, int | float):
        return [float(value)]
    out = [float(v) for v in value]
    return out or None


def ranking_from_board(df: pd.DataFrame, origin: str = "<leaderboard>") -> RankingLike:
    """Ratings (``rating`` or ``score``), and CIs from ``bootstrap`` lists or ``ci_low``/``ci_high``.

    A model with a single bootstrap value or none is fixed across the rounds (Arena-Hard's baseline).
    """
    col = "rating" if "rating" in df.columns else "score"
    if "model" not in df.columns or col not in df.columns:
        raise BoardFileError(f"{origin}: a leaderboard needs a model column and a rating or score column")
    if df["model"].isna().any() or df[col].isna().any():
        raise BoardFileError(f"{origin}: leaderboard rows need a model and a {col}")
    models = df["model"].astype(str)
    if models.duplicated().any():
        raise BoardFileError(f"{origin}: model {models[models.duplicated()].iloc[0]!r} appears twice")
    rating = pd.Series(df[col].astype(float).to_numpy(), index=models)
    if "bootstrap" in df.columns:
        lists = [_samples_of(v) for v in df["bootstrap"]]
        lengths = {len(v) for v in lists if v is not None and len(v) > 1}
        if len(lengths) > 1:
            raise BoardFileError(f"{origin}: every model needs the same number of bootstrap samples (or a single "
                                 f"fixed value, as Arena-Hard's baseline); "
                                 f"found {', '.join(map(str, sorted(lengths)))}")
        rounds = lengths.pop() if lengths else 1
        if all(v is None for v in lists):
            raise BoardFileError(f"{origin}: the bootstrap column has no samples")
        columns = [np.full(rounds, r if v is None else v[0]) if v is None or len(v) == 1 else np.asarray(v)
                   for v, r in zip(lists, rating.to_numpy(), strict=True)]
        samples = pd.DataFrame(np.column_stack(columns), columns=rating.index)
        return RankingLike(rating=rating, ci=intervals(samples), samples=samples)
    if {"ci_low", "ci_high"} <= set(df.columns) and df[["ci_low", "ci_high"]].notna().all().all():
        ci = pd.DataFrame({"ci_low": df["ci_low"].astype(float).to_numpy(),
                           "ci_high": df["ci_high"].astype(float).to_numpy()}, index=rating.index)
        return RankingLike(rating=rating, ci=ci)
    return RankingLike(rating=rating)
