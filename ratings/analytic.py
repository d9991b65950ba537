"""Analytic standard errors: a fast first view before (or instead of) the bootstrap.

Half-ties BT is not the model that generated ties (a tie is not half a win), so its information matrix
alone understates the noise: the sandwich A^-1 B A^-1 (A = information, B = outer product of per-battle
scores) is the honest covariance. Davidson models ties, so its inverse information is used directly. Both
covariances are of mean-zero log-strengths (the pseudo-inverse projects out the common shift).
"""

from __future__ import annotations

import numpy as np

from ratings._threads import single_blas_thread
from ratings.bt import sigmoid
from ratings.davidson import D_CLIP
from ratings.encode import CELL_TIE, LO_WINS, Cells

Z95 = 1.959963984540054


def _laplacian(weights: np.ndarray) -> np.ndarray:
    return np.diag(weights.sum(axis=1)) - weights


def _pair_weights(cells: Cells, per_cell: np.ndarray) -> np.ndarray:
    m = cells.n_models
    flat = np.bincount(cells.lo * m + cells.hi, weights=per_cell, minlength=m * m).reshape(m, m)
    return flat + flat.T


def _pinv_centred(info: np.ndarray) -> np.ndarray:
    m = info.shape[0]
    centre = np.eye(m) - 1.0 / m
    # One thread: a 100x100 SVD takes ~5 ms on one and can take 100 ms when OpenBLAS's pool meets a busy machine.
    with single_blas_thread():
        return centre @ np.linalg.pinv(info) @ centre


def sandwich_cov_half(cells: Cells, theta: np.ndarray, prior_wins: np.ndarray | None = None) -> np.ndarray:
    """[M, M] sandwich covariance of half-ties BT log-strengths (every battle of weight 1)."""
    return sandwich_cov_weighted(cells, cells, theta, prior_wins)


def sandwich_cov_weighted(cells: Cells, meat: Cells, theta: np.ndarray,
                          prior_wins: np.ndarray | None = None) -> np.ndarray:
    """[M, M] sandwich covariance of weighted half-ties BT: bread from ``cells`` (sum of weights per cell),
    meat from ``meat`` (the same cells, counts = sum of squared weights)."""
    p_lo = sigmoid(theta[cells.lo] - theta[cells.hi])
    y = np.where(cells.outcome == LO_WINS, 1.0, np.where(cells.outcome == CELL_TIE, 0.5, 0.0))
    a_w = _pair_weights(cells, cells.count * p_lo * (1.0 - p_lo))
    b_w = _pair_weights(cells, meat.count * (y - p_lo) ** 2)
    if prior_wins is not None:
        # Virtual battles add information but no noise.
        n_prior = prior_wins + prior_wins.T
        p = sigmoid(theta[:, None] - theta[None, :])
        a_w = a_w + n_prior * p * (1.0 - p)
    a_inv = _pinv_centred(_laplacian(a_w))
    return a_inv @ _laplacian(b_w) @ a_inv


def fisher_cov_davidson(wins: np.ndarray, ties: np.ndarray, theta: np.ndarray, nu: float) -> np.ndarray:
    """[M, M] covariance of Davidson log-strengths (the theta block of the inverse information)."""
    m = len(theta)
    n = wins + wins.T + ties
    d = np.clip(theta[:, None] - theta[None, :], -D_CLIP, D_CLIP) / 2.0
    ch, sh = np.cosh(d), np.sinh(d)
    z = 2.0 * ch + nu
    h = n * (0.5 * ch * z - sh * sh) / (z * z)
    c = (n * sh * nu / (z * z)).sum(axis=1)
    hss = 0.5 * (n * nu * 2.0 * ch / (z * z)).sum()
    info = np.zeros((m + 1, m + 1))
    info[:m, :m] = _laplacian(h) + 1.0
    info[:m, m] = info[m, :m] = -c
    info[m, m] = hss
    cov = np.linalg.inv(info)[:m, :m]
    centre = np.eye(m) - 1.0 / m
    return centre @ cov @ centre


def normal_ci(theta: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% intervals on the log scale. An anchor is a pure shift applied afterwards (not the variance of
    the difference to the anchor model), so CI widths do not depend on which model is anchored."""
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    return theta - Z95 * se, theta + Z95 * se
