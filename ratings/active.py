"""Active sampling: which pair to show next so that each vote shrinks the ranking's uncertainty the most.

The Chatbot Arena paper (Chiang et al. 2024, sec. 5) proposes sampling a pair with probability growing
with the reduction of its confidence interval that one more vote brings. Here the reduction is that of
the uncertainty of the *ranking*, computed exactly for one vote by a rank-one update of the covariance
(Sherman-Morrison): a vote on pair (i, j) adds v z z^T to the information (z = e_i - e_j,
v = p_ij (1 - p_ij)), which lowers the variance of any contrast c^T theta by

    v (c^T S z)^2 / (1 + v z^T S z),      S = the current covariance of theta.

A leaderboard is certain enough when either of two goals is met: every model is separated from its
neighbour in the order (|gap| / se above the critical value ``critical``), or every model's 95% interval
is narrower than +-``target_ci_elo``. Each goal is a set of contrasts c_t with a tolerated variance tau_t^2:
- separation: the difference of each model and its ``neighbours`` next models, tau = max(|gap|,
  resolution) / critical (a pair closer than ``resolution`` counts as that far apart, else a near-tie would
  absorb every vote);
- precision: each model's rating, tau = target_ci_elo / 1.96.
r_t = var_t / tau_t^2 is how far contrast t is from done (1 = done). The policy works on the goal that is
nearer (the smaller max r_t; separation only, without a precision target) and scores each pair by the
drop of sum_t r_t^q its vote brings (q = ``focus``: the larger, the more the worst contrasts dominate,
approaching the drop of the max). A pair's probability is proportional to its score, mixed with a uniform
``floor`` so that every pair keeps being sampled (the ratings stay checkable and the covariance honest),
and pairs with a model that has fewer than ``new_model_battles`` battles (or none) are boosted
``new_model_boost`` times.

:func:`pair_probabilities` is pure and takes a few milliseconds for 100 models: the arena recomputes it
off the request path whenever the counts move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ratings import analytic
from ratings.bt import ELO_SCALE, sigmoid


@dataclass(frozen=True)
class SamplingPolicy:
    floor: float = 0.05  # share of the probability spread evenly over all pairs
    neighbours: int = 1  # separation targets: each model against this many models below it in the order
    resolution_elo: float = 5.0  # pairs closer than this count as this far apart
    critical: float = 2.5  # |gap| / se that separates a pair (about the simultaneous max-t for 10-100 models)
    target_ci_elo: float | None = None  # precision goal: every 95% CI narrower than +- this (None: none)
    focus: float = 4.0  # exponent q of the per-contrast remaining uncertainty
    new_model_battles: int = 200  # a model with fewer battles than this is new
    new_model_boost: float = 5.0  # its pairs' weight is multiplied by this

    def __post_init__(self) -> None:
        if not 0.0 <= self.floor <= 1.0:
            raise ValueError(f"the uniform floor must be in [0, 1], got {self.floor}")
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {self.neighbours}")
        if self.resolution_elo <= 0 or self.critical <= 0 or self.focus < 1 or self.new_model_boost < 1:
            raise ValueError("resolution_elo > 0, critical > 0, focus >= 1 and new_model_boost >= 1 are required")
        if self.target_ci_elo is not None and self.target_ci_elo <= 0:
            raise ValueError(f"target_ci_elo must be positive, got {self.target_ci_elo}")


def bt_covariance(wins: np.ndarray, ties: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """[M, M] sandwich covariance of half-ties BT log-strengths from dense win/tie matrices (a vote store's
    counts), the same estimator as ratings.analytic.sandwich_cov_half on cells."""
    p = sigmoid(theta[:, None] - theta[None, :])
    n = wins + wins.T + ties
    info = analytic._laplacian(n * p * (1.0 - p))
    # Per pair, sum over its votes of (y - p)^2 from the row model's side (wins, losses, ties).
    meat_w = wins * (1.0 - p) ** 2 + wins.T * p**2 + ties * (0.5 - p) ** 2
    a_inv = analytic._pinv_centred(info)
    return a_inv @ analytic._laplacian(meat_w) @ a_inv


def _contrasts(theta: np.ndarray, cov: np.ndarray, policy: SamplingPolicy
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The nearer goal's contrasts as (i, j, tau^2) (j = -1: model i's own rating), and the goal's name."""
    m = len(theta)
    order = np.argsort(-theta, kind="stable")
    k_max = min(policy.neighbours, m - 1)
    i = np.concatenate([order[:-k] for k in range(1, k_max + 1)])
    j = np.concatenate([order[k:] for k in range(1, k_max + 1)])
    gap = np.maximum(np.abs(theta[i] - theta[j]), policy.resolution_elo / ELO_SCALE)
    tau2_sep = (gap / policy.critical) ** 2
    var_sep = cov[i, i] + cov[j, j] - 2.0 * cov[i, j]
    if policy.target_ci_elo is not None:
        tau2_own = np.full(m, (policy.target_ci_elo / analytic.Z95 / ELO_SCALE) ** 2)
        if (np.diag(cov) / tau2_own).max() < (var_sep / tau2_sep).max():
            return np.arange(m), np.full(m, -1), tau2_own, "precision"
    return i, j, tau2_sep, "separation"


def variance_reduction(theta: np.ndarray, cov: np.ndarray, policy: SamplingPolicy = SamplingPolicy()) -> np.ndarray:
    """[M, M] symmetric: how much one more vote on each pair lowers sum_t r_t^q of the nearer goal."""
    m = len(theta)
    ti, tj, tau2, _ = _contrasts(theta, cov, policy)
    pi, pj = np.triu_indices(m, 1)
    sz = cov[:, pi] - cov[:, pj]  # [M, P]: S z for every candidate pair
    cols = np.arange(len(pi))
    zsz = sz[pi, cols] - sz[pj, cols]
    p = sigmoid(theta[pi] - theta[pj])
    v = p * (1.0 - p)
    # c^T S z for every contrast c and pair z: rows of S z, differenced for pair contrasts.
    csz = sz[ti] - np.where((tj >= 0)[:, None], sz[np.maximum(tj, 0)], 0.0)
    var = np.where(tj >= 0, cov[ti, ti] + cov[np.maximum(tj, 0), np.maximum(tj, 0)]
                   - 2.0 * cov[ti, np.maximum(tj, 0)], cov[ti, ti])
    r = np.maximum(var, 0.0) / tau2
    drop = v / (1.0 + v * zsz) * csz**2 / tau2[:, None]  # [T, P]: the drop of r_t
    q = policy.focus
    # Exact drop of r^q for each contrast (not its derivative): a vote can take a contrast past done.
    score = (r[:, None] ** q - np.maximum(r[:, None] - drop, 0.0) ** q).sum(axis=0)
    out = np.zeros((m, m))
    out[pi, pj] = out[pj, pi] = np.maximum(score, 0.0)
    return out


def pair_probabilities(battles: np.ndarray, theta: np.ndarray, cov: np.ndarray | None,
                       policy: SamplingPolicy = SamplingPolicy()) -> np.ndarray:
    """[M, M] symmetric probability of showing each pair next (the upper triangle sums to 1).

    ``battles``: [M, M] symmetric battle counts per pair; ``theta``: current log-strengths (0 for a model
    with no battles); ``cov``: their covariance (rows of NaN, or None, where a model has no rating yet).
    A pair whose covariance is unknown gets the largest known reduction, then the new-model boost.
    """
    m = len(theta)
    if m < 2:
        raise ValueError("pair probabilities need at least two models")
    played = np.asarray(battles, dtype=float).sum(axis=1)
    pi, pj = np.triu_indices(m, 1)
    known = np.zeros(m, dtype=bool) if cov is None else ~np.isnan(np.asarray(cov)).any(axis=1)
    gain = np.zeros(len(pi))
    if known.sum() >= 2:
        idx = np.flatnonzero(known)
        sub = variance_reduction(theta[idx], np.asarray(cov)[np.ix_(idx, idx)], policy)
        full = np.zeros((m, m))
        full[np.ix_(idx, idx)] = sub
        gain = full[pi, pj]
    top = gain.max() if gain.size and gain.max() > 0 else 1.0
    unknown = ~(known[pi] & known[pj])
    gain = np.where(unknown, top, gain)
    new = played < policy.new_model_battles
    gain = gain * np.where(new[pi] | new[pj], policy.new_model_boost, 1.0)
    weight = gain
    total = weight.sum()
    prob = (1.0 - policy.floor) * (weight / total if total > 0 else np.full(len(pi), 1.0 / len(pi)))
    prob = prob + policy.floor / len(pi)
    out = np.zeros((m, m))
    out[pi, pj] = out[pj, pi] = prob
    return out


def probability_table(models: list[str], probs: np.ndarray) -> pd.DataFrame:
    """One row per unordered pair: model_a, model_b, probability; most likely first."""
    pi, pj = np.triu_indices(len(models), 1)
    names = np.asarray(models, dtype=object)
    table = pd.DataFrame({"model_a": names[pi], "model_b": names[pj], "probability": probs[pi, pj]})
    return table.sort_values(["probability", "model_a", "model_b"], ascending=[False, True, True],
                             ignore_index=True)


def arena_pair_probabilities(battles: pd.DataFrame, models: list[str],
                             policy: SamplingPolicy = SamplingPolicy()) -> dict[tuple[str, str], float]:
    """What the arena's sampler needs: the probability of each unordered pair (sorted names) of ``models``
    from the votes counted so far. Models without votes are new (boosted); votes of other models are
    ignored. The ratings and covariance come from one analytic fit of the counted votes."""
    from ratings.encode import aggregate, cell_matrices, encode
    from ratings.leaderboard import rate

    names = sorted(models)
    index = {m: i for i, m in enumerate(names)}
    m = len(names)
    counts = np.zeros((m, m))
    theta = np.zeros(m)
    cov = np.full((m, m), np.nan)
    known = battles[battles["model_a"].isin(index) & battles["model_b"].isin(index)] if len(battles) else battles
    if len(known):
        enc = encode(known)
        wins, ties = cell_matrices(aggregate(enc))
        idx = np.array([index[x] for x in enc.models])
        counts[np.ix_(idx, idx)] = wins + wins.T + ties
        try:
            res = rate(known, ci="analytic", cluster_by="none")
        except ValueError:
            res = None
        if res is not None and res.cov is not None and len(res.components) == 1:
            order = np.array([index[x] for x in res.models])
            theta[order] = res.theta
            cov[np.ix_(order, order)] = res.cov
    probs = pair_probabilities(counts, theta, cov, policy)
    pi, pj = np.triu_indices(m, 1)
    return {(names[i], names[j]): float(probs[i, j]) for i, j in zip(pi, pj, strict=True)}
