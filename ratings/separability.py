"""How well a ranking separates models, and how well it agrees with a reference ranking, with confidence.

Definitions follow Li et al. 2024, "From Crowdsourced Data to High-Quality Benchmarks: Arena-Hard and
BenchBuilder Pipeline" (arXiv:2406.11939), sec. 3 "Metrics":

- *Separability with Confidence*: the fraction of model pairs whose (bootstrapped, 95%) confidence
  intervals of the benchmark score do not overlap.
- *Agreement with Confidence Interval*: for benchmarks A and B and each model pair, +1 if both separate the
  pair with confidence and agree on its order, -1 if both separate it with confidence and disagree, 0 if
  either cannot separate it; averaged over all pairs.
- *Pair Rank Brier Score*: for each model pair the benchmark states a probability that one model ranks above
  the other; the score is the mean squared error of that probability against the ground-truth order
  (lower is better, 0.25 is a coin flip). We take the probability from the bootstrap samples (the share of
  replicates in which model i scores above model j) and the ground truth from the reference's point ratings.

The bootstrap replicates come from ``ratings.leaderboard.rate`` (battles resampled with replacement, as
Chatbot Arena does); this module only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class RankingLike:
    """A leaderboard as the metrics need it: point ratings, optional CIs, optional bootstrap samples."""

    rating: pd.Series  # index: model
    ci: pd.DataFrame | None = None  # index: model; ci_low, ci_high
    samples: pd.DataFrame | None = None  # rows: replicates; columns: models


def intervals(samples: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Percentile intervals per model: columns ci_low, ci_high, indexed by model."""
    tail = (1.0 - level) / 2.0
    return pd.DataFrame({"ci_low": samples.quantile(tail), "ci_high": samples.quantile(1.0 - tail)})


def _pairs(models: list[str]) -> list[tuple[str, str]]:
    return list(combinations(sorted(models), 2))


def separated(ci: pd.DataFrame, i: str, j: str) -> int:
    """+1 if i's interval lies wholly above j's, -1 if wholly below, 0 if they overlap."""
    if ci.at[i, "ci_low"] > ci.at[j, "ci_high"]:
        return 1
    if ci.at[j, "ci_low"] > ci.at[i, "ci_high"]:
        return -1
    return 0


def separability(ci: pd.DataFrame) -> float:
    """Separability with Confidence (Li et al. 2024, sec. 3): share of model pairs whose CIs do not overlap."""
    pairs = _pairs(list(ci.index))
    if not pairs:
        return float("nan")
    return float(np.mean([separated(ci, i, j) != 0 for i, j in pairs]))


def confidence_agreement(reference_ci: pd.DataFrame, candidate_ci: pd.DataFrame) -> float:
    """Agreement with Confidence Interval (Li et al. 2024, sec. 3) over the models both rank."""
    models = sorted(set(reference_ci.index) & set(candidate_ci.index))
    pairs = _pairs(models)
    if not pairs:
        return float("nan")
    scores = []
    for i, j in pairs:
        r, c = separated(reference_ci, i, j), separated(candidate_ci, i, j)
        scores.append(0 if r == 0 or c == 0 else (1 if r == c else -1))
    return float(np.mean(scores))


def win_probabilities(candidate: RankingLike, i: str, j: str) -> float:
    """P(i ranks above j) by the candidate: from bootstrap samples, else a normal reading of the CIs, else
    the point order (a certain 0/1, which the Brier score then punishes fully when wrong)."""
    if candidate.samples is not None:
        diff = candidate.samples[i].to_numpy() - candidate.samples[j].to_numpy()
        return float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))
    diff = candidate.rating[i] - candidate.rating[j]
    if candidate.ci is not None:
        # 95% CI half-width / 1.96 = standard error under a normal approximation.
        se = (candidate.ci["ci_high"] - candidate.ci["ci_low"]) / (2 * 1.959964)
        scale = float(np.hypot(se[i], se[j]))
        if scale > 0:
            return float(stats.norm.cdf(diff / scale))
    return 1.0 if diff > 0 else (0.0 if diff < 0 else 0.5)


def pair_rank_brier(reference_rating: pd.Series, candidate: RankingLike) -> float:
    """Pair Rank Brier Score (Li et al. 2024, sec. 3) over the model pairs both rank whose reference ratings
    differ; the reference's order is the ground truth."""
    models = sorted(set(reference_rating.index) & set(candidate.rating.index))
    errors = []
    for i, j in _pairs(models):
        if reference_rating[i] == reference_rating[j]:
            continue
        truth = 1.0 if reference_rating[i] > reference_rating[j] else 0.0
        errors.append((win_probabilities(candidate, i, j) - truth) ** 2)
    return float(np.mean(errors)) if errors else float("nan")
