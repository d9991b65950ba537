"""Rank intervals, tiers and votes needed: what a leaderboard can and cannot tell apart.

- Rank interval of a model: the equal-tailed 95% range of the ranks it takes across bootstrap rounds (or
  across draws from the normal approximation N(rating, cov) when only a covariance is at hand). These are
  marginal intervals, one per model.
- Tiers: the models in point order, cut wherever an adjacent pair is separated under *simultaneous* 95%
  confidence over all M - 1 adjacent pairs. The test is a max-t (Westfall & Young 1993; Hothorn, Bretz &
  Westfall 2008, "Simultaneous inference in general parametric models"): a pair is separated when its
  t = diff / se exceeds the 95% quantile of max_i |T_i| over the adjacent differences, taking their
  correlation into account (neighbouring differences share a model, so they are negatively correlated).
  One test per pair at 95% would call about 5% of truly tied neighbours separated; this does not, across
  the whole board. A tier is a chain: models in one tier cannot be told from their neighbours, though
  the two ends of a long tier may be.
- Votes needed for an adjacent pair: how many more votes, at the current mix of pairs, until its t reaches
  the critical value, under the approximation that every standard error scales as 1 / sqrt(n) (more votes
  of the same mix shrink the covariance as n / (n + extra)) and that the point difference stays where it is.
  That gives extra = n * ((c * se / diff)^2 - 1). A pair with no difference never separates (infinite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ratings.bootstrap import CI_LEVEL
from ratings.bt import ELO_SCALE

DEFAULT_DRAWS = 20_000


@dataclass
class TierReport:
    """``table`` is in point order (best first); ``pairs`` has one row per adjacent pair of it."""

    table: pd.DataFrame  # model, rating, rank, rank_low, rank_high, tier
    pairs: pd.DataFrame  # upper, lower, diff, se, t, separated, votes_needed
    critical: float  # simultaneous critical value of max |t| over the adjacent pairs
    level: float
    method: str  # "bootstrap max-t" | "normal max-t"
    n_tiers: int
    notes: list[str] = field(default_factory=list)


def competition_ranks(ratings: np.ndarray) -> np.ndarray:
    """Per row of [R, M] ratings, 1 + the number of strictly higher ratings (ties share a rank)."""
    r = np.atleast_2d(ratings)
    m = r.shape[1]
    chunk = max(1, 4_000_000 // max(m * m, 1))  # [chunk, M, M] comparisons stay near 4 MB
    return np.concatenate([1 + (part[:, None, :] > part[:, :, None]).sum(axis=-1)
                           for part in np.array_split(r, max(1, -(-len(r) // chunk)))])


def simulate_ratings(rating: np.ndarray, cov: np.ndarray, draws: int = DEFAULT_DRAWS, seed: int = 0) -> np.ndarray:
    """[draws, M] from N(rating, cov): stand-in bootstrap rounds when only a covariance is known."""
    rng = np.random.default_rng(seed)
    # eigh, not Cholesky: a covariance of mean-zero ratings is singular along the all-ones direction.
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2.0)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    return rating + rng.standard_normal((draws, len(rating))) @ root.T


def rank_intervals(samples: np.ndarray, level: float = CI_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Per model (column of [R, M] samples), the equal-tailed ``level`` range of its rank across rounds."""
    ranks = competition_ranks(samples)
    tail = (1.0 - level) / 2.0
    lo = np.quantile(ranks, tail, axis=0, method="lower")
    hi = np.quantile(ranks, 1.0 - tail, axis=0, method="higher")
    return lo.astype(np.int64), hi.astype(np.int64)


def _adjacent(order: np.ndarray, m: int) -> np.ndarray:
    """[(M-1), M] contrast matrix: row i is e_order[i] - e_order[i+1]."""
    contrast = np.zeros((m - 1, m))
    contrast[np.arange(m - 1), order[:-1]] = 1.0
    contrast[np.arange(m - 1), order[1:]] = -1.0
    return contrast


def max_t_critical(diff_samples: np.ndarray, level: float = CI_LEVEL) -> float:
    """The ``level`` quantile of max_i |T_i| over rounds of [R, K] studentised differences."""
    return float(np.quantile(np.abs(diff_samples).max(axis=1), level))


def votes_needed(diff: np.ndarray, se: np.ndarray, n_votes: int, critical: float) -> np.ndarray:
    """More votes at the current mix until |diff| / se reaches ``critical`` (SE ~ 1 / sqrt(n)): 0 when
    already separated, inf when diff is 0. Float array (inf does not fit an integer)."""
    diff = np.abs(np.asarray(diff, dtype=float))
    se = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = (critical * se / diff) ** 2
    extra = np.where(diff > 0, np.ceil(n_votes * np.maximum(factor - 1.0, 0.0)), np.inf)
    return np.where(se > 0, extra, np.where(diff > 0, 0.0, np.inf))


def tiers(models: list[str], rating: np.ndarray, *, samples: np.ndarray | None = None,
          cov: np.ndarray | None = None, n_votes: int | None = None, level: float = CI_LEVEL, seed: int = 0,
          draws: int = DEFAULT_DRAWS) -> TierReport:
    """Rank intervals, simultaneous tiers and votes needed for one connected leaderboard.

    ``rating`` [M] point ratings; ``samples`` [R, M] bootstrap rounds of them, or ``cov`` [M, M] their
    covariance, in the same units (Elo ratings with Elo^2 covariance: scale a log-strength covariance by
    ratings.bt.ELO_SCALE ** 2). With samples the max-t quantile is the bootstrap one (rounds centred on the
    point difference); with cov it comes from ``draws`` seeded normal draws. ``n_votes``: battles behind the
    fit, for votes needed (left out when None).
    """
    rating = np.asarray(rating, dtype=float)
    m = len(rating)
    if len(models) != m:
        raise ValueError(f"{len(models)} model names for {m} ratings")
    if (samples is None) == (cov is None):
        raise ValueError("tiers need either bootstrap samples or a covariance (exactly one)")
    notes: list[str] = []
    order = np.lexsort((np.asarray(models, dtype=object), -rating))
    if samples is not None:
        samples = np.asarray(samples, dtype=float)
        method = "bootstrap max-t"
        sim = samples
    else:
        method = "normal max-t"
        sim = simulate_ratings(rating, np.asarray(cov, dtype=float), draws=draws, seed=seed)
    rank_lo, rank_hi = rank_intervals(sim, level)
    point_rank = competition_ranks(rating)[0]
    table = pd.DataFrame({"model": np.asarray(models, dtype=object)[order], "rating": rating[order],
                          "rank": point_rank[order], "rank_low": rank_lo[order], "rank_high": rank_hi[order]})
    if m < 2:
        table["tier"] = 1
        empty = pd.DataFrame(columns=["upper", "lower", "diff", "se", "t", "separated", "votes_needed"])
        return TierReport(table=table, pairs=empty, critical=float("nan"), level=level, method=method, n_tiers=1,
                          notes=notes)
    contrast = _adjacent(order, m)
    diff = contrast @ rating
    if samples is not None:
        d_rounds = sim @ contrast.T
        se = d_rounds.std(axis=0, ddof=1)
        centred = d_rounds - diff
    else:
        var = np.einsum("ij,jk,ik->i", contrast, np.asarray(cov, dtype=float), contrast)
        se = np.sqrt(np.maximum(var, 0.0))
        centred = sim @ contrast.T - diff
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, diff / se, np.where(diff > 0, np.inf, 0.0))
        studentised = np.where(se > 0, centred / se, 0.0)
    critical = max_t_critical(studentised, level)
    separated = t > critical
    tier = np.concatenate([[1], 1 + np.cumsum(separated)])
    table["tier"] = tier
    pairs = pd.DataFrame({"upper": table["model"].to_numpy()[:-1], "lower": table["model"].to_numpy()[1:],
                          "diff": diff, "se": se, "t": t, "separated": separated})
    if n_votes is not None:
        pairs["votes_needed"] = votes_needed(diff, se, int(n_votes), critical)
        never = int(np.isinf(pairs["votes_needed"]).sum())
        if never:
            notes.append(f"{never} adjacent pair(s) have exactly equal ratings: no number of votes at this mix "
                         "separates them")
    single = 1.0 - (1.0 - level) / 2.0
    notes.append(f"tiers: simultaneous {level:.0%} max-t over {m - 1} adjacent pairs, critical |t| = "
                 f"{critical:.2f} (one test per pair would use {_normal_quantile(single):.2f})")
    return TierReport(table=table, pairs=pairs, critical=critical, level=level, method=method,
                      n_tiers=int(tier[-1]), notes=notes)


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return float(NormalDist().inv_cdf(p)) if 0 < p < 1 else math.nan


def leaderboard_tiers(res: Any, *, level: float = CI_LEVEL, seed: int = 0) -> TierReport | None:
    """Tiers of a :class:`ratings.leaderboard.RatingResult` from its own uncertainty (bootstrap rounds, else
    the analytic covariance); None when it has none (``ci="none"``) or its comparison graph is not connected
    (models of two components cannot be told apart at all)."""
    if len(res.components) > 1:
        return None
    models = list(res.models)
    rating = res.table.set_index("model").loc[models, "rating"].to_numpy(dtype=float)
    if res.samples is not None:
        samples = res.samples[models].to_numpy(dtype=float)
        return tiers(models, rating, samples=samples, n_votes=res.n_battles, level=level, seed=seed)
    if res.cov is not None and np.isfinite(res.cov).all():
        return tiers(models, rating, cov=np.asarray(res.cov) * ELO_SCALE ** 2, n_votes=res.n_battles, level=level,
                     seed=seed)
    return None


def with_tiers(res: Any, report: TierReport | None) -> pd.DataFrame:
    """The leaderboard table with rank_low, rank_high and tier beside rank (unchanged when no report)."""
    if report is None:
        return res.table
    extra = report.table.set_index("model")[["rank_low", "rank_high", "tier"]]
    table = res.table.join(extra, on="model")
    cols = list(res.table.columns)
    at = cols.index("rank_ub") + 1 if "rank_ub" in cols else len(cols)
    return table[[*cols[:at], "rank_low", "rank_high", "tier", *cols[at:]]]
