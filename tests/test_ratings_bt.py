"""Bradley-Terry point estimates against an independent per-battle logistic regression, plus edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from ratings import leaderboard, rate
from ratings.encode import aggregate, cell_matrices, encode
from ratings.synthetic import synthetic_battles

ELO = 400.0 / math.log(10.0)


def logistic_mle(battles: pd.DataFrame) -> dict[str, float]:
    """Chatbot Arena's method written independently: one row per battle, a tie as two half-weight rows
    (a won / b won), no intercept, L-BFGS on the exact per-battle log-likelihood."""
    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    idx = {m: i for i, m in enumerate(models)}
    a = battles["model_a"].map(idx).to_numpy()
    b = battles["model_b"].map(idx).to_numpy()
    w = battles["winner"].to_numpy()
    y = np.where(w == "model_a", 1.0, np.where(w == "model_b", 0.0, 0.5))

    def nll(th: np.ndarray) -> tuple[float, np.ndarray]:
        th = np.concatenate([[0.0], th])  # model 0 fixed at 0: identifies the scale
        z = th[a] - th[b]
        ll = y * -np.logaddexp(0, -z) + (1 - y) * -np.logaddexp(0, z)
        r = y - 1 / (1 + np.exp(-z))
        g = np.bincount(a, r, len(models)) - np.bincount(b, r, len(models))
        return -ll.sum(), -g[1:]

    opt = minimize(nll, np.zeros(len(models) - 1), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})
    th = np.concatenate([[0.0], opt.x])
    th -= th.mean()
    return {m: 1000 + ELO * t for m, t in zip(models, th, strict=True)}


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_per_battle_logistic_regression_to_a_tenth_of_an_elo(seed: int) -> None:
    syn = synthetic_battles(30_000, 12, seed=seed, spread=1.2)
    expected = logistic_mle(syn.battles)
    table = leaderboard(syn.battles)
    got = dict(zip(table["model"], table["rating"], strict=True))
    worst = max(abs(got[m] - expected[m]) for m in expected)
    assert worst < 0.1, worst


def test_recovers_true_strengths_on_a_large_sample() -> None:
    syn = synthetic_battles(200_000, 10, seed=3, tie_rate=0.0)
    table = leaderboard(syn.battles)
    got = (table.set_index("model")["rating"] - 1000) / ELO
    err = max(abs(got[m] - t) for m, t in syn.true_theta.items())
    assert err < 0.05, err


def test_ties_count_half_a_win_each_way() -> None:
    enc = encode(pd.DataFrame({"model_a": ["x", "y"], "model_b": ["y", "x"], "winner": ["tie", "tie (bothbad)"]}))
    wins, ties = cell_matrices(aggregate(enc))
    assert wins.sum() == 0 and ties[0, 1] == ties[1, 0] == 2


def test_table_columns_order_and_tallies() -> None:
    df = pd.DataFrame({"model_a": ["a", "a", "b", "c", "a"], "model_b": ["b", "c", "c", "a", "b"],
                       "winner": ["model_a", "tie", "model_b", "model_b", "model_b"]})
    table = leaderboard(df)
    assert list(table.columns[:10]) == ["model", "rating", "ci_low", "ci_high", "rank", "rank_ub", "battles",
                                        "wins", "losses", "ties"]
    a = table.set_index("model").loc["a"]
    assert (a.battles, a.wins, a.losses, a.ties) == (4, 2, 1, 1)
    assert list(table["rank"]) == [1, 2, 3]
    assert table["rating"].is_monotonic_decreasing


def test_anchor_sets_the_anchor_model_rating_and_keeps_differences() -> None:
    syn = synthetic_battles(5_000, 5, seed=2)
    plain = leaderboard(syn.battles).set_index("model")["rating"]
    anchored = leaderboard(syn.battles, anchor=("model-3", 1200.0)).set_index("model")
    assert anchored.loc["model-3", "rating"] == pytest.approx(1200.0)
    diffs = anchored["rating"] - plain.loc[anchored.index]
    assert np.allclose(diffs, diffs.iloc[0])
    # A pure shift: the anchor keeps its own uncertainty (it used to get a zero-width [1200, 1200] interval).
    assert anchored.loc["model-3", "ci_low"] < 1200.0 < anchored.loc["model-3", "ci_high"]


@pytest.mark.parametrize("ties,ci,rounds", [("half", "analytic", 0), ("davidson", "analytic", 0),
                                            ("half", "bootstrap", 40), ("davidson", "bootstrap", 40)])
def test_anchor_shifts_ratings_and_ci_bounds_alike(ties: str, ci: str, rounds: int) -> None:
    syn = synthetic_battles(3_000, 4, seed=5)
    plain = rate(syn.battles, ties=ties, ci=ci, bootstrap=rounds).table.set_index("model")
    anchored = rate(syn.battles, ties=ties, ci=ci, bootstrap=rounds, anchor=("model-1", 1200.0)).table
    anchored = anchored.set_index("model").loc[plain.index]
    shift = 1200.0 - plain.loc["model-1", "rating"]
    for col in ("rating", "ci_low", "ci_high"):
        assert np.allclose(anchored[col], plain[col] + shift), col
    assert np.allclose(anchored["ci_high"] - anchored["ci_low"], plain["ci_high"] - plain["ci_low"])
    assert list(anchored["rank_ub"]) == list(plain["rank_ub"])


def test_style_control_anchor_is_a_shift_too() -> None:
    syn = synthetic_battles(800, 3, seed=1).battles
    syn["answer_a"] = ["x " * (i % 7 + 1) for i in range(len(syn))]
    syn["answer_b"] = ["y " * (i % 5 + 1) for i in range(len(syn))]
    plain = rate(syn, style_control=True).table.set_index("model")
    anchored = rate(syn, style_control=True, anchor=("model-0", 1200.0)).table.set_index("model").loc[plain.index]
    assert np.allclose(anchored["ci_high"] - anchored["ci_low"], plain["ci_high"] - plain["ci_low"])


def test_equal_ratings_share_a_rank_and_few_battles_get_a_note() -> None:
    # Two battles, both ties: the models are indistinguishable, so neither is "rank 2".
    df = pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "a"], "winner": ["tie", "tie"]})
    res = rate(df)
    assert list(res.table["rank"]) == [1, 1]
    assert any("CIs from very few battles are unreliable" in n for n in res.notes)
    # Ranks are competition ranks: 1 + the number of strictly better models.
    df3 = pd.DataFrame({"model_a": ["a", "a", "b", "c"] * 5, "model_b": ["b", "c", "c", "b"] * 5,
                        "winner": ["model_a", "model_a", "tie", "tie"] * 5})
    res3 = rate(df3, prior=1.0)
    assert dict(zip(res3.table["model"], res3.table["rank"], strict=True)) == {"a": 1, "b": 2, "c": 2}
    # Enough battles: no note.
    big = rate(synthetic_battles(2_000, 3, seed=0).battles)
    assert not any("very few battles" in n for n in big.notes)


def test_unknown_anchor_is_a_clear_error() -> None:
    syn = synthetic_battles(500, 3, seed=0)
    with pytest.raises(ValueError, match="anchor model 'nope'"):
        leaderboard(syn.battles, anchor=("nope", 1000.0))


def test_unbeaten_model_gets_a_finite_rating_through_the_prior_and_it_is_reported() -> None:
    df = pd.DataFrame({"model_a": ["champ"] * 6 + ["x", "y", "y"],
                       "model_b": ["x", "y", "x", "y", "x", "y", "y2", "x", "y2"],
                       "winner": ["model_a"] * 6 + ["tie", "model_b", "model_a"]})
    res = rate(df)
    champ = res.table.set_index("model").loc["champ"]
    assert np.isfinite(champ.rating) and champ["rank"] == 1
    assert champ.rating < 1000 + 4 * 400  # finite and not absurd
    assert any("champ" in n and "prior" in n for n in res.notes)


def test_plain_mle_gets_no_prior() -> None:
    syn = synthetic_battles(3_000, 4, seed=5)
    assert not any("prior" in n for n in rate(syn.battles).notes)


def test_disconnected_graph_rates_components_apart_and_says_so() -> None:
    left = synthetic_battles(2_000, 3, seed=1).battles
    right = synthetic_battles(1_000, 2, seed=2).battles.replace({"model-0": "other-0", "model-1": "other-1"})
    res = rate(pd.concat([left, right], ignore_index=True))
    assert res.components == [["model-0", "model-1", "model-2"], ["other-0", "other-1"]]
    assert any("NOT comparable" in n for n in res.notes)
    t = res.table
    assert sorted(t.loc[t.component == 2, "rank"]) == [1, 2]  # ranks never cross components
    assert sorted(t.loc[t.component == 1, "rank"]) == [1, 2, 3]


def test_models_under_min_battles_are_listed_apart() -> None:
    syn = synthetic_battles(3_000, 4, seed=7)
    rare = pd.DataFrame({"model_a": ["rare"] * 3, "model_b": ["model-0"] * 3, "winner": ["model_a"] * 3})
    res = rate(pd.concat([syn.battles, rare], ignore_index=True), min_battles=10)
    assert "rare" not in set(res.table["model"])
    assert res.excluded.to_dict("records") == [{"model": "rare", "battles": 3}]


def test_rank_ub_counts_models_whose_interval_is_entirely_above() -> None:
    from ratings.leaderboard import rank_upper_bound

    lo = np.array([10.0, 8.0, 2.0, 0.0])
    hi = np.array([12.0, 11.0, 9.0, 1.0])
    assert rank_upper_bound(lo, hi).tolist() == [1, 1, 2, 4]


def test_the_point_fit_is_newton_with_choix_ilsr_as_the_fallback_start(monkeypatch: pytest.MonkeyPatch) -> None:
    import choix

    import ratings.bt as bt

    syn = synthetic_battles(5_000, 6, seed=4)
    wins, ties = cell_matrices(aggregate(encode(syn.battles)))
    calls = []
    real = choix.ilsr_pairwise_dense

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(choix, "ilsr_pairwise_dense", spy)
    ref = real(bt.half_wins(wins, ties), max_iter=10_000, tol=1e-12)
    # Newton from equal strengths converges: choix (and its 0.4 s import) is not needed.
    got = bt.fit_bt(bt.half_wins(wins, ties))
    assert calls == []
    assert np.allclose(got, ref - ref.mean(), atol=1e-6)
    # When it does not converge in START_ITER steps, ILSR gives the start and Newton polishes it.
    monkeypatch.setattr(bt, "START_ITER", 1)
    fallback = bt.fit_bt(bt.half_wins(wins, ties))
    assert calls == [(6, 6)]
    assert np.allclose(fallback, ref - ref.mean(), atol=1e-6)
