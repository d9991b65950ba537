"""Davidson's (1970) ties model, fitted by maximum likelihood.

    P(i beats j) = pi_i / D,  P(tie) = nu * sqrt(pi_i * pi_j) / D,  D = pi_i + pi_j + nu * sqrt(pi_i * pi_j)

With d = theta_i - theta_j and s = log(nu), one pair's log-likelihood is
    (w - l) * d / 2 + t * s - n * log(2 cosh(d / 2) + e^s)
which is concave in (theta, s); a batched Newton method fits all bootstrap rounds at once. nu is the tie
propensity: the tie probability of two equal models is nu / (2 + nu).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ratings._threads import single_blas_thread
from ratings.bt import MAX_STEP, fit_bt, half_wins

D_CLIP = 60.0  # |d| beyond this makes cosh overflow and changes nothing


@dataclass(frozen=True)
class DavidsonFit:
    theta: np.ndarray  # [M] or [R, M], mean zero, natural log scale
    nu: np.ndarray | float  # tie parameter per round (or one)


def nu_from_tie_rate(tie_rate: float) -> float:
    """The nu at which two equal models tie at this rate: a good starting point."""
    t = min(max(tie_rate, 1e-3), 0.95)
    return 2.0 * t / (1.0 - t)


def fit_davidson(wins: np.ndarray, ties: np.ndarray) -> DavidsonFit:
    """Point estimate on one [M, M] pair of matrices (decisive wins [winner, loser], symmetric ties)."""
    theta0 = fit_bt(half_wins(wins, ties))
    n_dec = wins.sum()
    n_tie = ties.sum() / 2.0
    s0 = np.log(nu_from_tie_rate(n_tie / max(n_dec + n_tie, 1.0)))
    theta, s = newton_davidson(wins[None], ties[None], theta0[None], np.array([s0]))
    return DavidsonFit(theta=theta[0], nu=float(np.exp(s[0])))


def newton_davidson(wins: np.ndarray, ties: np.ndarray, theta0: np.ndarray, s0: np.ndarray, *,
                    max_iter: int = 60, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Batched Newton ascent over R rounds. wins, ties: [R, M, M]; theta0: [R, M]; s0: [R] (log nu)."""
    with single_blas_thread():
        return _newton_davidson(wins, ties, theta0, s0, max_iter=max_iter, tol=tol)


def _newton_davidson(wins: np.ndarray, ties: np.ndarray, theta0: np.ndarray, s0: np.ndarray, *,
                     max_iter: int, tol: float) -> tuple[np.ndarray, np.ndarray]:
    theta = theta0.astype(np.float64).copy()
    s = s0.astype(np.float64).copy()
    r, m = theta.shape
    n = wins + wins.swapaxes(-1, -2) + ties
    net = (wins - wins.swapaxes(-1, -2)) / 2.0
    n_ties = ties.sum(axis=(-1, -2)) / 2.0
    eye = np.eye(m)
    for _ in range(max_iter):
        d = np.clip(theta[:, :, None] - theta[:, None, :], -D_CLIP, D_CLIP) / 2.0
        ch, sh = np.cosh(d), np.sinh(d)
        nu = np.exp(s)[:, None, None]
        z = 2.0 * ch + nu
        grad_t = (net - n * sh / z).sum(axis=-1)
        grad_s = n_ties - 0.5 * (n * nu / z).sum(axis=(-1, -2))
        # Negative Hessian blocks (the information matrix).
        h = n * (0.5 * ch * z - sh * sh) / (z * z)
        c = (n * sh * nu / (z * z)).sum(axis=-1)  # d2/(dtheta ds), a sum of antisymmetric terms
        hss = 0.5 * (n * nu * 2.0 * ch / (z * z)).sum(axis=(-1, -2))
        info = np.zeros((r, m + 1, m + 1))
        info[:, :m, :m] = eye * h.sum(axis=-1)[:, :, None] - h + 1.0 + 1e-9 * eye
        info[:, :m, m] = -c
        info[:, m, :m] = -c
        info[:, m, m] = hss + 1e-12
        grad = np.concatenate([grad_t, grad_s[:, None]], axis=1)
        step = np.linalg.solve(info, grad[..., None])[..., 0]
        big = np.abs(step).max(axis=-1, keepdims=True)
        step = step * np.minimum(1.0, MAX_STEP / np.maximum(big, 1e-300))
        theta += step[:, :m]
        s += step[:, m]
        if big.max() < tol:
            break
    return theta - theta.mean(axis=-1, keepdims=True), s


def davidson_probabilities(theta: np.ndarray, nu: float) -> tuple[np.ndarray, np.ndarray]:
    """[M, M] matrices P(row beats column) and P(tie) under the fitted model."""
    d = np.clip(theta[:, None] - theta[None, :], -D_CLIP, D_CLIP) / 2.0
    z = np.exp(d) + np.exp(-d) + nu
    return np.exp(d) / z, nu / z
