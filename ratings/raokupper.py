"""Rao & Kupper's (1967) ties model, and whether the leaderboard's order depends on how ties are modelled.

    P(i beats j) = sigma(d - eta),  P(j beats i) = sigma(-d - eta),  P(tie) = the rest,   d = theta_i - theta_j

with eta > 0 (Rao-Kupper's threshold theta_RK = e^eta >= 1): a tie is a comparison whose difference fell
within +-eta, an ordered-logit model with one threshold. In closed form
    log P(tie) = log(e^(2 eta) - 1) - softplus(eta - d) - softplus(eta + d)
and the tie probability of two equal models is tanh(eta / 2). The log-likelihood is jointly concave in
(theta, eta) (Pratt 1981, for ordered models with log-concave links), so Newton's method from the half-ties
fit converges; the covariance is the inverse information, as for Davidson.

:func:`compare_tie_models` fits half-ties BT, Davidson and Rao-Kupper on the same battles and reports
whether the order of the models changes between them. The three put ratings on different scales (a
Rao-Kupper d is not a log-odds of winning), so only ranks are compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ratings import graph
from ratings.bt import fit_bt, half_wins, sigmoid, to_elo, with_prior, with_prior_ties
from ratings.davidson import fit_davidson
from ratings.encode import aggregate, cell_matrices, encode


@dataclass(frozen=True)
class RaoKupperFit:
    theta: np.ndarray  # [M] mean-zero log-strengths
    eta: float  # threshold on the log scale; Rao-Kupper's theta is exp(eta)
    cov: np.ndarray  # [M + 1, M + 1] inverse information of (theta, eta); theta block centred
    loglik: float

    @property
    def tie_threshold(self) -> float:
        """Rao-Kupper's theta = e^eta (>= 1)."""
        return float(np.exp(self.eta))

    @property
    def equal_tie_probability(self) -> float:
        """P(tie) between two equally strong models."""
        return float(np.tanh(self.eta / 2.0))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _a(x: np.ndarray) -> np.ndarray:
    s = sigmoid(x)
    return s * (1.0 - s)


def rao_kupper_loglik(wins: np.ndarray, ties: np.ndarray, theta: np.ndarray, eta: float) -> float:
    """Log-likelihood; wins [winner, loser] decisive, ties symmetric (each tie in both cells)."""
    d = theta[:, None] - theta[None, :]
    log_tie = np.log(np.expm1(2.0 * eta)) - _softplus(eta - d) - _softplus(eta + d)
    log_win = -_softplus(eta - d)  # log sigma(d - eta)
    return float((wins * log_win).sum() + 0.5 * (ties * log_tie).sum())


def _derivatives(wins: np.ndarray, ties: np.ndarray, theta: np.ndarray, eta: float):
    """Gradient [M + 1] and negative Hessian [M + 1, M + 1] (theta block without the identifying ones)."""
    m = len(theta)
    d = theta[:, None] - theta[None, :]
    w, lost, t = wins, wins.T, ties  # over ordered (i, j): i's wins, i's losses, ties; each pair seen twice
    s_minus, s_plus = sigmoid(eta - d), sigmoid(eta + d)
    a_minus, a_plus = _a(eta - d), _a(eta + d)
    # Per (i, j), derivatives of the pair's log-likelihood with respect to d and eta; the eta ones are
    # summed over both orientations below, so they are halved.
    g_d = w * s_minus - lost * s_plus + t * (s_minus - s_plus)
    coth_term = 2.0 / -np.expm1(-2.0 * eta)
    g_e = -w * s_minus - lost * s_plus + t * (coth_term - s_minus - s_plus)
    h_dd = -(w + t) * a_minus - (lost + t) * a_plus  # both win and tie terms have -a(eta -+ d)
    h_de = w * a_minus - lost * a_plus + t * (a_minus - a_plus)
    e_term = 4.0 * np.exp(-2.0 * eta) / np.expm1(-2.0 * eta) ** 2
    h_ee = -w * a_minus - lost * a_plus - t * (e_term + a_minus + a_plus)
    np.fill_diagonal(g_d, 0.0)
    np.fill_diagonal(g_e, 0.0)
    for h in (h_dd, h_de, h_ee):
        np.fill_diagonal(h, 0.0)
    grad = np.concatenate([g_d.sum(axis=1), [0.5 * g_e.sum()]])
    info = np.zeros((m + 1, m + 1))
    info[:m, :m] = np.diag(-h_dd.sum(axis=1)) + h_dd
    info[:m, m] = info[m, :m] = -h_de.sum(axis=1)
    info[m, m] = -0.5 * h_ee.sum()
    return grad, info


def fit_rao_kupper(wins: np.ndarray, ties: np.ndarray, *, max_iter: int = 100, tol: float = 1e-10) -> RaoKupperFit:
    """Maximum likelihood on one [M, M] pair of matrices (decisive wins [winner, loser], symmetric ties).

    Needs ties (eta > 0 is fitted from them) and a strongly connected "beat or tied" graph, as the other
    fits do. Damped Newton: a step is halved until the likelihood rises and eta stays positive.
    """
    m = wins.shape[0]
    n_dec, n_tie = wins.sum(), ties.sum() / 2.0
    if n_tie <= 0:
        raise ValueError("Rao-Kupper needs tied battles to fit its tie threshold; there are none")
    theta = fit_bt(half_wins(wins, ties))
    eta = 2.0 * np.arctanh(min(max(n_tie / (n_dec + n_tie), 1e-3), 0.95))
    ll = rao_kupper_loglik(wins, ties, theta, eta)
    for _ in range(max_iter):
        grad, info = _derivatives(wins, ties, theta, eta)
        info[:m, :m] += 1.0  # the all-ones direction (a common shift) is not identified
        step = np.linalg.solve(info, grad)
        size = 1.0
        while True:
            new_eta = eta + size * step[m]
            if new_eta > 0:
                new_theta = theta + size * step[:m]
                new_theta -= new_theta.mean()
                new_ll = rao_kupper_loglik(wins, ties, new_theta, new_eta)
                if new_ll >= ll - 1e-12 * abs(ll) or size < 1e-10:
                    break
            size /= 2.0
        theta, eta, ll = new_theta, float(new_eta), new_ll
        if np.abs(size * step).max() < tol:
            break
    _, info = _derivatives(wins, ties, theta, eta)
    info[:m, :m] += 1.0
    cov = np.linalg.inv(info)
    centre = np.eye(m) - 1.0 / m
    cov[:m, :m] = centre @ cov[:m, :m] @ centre
    cov[:m, m] = cov[m, :m] = centre @ cov[:m, m]
    return RaoKupperFit(theta=theta, eta=eta, cov=cov, loglik=ll)


@dataclass
class TieModelComparison:
    """Ratings and ranks of the same battles under the three ties models; ``table`` in half-ties order."""

    # model, rating_half, rating_davidson, rating_rao_kupper, rank_half, rank_davidson, rank_rao_kupper
    table: pd.DataFrame
    order_changes: bool
    changed: list[str]  # models whose rank differs between any two of the models
    nu: float  # Davidson's tie parameter
    rao_kupper_theta: float  # e^eta
    notes: list[str] = field(default_factory=list)


def _ranks(rating: np.ndarray) -> np.ndarray:
    return 1 + (rating[None, :] > rating[:, None] + 1e-9).sum(axis=1)


def compare_tie_models(battles: pd.DataFrame, *, prior: float = 1.0) -> TieModelComparison:
    """Half ties, Davidson and Rao-Kupper on one connected set of battles; does the order change?

    ``prior`` virtual ties per compared pair only when the plain MLE does not exist (as in rate()).
    """
    enc = encode(battles)
    wins, ties = cell_matrices(aggregate(enc))
    if len(graph.components(wins + wins.T + ties, enc.models)) > 1:
        raise ValueError("the comparison graph is not connected; compare each component on its own")
    notes: list[str] = []
    use = 0.0 if graph.mle_exists(wins, ties) else prior
    if use:
        notes.append(f"a prior of {prior:g} virtual tied battle(s) per compared pair keeps the ratings finite")
    half_w = with_prior(wins, ties, use) if use else wins
    tie_m = with_prior_ties(wins, ties, use) if use else ties
    half = fit_bt(half_wins(half_w, ties))
    dav = fit_davidson(wins, tie_m)
    rk = fit_rao_kupper(wins, tie_m)
    ratings = {"half": to_elo(half), "davidson": to_elo(dav.theta), "rao_kupper": to_elo(rk.theta)}
    ranks = {k: _ranks(v) for k, v in ratings.items()}
    order = np.lexsort((np.asarray(enc.models, dtype=object), -ratings["half"]))
    table = pd.DataFrame({"model": np.asarray(enc.models, dtype=object)[order],
                          **{f"rating_{k}": v[order] for k, v in ratings.items()},
                          **{f"rank_{k}": v[order] for k, v in ranks.items()}})
    stacked = np.stack([table[f"rank_{k}"].to_numpy() for k in ratings])
    differs = (stacked != stacked[0]).any(axis=0)
    changed = table["model"][differs].tolist()
    notes.append("ties models agree on the order" if not changed else
                 f"the order changes with the ties model for: {', '.join(changed)}")
    return TieModelComparison(table=table, order_changes=bool(differs.any()), changed=changed, nu=float(dav.nu),
                              rao_kupper_theta=rk.tie_threshold, notes=notes)
