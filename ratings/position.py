"""Position bias of human votes: does the answer shown first (left, model_a) win more than its strength says?

Bradley-Terry with a first-position advantage (the "home advantage" of sports ratings; Agresti 2013,
Categorical Data Analysis, sec. 11.6): P(model_a wins) = sigma(theta_a - theta_b + h), ties half a win each
way as in the leaderboard. h = 0 is no bias; h > 0 favours the first-shown answer. Because an arena shows
each pair in both orders, h is identified apart from the strengths. The 95% interval of h is from the
sandwich (half-ties is not the model that made the ties, so the information alone would be too narrow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ratings import analytic, graph
from ratings.bt import ELO_SCALE, fit_bt, half_wins, sigmoid, with_prior
from ratings.encode import A_WINS, B_WINS, aggregate, cell_matrices, encode


@dataclass(frozen=True)
class PositionBias:
    advantage: float  # h, log-odds in favour of the first-shown answer
    se: float
    ci_low: float
    ci_high: float
    n_battles: int
    first_win_share: float  # raw share of decisive votes won by the first-shown answer
    models: list[str]
    theta: np.ndarray  # [M] strengths fitted with h, mean zero

    @property
    def advantage_elo(self) -> float:
        """h on the Elo scale: the rating points the first position is worth."""
        return self.advantage * ELO_SCALE

    @property
    def first_win_probability(self) -> tuple[float, float, float]:
        """P(first-shown wins) between two equal models, with its 95% interval."""
        return float(sigmoid(self.advantage)), float(sigmoid(self.ci_low)), float(sigmoid(self.ci_high))

    def summary(self) -> str:
        p, lo, hi = self.first_win_probability
        return (f"first-shown (model_a) advantage {self.advantage_elo:+.1f} Elo (95% CI {self.ci_low * ELO_SCALE:+.1f} "
                f"to {self.ci_high * ELO_SCALE:+.1f}); between equal models it wins {100 * p:.1f}% "
                f"({100 * lo:.1f}-{100 * hi:.1f}%)")


def position_bias(battles: pd.DataFrame, *, prior: float = 1.0, max_iter: int = 100,
                  tol: float = 1e-10) -> PositionBias:
    """Fit strengths and the first-position advantage h by Newton's method on ordered-pair counts.

    ``prior`` virtual battles per compared pair (split evenly, in both orders) only when the plain MLE
    does not exist.
    """
    enc = encode(battles)
    m = enc.n_models
    if m < 2:
        raise ValueError("position bias needs battles between at least two models")
    wins, ties = cell_matrices(aggregate(enc))
    if len(graph.components(wins + wins.T + ties, enc.models)) > 1:
        raise ValueError("the comparison graph is not connected; measure each component on its own")
    use = 0.0 if graph.mle_exists(wins, ties) else prior
    # Ordered (first, second, outcome) cells: y = 1, 0, 0.5 from the first-shown side.
    out3 = np.where(enc.outcome == A_WINS, 0, np.where(enc.outcome == B_WINS, 1, 2))
    key = (enc.a * m + enc.b) * 3 + out3
    counts = np.bincount(key, minlength=m * m * 3)
    nz = np.flatnonzero(counts)
    pair, out = np.divmod(nz, 3)
    first, second = np.divmod(pair, m)
    n = counts[nz].astype(float)
    y = np.array([1.0, 0.0, 0.5])[out]
    if use:
        played = np.flatnonzero(np.triu((wins + wins.T + ties) > 0, 1).ravel())
        pi, pj = np.divmod(played, m)
        # Half a virtual tie in each order: information without moving h.
        first = np.concatenate([first, pi, pj])
        second = np.concatenate([second, pj, pi])
        y = np.concatenate([y, np.full(2 * len(pi), 0.5)])
        n = np.concatenate([n, np.full(2 * len(pi), use / 2.0)])
    theta = fit_bt(half_wins(with_prior(wins, ties, use) if use else wins, ties))
    h = 0.0
    for _ in range(max_iter):
        grad, info, _ = _parts(first, second, y, n, theta, h, m)
        info[:m, :m] += 1.0
        step = np.linalg.solve(info, grad)
        big = float(np.abs(step).max())
        step *= min(1.0, 2.0 / max(big, 1e-300))
        theta = theta + step[:m]
        h += float(step[m])
        if big < tol:
            break
    theta -= theta.mean()
    _, info, meat = _parts(first, second, y, n, theta, h, m, n_real=len(nz))
    info[:m, :m] += 1.0
    inv = np.linalg.inv(info)
    cov = inv @ meat @ inv
    se = float(np.sqrt(max(cov[m, m], 0.0)))
    dec = enc.outcome <= B_WINS
    share = float((enc.outcome[dec] == A_WINS).mean()) if dec.any() else float("nan")
    return PositionBias(advantage=h, se=se, ci_low=h - analytic.Z95 * se, ci_high=h + analytic.Z95 * se,
                        n_battles=len(enc), first_win_share=share, models=enc.models, theta=theta)


def _parts(first: np.ndarray, second: np.ndarray, y: np.ndarray, n: np.ndarray, theta: np.ndarray, h: float, m: int,
           n_real: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient, information and sandwich meat of the weighted logistic model on z = [e_a - e_b, 1].

    The meat uses only the real cells (the first ``n_real``): virtual battles add no noise.
    """
    p = sigmoid(theta[first] - theta[second] + h)
    r = n * (y - p)
    grad = np.concatenate([np.bincount(first, r, m) - np.bincount(second, r, m), [r.sum()]])
    info = _outer(first, second, n * p * (1.0 - p), m)
    k = len(first) if n_real is None else n_real
    meat = _outer(first[:k], second[:k], (n * (y - p) ** 2)[:k], m)
    return grad, info, meat


def _outer(first: np.ndarray, second: np.ndarray, v: np.ndarray, m: int) -> np.ndarray:
    """sum_k v_k z_k z_k^T for z_k = [e_first - e_second, 1]."""
    pair = np.bincount(first * m + second, v, m * m).reshape(m, m)
    pair = pair + pair.T
    out = np.zeros((m + 1, m + 1))
    out[:m, :m] = np.diag(pair.sum(axis=1)) - pair
    cross = np.bincount(first, v, m) - np.bincount(second, v, m)
    out[:m, m] = out[m, :m] = cross
    out[m, m] = v.sum()
    return out
