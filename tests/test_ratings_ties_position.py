"""Rao-Kupper ties beside Davidson and half-win, and the first-shown (position) advantage of votes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ratings.encode import aggregate, cell_matrices, encode
from ratings.position import position_bias
from ratings.raokupper import _derivatives, compare_tie_models, fit_rao_kupper, rao_kupper_loglik
from ratings.source import load_battles
from ratings.synthetic import synthetic_battles


def _rao_kupper_battles(n: int, theta: np.ndarray, eta: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    m = len(theta)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    d = theta[a] - theta[b]
    p_a = 1 / (1 + np.exp(-(d - eta)))
    p_b = 1 / (1 + np.exp(-(-d - eta)))
    u = rng.random(n)
    winner = np.where(u < p_a, "model_a", np.where(u < p_a + p_b, "model_b", "tie"))
    names = np.array([f"m{i}" for i in range(m)])
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})


def test_rao_kupper_gradient_and_information_match_finite_differences() -> None:
    syn = synthetic_battles(5_000, 5, seed=0, davidson_nu=0.6)
    w, t = cell_matrices(aggregate(encode(syn.battles)))
    theta, eta = np.array([0.3, -0.2, 0.5, -0.4, -0.2]), 0.4
    grad, info = _derivatives(w, t, theta, eta)
    x0 = np.r_[theta, eta]
    h = 1e-6
    num_grad = np.zeros(6)
    num_hess = np.zeros((6, 6))
    for k in range(6):
        e = np.zeros(6)
        e[k] = h
        num_grad[k] = (rao_kupper_loglik(w, t, (x0 + e)[:5], (x0 + e)[5])
                       - rao_kupper_loglik(w, t, (x0 - e)[:5], (x0 - e)[5])) / (2 * h)
        num_hess[:, k] = (_derivatives(w, t, (x0 + e)[:5], (x0 + e)[5])[0]
                          - _derivatives(w, t, (x0 - e)[:5], (x0 - e)[5])[0]) / (2 * h)
    np.testing.assert_allclose(grad, num_grad, atol=1e-4, rtol=1e-6)
    np.testing.assert_allclose(info, -num_hess, atol=1e-3, rtol=1e-5)


def test_rao_kupper_recovers_its_own_parameters() -> None:
    theta = np.array([0.8, 0.3, 0.0, -0.4, -0.7])
    theta -= theta.mean()
    df = _rao_kupper_battles(60_000, theta, eta=0.5, seed=1)
    w, t = cell_matrices(aggregate(encode(df)))
    fit = fit_rao_kupper(w, t)
    assert fit.eta == pytest.approx(0.5, abs=0.03)
    assert np.abs(fit.theta - theta).max() < 0.05
    se = np.sqrt(np.diag(fit.cov))
    assert np.all(np.abs(fit.theta - theta) < 4 * se[:5])
    assert fit.equal_tie_probability == pytest.approx(np.tanh(fit.eta / 2))
    with pytest.raises(ValueError, match="needs tied battles"):
        fit_rao_kupper(w, np.zeros_like(t))


def test_tie_models_agree_on_mt_bench_and_report_changes(shared_data) -> None:
    battles = load_battles(shared_data("mt-bench-human/human_judgments_turn1.jsonl")).battles
    cmp = compare_tie_models(battles)
    assert not cmp.order_changes and cmp.changed == []
    assert cmp.table["model"].iloc[0] == "gpt-4"
    assert cmp.rao_kupper_theta > 1 and 0.1 < cmp.nu < 2.0
    # b ties c often: half-win and Davidson put a above b, Rao-Kupper (whose ties mark closeness) b above a.
    counts = {("a", "c"): (24, 38, 1), ("b", "c"): (18, 33, 30), ("a", "b"): (3, 1, 4)}
    rows = [(x, y, label) for (x, y), (w, lo, t) in counts.items()
            for label, k in (("model_a", w), ("model_b", lo), ("tie", t)) for _ in range(k)]
    res = compare_tie_models(pd.DataFrame(rows, columns=["model_a", "model_b", "winner"]))
    ranks = res.table.set_index("model")
    assert res.order_changes and sorted(res.changed) == ["a", "b"]
    assert ranks.loc["a", "rank_half"] == ranks.loc["a", "rank_davidson"] == 2
    assert ranks.loc["a", "rank_rao_kupper"] == 3
    assert "order changes" in res.notes[-1]


def test_position_bias_finds_a_planted_first_shown_advantage() -> None:
    syn = synthetic_battles(50_000, 8, seed=2, tie_rate=0.1)
    none = position_bias(syn.battles)
    assert none.ci_low < 0 < none.ci_high
    b = syn.battles.copy()
    rng = np.random.default_rng(1)
    flip = (b["winner"] == "model_b") & (rng.random(len(b)) < 0.15)
    b.loc[flip, "winner"] = "model_a"
    biased = position_bias(b)
    assert biased.ci_low > 0.2
    p, lo, hi = biased.first_win_probability
    assert lo < p < hi and p > 0.55
    assert "first-shown" in biased.summary()
    assert biased.first_win_share > none.first_win_share


def test_mt_bench_position_bias_is_small(shared_data) -> None:
    battles = load_battles(shared_data("mt-bench-human/human_judgments_turn1.jsonl")).battles
    pb = position_bias(battles)
    assert pb.ci_low < pb.advantage < pb.ci_high
    assert abs(pb.advantage_elo) < 40 and pb.n_battles == 1689
