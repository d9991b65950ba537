"""Davidson's ties model recovers a known tie parameter and known strengths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from ratings import rate
from ratings.davidson import fit_davidson
from ratings.encode import aggregate, cell_matrices, encode
from ratings.synthetic import synthetic_battles

ELO = 400.0 / math.log(10.0)


@pytest.mark.parametrize("nu", [0.3, 1.0])
def test_recovers_known_nu_and_strengths(nu: float) -> None:
    syn = synthetic_battles(150_000, 8, seed=11, davidson_nu=nu)
    res = rate(syn.battles, ties="davidson")
    assert res.nu == pytest.approx(nu, rel=0.05)
    got = (res.table.set_index("model")["rating"] - 1000) / ELO
    err = max(abs(got[m] - t) for m, t in syn.true_theta.items())
    assert err < 0.05, err


def test_matches_a_direct_likelihood_maximisation() -> None:
    syn = synthetic_battles(5_000, 5, seed=4, davidson_nu=0.6)
    wins, ties = cell_matrices(aggregate(encode(syn.battles)))
    fit = fit_davidson(wins, ties)
    iu = np.triu_indices(5, 1)

    def nll(x: np.ndarray) -> float:
        th = np.concatenate([[0.0], x[:-1]])
        nu = math.exp(x[-1])
        d = th[:, None] - th[None, :]
        z = np.exp(d / 2) + np.exp(-d / 2) + nu
        ll = (wins * (d / 2 - np.log(z))).sum() + (ties[iu] * (math.log(nu) - np.log(z[iu]))).sum()
        return -ll

    opt = minimize(nll, np.zeros(5), method="BFGS", options={"gtol": 1e-9})
    th = np.concatenate([[0.0], opt.x[:-1]])
    assert np.allclose(th - th.mean(), fit.theta, atol=1e-4)
    assert fit.nu == pytest.approx(math.exp(opt.x[-1]), rel=1e-4)


def test_davidson_and_half_ties_agree_on_the_order() -> None:
    syn = synthetic_battles(40_000, 6, seed=8, davidson_nu=0.8, spread=1.5)
    half = rate(syn.battles).table["model"].tolist()
    dav = rate(syn.battles, ties="davidson").table["model"].tolist()
    assert half == dav


def test_prior_is_a_virtual_tie_and_does_not_pull_nu_down() -> None:
    import pandas as pd

    rows: list[dict[str, str]] = []

    def add(a: str, b: str, winner: str, n: int) -> None:
        rows.extend({"model_a": a, "model_b": b, "winner": winner} for _ in range(n))

    # "a" never lost nor tied (its MLE is infinite: the prior is needed); b, c, d tie 9 times in 11.
    add("a", "b", "model_a", 12)
    add("a", "c", "model_a", 12)
    for x, y in (("b", "c"), ("b", "d"), ("c", "d")):
        add(x, y, "tie", 30)
        add(x, y, "model_a", 5 if x == "b" else 0)
        add(x, y, "model_b", 5 if y != "d" or x == "c" else 0)
    battles = pd.DataFrame(rows)
    without_a = rate(battles[battles["model_a"] != "a"], ties="davidson").nu
    res = rate(battles, ties="davidson", prior=1.0)
    assert any("prior" in n for n in res.notes)
    # As decisive half-wins the prior pulled nu to ~7.3; as ties it leaves it near the tie-heavy data's nu.
    assert res.nu == pytest.approx(without_a, rel=0.05)
    assert rate(battles, ties="davidson", prior=3.0).nu >= res.nu
    boot = rate(battles, ties="davidson", prior=1.0, bootstrap=50, seed=0)
    assert boot.nu == pytest.approx(res.nu) and boot.table["ci_low"].notna().all()
