"""How well a ranking separates models, and how well it agrees with a reference ranking, with confidence.

Definitions follow Li et al. 2024, "From Crowdsourced Data to High-Quality Benchmarks: Arena-Hard and
BenchBuilder Pipeline" (arXiv:2406.11939), sec. 3, as the authors state them in the Arena-Hard blog post
(lm-sys/lm-sys.github.io, blog/2024-04-19-arena-hard.md) and compute them in their statistics notebook
(lmarena/arena-hard-auto, notebook/benchmark_statistics.ipynb):

- *Separability with Confidence*: "the percentage of model pairs which have non-overlapping confidence
  intervals of the benchmark scores". Two intervals overlap when they share more than a point
  (``max(0, min(hi_a, hi_b) - max(lo_a, lo_b)) > 0`` in the notebook); touching intervals are separated.
- *Agreement with Confidence Interval* of a candidate A with a reference B: "For a given model pair (which B
  can separate with confidence): if A can confidently separate the 2 given models, +1.0 if the rank order
  agrees with B, -1.0 if the rank order disagrees with B; +0.0 if A cannot separate the 2 given models with
  confidence", averaged over the pairs B separates (the notebook skips a pair when B's intervals overlap).
- *Pair Rank Brier Score*: for every model pair, the candidate's probability that one model ranks above the
  other, ``norm(loc=a_mean - b_mean, scale=sqrt(a_var + b_var)).cdf(0)`` with mean and (population)
  variance of each model's bootstrap replicates, scored with ``brier_score_loss`` against the reference's
  point-rating order (``int(rating[a] < rating[b])``), over all pairs, separable by the reference or not.
  Lower is better; 0.25 is a coin flip.

Deviations, where the notebook's behaviour is arbitrary: two degenerate intervals at the same point are
not separated; pairs the reference rates exactly equal are left out of the Brier score; a candidate with
intervals but no replicates gets each model's variance from its 95% interval under a normal approximation.

The bootstrap replicates come from ``ratings.leaderboard.rate`` (battles resampled with replacement, as
Chatbot Arena does); this module only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))


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
    """+1 if i's interval lies wholly above j's, -1 if wholly below, 0 if they overlap (share more than a
    point, or are the same single point)."""
    lo_i, hi_i, lo_j, hi_j = ci.at[i, "ci_low"], ci.at[i, "ci_high"], ci.at[j, "ci_low"], ci.at[j, "ci_high"]
    if lo_i >= hi_j and hi_i > lo_j:
        return 1
    if lo_j >= hi_i and hi_j > lo_i:
        return -1
    return 0


def separability(ci: pd.DataFrame) -> float:
    """Separability with Confidence (Li et al. 2024, sec. 3): share of model pairs whose CIs do not overlap."""
    pairs = _pairs(list(ci.index))
    if not pairs:
        return float("nan")
    return float(np.mean([separated(ci, i, j) != 0 for i, j in pairs]))


def confidence_agreement(reference_ci: pd.DataFrame, candidate_ci: pd.DataFrame) -> float:
    """Agreement with Confidence Interval (Li et al. 2024, sec. 3) over the model pairs both rank and the
    reference separates: +1 same order, -1 opposite order, 0 if the candidate cannot separate the pair.
    NaN when the reference separates no pair."""
    models = sorted(set(reference_ci.index) & set(candidate_ci.index))
    scores = []
    for i, j in _pairs(models):
        r = separated(reference_ci, i, j)
        if r == 0:
            continue
        c = separated(candidate_ci, i, j)
        scores.append(0 if c == 0 else (1 if r == c else -1))
    return float(np.mean(scores)) if scores else float("nan")


def win_probabilities(candidate: RankingLike, i: str, j: str) -> float:
    """P(i ranks above j) by the candidate: Phi((mean_i - mean_j) / sqrt(var_i + var_j)) over its bootstrap
    replicates (Li et al. 2024); without replicates the variances come from the 95% CIs, without CIs the
    point order is taken as certain (0 or 1, which the Brier score then punishes fully when wrong)."""
    if candidate.samples is not None:
        s_i, s_j = candidate.samples[i], candidate.samples[j]
        diff = float(s_i.mean() - s_j.mean())
        var = float(s_i.var(ddof=0) + s_j.var(ddof=0))
    else:
        diff = float(candidate.rating[i] - candidate.rating[j])
        var = 0.0
        if candidate.ci is not None:
            se = (candidate.ci["ci_high"] - candidate.ci["ci_low"]) / (2 * Z95)
            var = float(se[i] ** 2 + se[j] ** 2)
    if var > 0:
        return float(stats.norm.cdf(diff / np.sqrt(var)))
    return 1.0 if diff > 0 else (0.0 if diff < 0 else 0.5)


def pair_rank_brier(reference_rating: pd.Series, candidate: RankingLike) -> float:
    """Pair Rank Brier Score (Li et al. 2024, sec. 3): mean of (P_candidate(i above j) - 1[reference rates i
    above j])^2 over the model pairs both rank (pairs the reference rates exactly equal left out)."""
    models = sorted(set(reference_rating.index) & set(candidate.rating.index))
    errors = []
    for i, j in _pairs(models):
        if reference_rating[i] == reference_rating[j]:
            continue
        truth = 1.0 if reference_rating[i] > reference_rating[j] else 0.0
        errors.append((win_probabilities(candidate, i, j) - truth) ** 2)
    return float(np.mean(errors)) if errors else float("nan")
