"""Bradley-Terry with ties counted as half a win each way (what Chatbot Arena publishes).

The point estimate is Newton's method from equal strengths on the aggregated [winner, loser] matrix, with
choix's iterative Luce spectral ranking (ILSR) as the start only when that does not converge. The
bootstrap fits many resampled matrices at once with the same Newton method batched over a [rounds, models]
array (``newton_half``), started from the point estimate: one optimiser pass for all rounds instead of one
optimiser call per round.
"""

from __future__ import annotations

import math

import numpy as np

from ratings._threads import single_blas_thread

ELO_BASE = 1000.0
ELO_SCALE = 400.0 / math.log(10.0)  # theta is natural log-odds; Elo is 400 * log10-odds
MAX_STEP = 2.0  # natural-log units per Newton step: keeps a near-separable round from overshooting
START_ITER = 100  # Newton steps from equal strengths before falling back to choix's ILSR as the start


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, overflow-free (tanh form); scipy.special is not worth its import time here."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def to_elo(theta: np.ndarray) -> np.ndarray:
    """Log-strengths (mean zero) to the Elo scale: 1000 + 400 * log10-odds."""
    return ELO_BASE + ELO_SCALE * theta


def anchor_shift(rating: np.ndarray, models: list[str], anchor: tuple[str, float] | None) -> np.ndarray:
    """Shift ratings (last axis = models) so that the anchor model gets exactly its given rating."""
    if anchor is None:
        return rating
    name, value = anchor
    if name not in models:
        raise ValueError(f"anchor model {name!r} is not among the rated models ({', '.join(models)})")
    k = models.index(name)
    return rating + (value - rating[..., k : k + 1])


def half_wins(wins: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """[winner, loser] counts with each tie as half a win for both sides."""
    return wins + ties / 2.0


def with_prior(wins: np.ndarray, ties: np.ndarray, prior: float) -> np.ndarray:
    """Add ``prior`` virtual battles to every compared pair, split evenly (a virtual tie).

    This is the small prior that keeps a model that never lost (or never won) finite. It pulls every
    pair's log-odds towards zero by the weight of ``prior`` battles, which is negligible next to real
    counts but decides the rating of an unbeaten model.
    """
    played = (wins + wins.swapaxes(-1, -2) + ties) > 0
    return wins + played * (prior / 2.0)


def with_prior_ties(wins: np.ndarray, ties: np.ndarray, prior: float) -> np.ndarray:
    """The tie matrix with ``prior`` virtual ties added to every compared pair (Davidson's fit).

    Davidson's model has a tie outcome of its own: the virtual tie the prior stands for must be a tie
    there, not half a win each way, which it would read as decisive games and so pull nu down.
    """
    played = (wins + wins.swapaxes(-1, -2) + ties) > 0
    return ties + played * prior


def fit_bt(wins_half: np.ndarray) -> np.ndarray:
    """Maximum-likelihood log-strengths (mean zero) on a [winner, loser] matrix with fractional counts.

    The caller guarantees the MLE exists (strongly connected, or a prior added). Newton's method from
    equal strengths finds it: the log-likelihood is concave and each step solves one M x M system, so it
    converges in under ten steps on arena data (identical to choix's ILSR to 1e-15). Only if it does not
    converge within START_ITER steps (extreme strengths, where the capped steps crawl) does choix's ILSR
    supply the start; importing choix costs ~0.4 s (it pulls in scipy.stats), so it happens only then.
    """
    m = wins_half.shape[0]
    theta, converged = _newton_half(wins_half[None], np.zeros((1, m)), max_iter=START_ITER, tol=1e-10)
    if converged:
        return theta[0]
    import choix

    start = choix.ilsr_pairwise_dense(wins_half, alpha=0.0, max_iter=10_000, tol=1e-9)
    theta, converged = _newton_half(wins_half[None], (start - start.mean())[None], max_iter=100, tol=1e-10)
    if not converged:  # pragma: no cover - Newton from the ILSR optimum has always converged in tests
        raise ArithmeticError(f"Bradley-Terry fit did not converge on {m} models")
    return theta[0]


def newton_half(wins_half: np.ndarray, theta0: np.ndarray, *, max_iter: int = 50, tol: float = 1e-10) -> np.ndarray:
    """Batched Newton ascent of the BT log-likelihood. wins_half: [R, M, M], theta0: [R, M] -> [R, M].

    The Hessian is a weighted graph Laplacian, singular along the all-ones direction (ratings are only
    defined up to a shift); adding the all-ones matrix makes it definite and keeps every step mean-zero.
    """
    return _newton_half(wins_half, theta0, max_iter=max_iter, tol=tol)[0]


def _newton_half(wins_half: np.ndarray, theta0: np.ndarray, *, max_iter: int, tol: float) -> tuple[np.ndarray, bool]:
    theta = theta0.astype(np.float64).copy()
    n = wins_half + wins_half.swapaxes(-1, -2)
    m = theta.shape[-1]
    eye = np.eye(m)
    converged = False
    with single_blas_thread():
        for _ in range(max_iter):
            p = sigmoid(theta[:, :, None] - theta[:, None, :])
            grad = (wins_half - n * p).sum(axis=-1)
            h = n * p * (1.0 - p)
            info = eye * h.sum(axis=-1)[:, :, None] - h + 1.0 + 1e-9 * eye
            step = np.linalg.solve(info, grad[..., None])[..., 0]
            big = np.abs(step).max(axis=-1, keepdims=True)
            step = step * np.minimum(1.0, MAX_STEP / np.maximum(big, 1e-300))
            theta += step
            if big.max() < tol:
                converged = True
                break
    return theta - theta.mean(axis=-1, keepdims=True), converged
