"""Style control at LMArena's settings: conv_metadata counts, feature subsets, L2 penalty, reweighting."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ratings import rate
from ratings.encode import encode
from ratings.style import (
    LMARENA_STYLE,
    StyleError,
    StyleOptions,
    fit_style_bt,
    pair_weights,
    style_columns,
    style_features,
)


def _battles(n: int, seed: int) -> pd.DataFrame:
    """Four equal models; voters prefer the longer answer; counts carried in Chatbot Arena conv_metadata."""
    rng = np.random.default_rng(seed)
    models = np.array(["m0", "m1", "m2", "m3"])
    a = rng.integers(0, 4, n)
    b = (a + rng.integers(1, 4, n)) % 4
    long_of = np.array([900, 500, 500, 200])
    ta = rng.poisson(long_of[a])
    tb = rng.poisson(long_of[b])
    diff = (ta - tb) / (ta + tb + 1)
    p = 1 / (1 + np.exp(-3.0 * diff))
    winner = np.where(rng.random(n) < p, "model_a", "model_b")
    meta = [{"sum_assistant_a_tokens": int(x), "sum_assistant_b_tokens": int(y),
             "header_count_a": {"h1": int(k % 2), "h2": 0}, "header_count_b": {"h1": 0, "h2": int(k % 3 == 0)},
             "list_count_a": {"ordered": 1, "unordered": int(k % 4)}, "list_count_b": {"ordered": 0, "unordered": 1},
             "bold_count_a": {"**": int(k % 5), "__": 0}, "bold_count_b": {"**": 1, "__": 0}}
            for k, (x, y) in enumerate(zip(ta, tb, strict=True))]
    return pd.DataFrame({"model_a": models[a], "model_b": models[b], "winner": winner, "conv_metadata": meta})


def test_conv_metadata_counts_are_read_and_summed() -> None:
    df = _battles(50, seed=0)
    cols = style_columns(df, ("tokens", "headers", "lists", "bold"))
    m = df["conv_metadata"]
    assert cols["tokens_a"].tolist() == [x["sum_assistant_a_tokens"] for x in m]
    assert cols["headers_b"].tolist() == [sum(x["header_count_b"].values()) for x in m]
    assert cols["lists_a"].tolist() == [sum(x["list_count_a"].values()) for x in m]
    # JSON text (a CSV) reads the same.
    as_text = df.assign(conv_metadata=[json.dumps(x) for x in m])
    pd.testing.assert_frame_equal(style_columns(as_text, ("tokens", "bold")),
                                  cols[["tokens_a", "tokens_b", "bold_a", "bold_b"]])
    # Code features are not in Chatbot Arena's metadata: without answers that is a clear error.
    with pytest.raises(StyleError, match="answer_a"):
        style_columns(df, ("tokens", "code_blocks"))


def test_arena_hard_answer_metadata_per_side() -> None:
    meta_a = [{"token_len": 10, "header_count": {"h1": 1}, "list_count": {"ordered": 2}, "bold_count": {"**": 0}}]
    meta_b = [{"token_len": 30, "header_count": {"h1": 0}, "list_count": {"ordered": 0}, "bold_count": {"**": 3}}]
    df = pd.DataFrame({"model_a": ["x"], "model_b": ["y"], "winner": ["tie"], "conv_metadata_a": meta_a,
                       "conv_metadata_b": meta_b})
    cols = style_columns(df, ("tokens", "lists", "bold"))
    assert cols.iloc[0].tolist() == [10.0, 30.0, 2.0, 0.0, 0.0, 3.0]


def test_length_only_subset_removes_the_length_bias_and_reports_coefficients() -> None:
    df = _battles(12_000, seed=1)
    naive = rate(df).table.set_index("model")["rating"]
    res = rate(df, style_control=True, style=StyleOptions(features=("tokens",)))
    adjusted = res.table.set_index("model")["rating"]
    assert naive["m0"] - naive["m3"] > 100
    assert abs(adjusted["m0"] - adjusted["m3"]) < 30
    coef = res.style.set_index("feature")
    assert list(coef.index) == ["tokens"] and coef.loc["tokens", "ci_low"] > 0
    assert {"coef", "se", "ci_low", "ci_high"} <= set(coef.columns)


def test_l2_penalty_is_lmarenas_loss() -> None:
    df = _battles(3_000, seed=2)
    enc = encode(df)
    feats = ("tokens", "bold")
    x = style_features(style_columns(df, feats), feats, add_one=True)
    reg = 0.5
    fit = fit_style_bt(enc, x, reg=reg, features=feats)
    free = fit_style_bt(enc, x, features=feats)
    assert np.all(np.abs(fit.coef) < np.abs(free.coef))

    y = np.where(df["winner"] == "model_a", 1.0, 0.0)

    def loss(theta: np.ndarray, beta: np.ndarray) -> float:
        z = theta[enc.a] - theta[enc.b] + x @ beta
        ll = y * -np.logaddexp(0, -z) + (1 - y) * -np.logaddexp(0, z)
        return float(-ll.mean() + 0.5 * reg * (beta**2).sum())

    # The fitted point is a stationary point of -mean(loglik) + 0.5 reg ||beta||^2: any small move is worse.
    best = loss(fit.theta, fit.coef)
    rng = np.random.default_rng(0)
    for _ in range(20):
        dt, db = rng.normal(0, 1e-3, len(fit.theta)), rng.normal(0, 1e-3, len(fit.coef))
        assert loss(fit.theta + dt - dt.mean(), fit.coef + db) >= best - 1e-12


def test_inverse_pair_count_weights() -> None:
    df = pd.DataFrame({"model_a": ["a"] * 100 + ["a"] * 10, "model_b": ["b"] * 100 + ["c"] * 10,
                       "winner": ["model_a"] * 110})
    w = pair_weights(encode(df), min_pair_count=50)
    raw = np.r_[np.full(100, 1 / 100), np.full(10, 1 / 50)]
    np.testing.assert_allclose(w, raw / raw.mean())
    assert w.mean() == pytest.approx(1.0)


def test_lmarena_preset_runs_with_bootstrap_and_the_default_stays_unpenalised() -> None:
    df = _battles(4_000, seed=3)
    assert LMARENA_STYLE.reg == 1.0 and LMARENA_STYLE.reweight == "pair" and LMARENA_STYLE.add_one
    res = rate(df, style_control=True, style=LMARENA_STYLE, bootstrap=5, seed=0)
    assert res.samples.shape == (5, 4)
    assert list(res.style["feature"]) == ["tokens", "headers", "lists", "bold"]
    default = StyleOptions()
    assert default.reg == 0.0 and default.reweight == "none" and len(default.features) == 6
    with pytest.raises(StyleError, match="unknown style feature"):
        StyleOptions(features=("tokens", "emoji"))
    with pytest.raises(StyleError, match="reweighting"):
        StyleOptions(reweight="propensity")


def test_style_control_with_clustered_intervals() -> None:
    df = _battles(3_000, seed=4)
    df["prompt_id"] = [f"p{i % 40}" for i in range(len(df))]
    opts = StyleOptions(features=("tokens",))
    plain = rate(df, style_control=True, style=opts).table.set_index("model")
    clus = rate(df, style_control=True, style=opts, cluster_by="prompt")
    t = clus.table.set_index("model")
    assert np.allclose(t["rating"], plain["rating"].loc[t.index])
    assert clus.clustering is not None and clus.clustering.n_clusters == 40
    boot = rate(df, style_control=True, style=opts, cluster_by="prompt", bootstrap=5, seed=0)
    assert boot.samples.shape == (5, 4)
