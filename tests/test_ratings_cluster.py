"""Cluster-robust intervals: against an independent per-battle computation, and on real MT-bench votes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from ratings import rate
from ratings.analytic import sandwich_cov_half
from ratings.bt import ELO_SCALE
from ratings.cluster import (
    MIN_CLUSTERS,
    ClusterError,
    cluster_bootstrap_theta,
    cluster_ids,
    cluster_sandwich_cov,
    clustered_ci,
    default_cluster,
)
from ratings.encode import aggregate, battle_cells, encode
from ratings.source import load_battles
from ratings.synthetic import synthetic_battles


def _mt_bench(shared_data) -> pd.DataFrame:
    return load_battles(shared_data("mt-bench-human/human_judgments_turn1.jsonl")).battles


def independent_cluster_sandwich(battles: pd.DataFrame, cluster_col: str) -> tuple[list[str], np.ndarray]:
    """Written without ratings.*: per-battle logistic regression (ties y = 0.5), model 0 fixed at 0, fitted
    by L-BFGS; the Hessian X^T diag(p(1-p)) X and per-battle scores from a dense design matrix; the meat a
    Python loop over clusters, times C/(C-1); then mapped to mean-zero strengths."""
    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    idx = {m: i for i, m in enumerate(models)}
    n, m = len(battles), len(models)
    x = np.zeros((n, m))
    x[np.arange(n), battles["model_a"].map(idx).to_numpy()] = 1.0
    x[np.arange(n), battles["model_b"].map(idx).to_numpy()] = -1.0
    w = battles["winner"].to_numpy()
    y = np.where(w == "model_a", 1.0, np.where(w == "model_b", 0.0, 0.5))
    xr = x[:, 1:]

    def nll(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = xr @ beta
        p = 1 / (1 + np.exp(-z))
        return float(-(y * -np.logaddexp(0, -z) + (1 - y) * -np.logaddexp(0, z)).sum()), -(xr.T @ (y - p))

    beta = minimize(nll, np.zeros(m - 1), jac=True, method="L-BFGS-B",
                    options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000}).x
    p = 1 / (1 + np.exp(-(xr @ beta)))
    hessian = xr.T @ (xr * (p * (1 - p))[:, None])
    scores = xr * (y - p)[:, None]
    meat = np.zeros((m - 1, m - 1))
    groups = battles[cluster_col].astype(str).to_numpy()
    uniq = sorted(set(groups))
    for g in uniq:
        s = scores[groups == g].sum(axis=0)
        meat += np.outer(s, s)
    meat *= len(uniq) / (len(uniq) - 1)
    h_inv = np.linalg.inv(hessian)
    cov_reduced = h_inv @ meat @ h_inv
    # theta = [0, beta]; the mean-zero strengths are C @ theta with C the centring matrix.
    embed = np.vstack([np.zeros((1, m - 1)), np.eye(m - 1)])
    centre = np.eye(m) - 1.0 / m
    return models, centre @ embed @ cov_reduced @ embed.T @ centre


def test_cluster_sandwich_equals_an_independent_per_battle_computation(shared_data) -> None:
    battles = _mt_bench(shared_data)
    models, expected = independent_cluster_sandwich(battles, "question_id")
    enc = encode(battles)
    assert enc.models == models
    res = rate(battles, ci="none")
    theta = res.theta[[res.models.index(m) for m in models]]
    groups = cluster_ids(battles, "prompt")
    got = cluster_sandwich_cov(enc, theta, groups.codes, groups.n_clusters)
    assert groups.n_clusters == 80
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-10)


def test_one_battle_per_cluster_is_the_plain_sandwich() -> None:
    syn = synthetic_battles(3_000, 6, seed=2)
    enc = encode(syn.battles)
    theta = rate(syn.battles, ci="none").theta
    models = rate(syn.battles, ci="none").models
    theta = theta[[models.index(m) for m in enc.models]]
    n = len(enc)
    got = cluster_sandwich_cov(enc, theta, np.arange(n), n, small_sample=False)
    np.testing.assert_allclose(got, sandwich_cov_half(aggregate(enc), theta), rtol=1e-9, atol=1e-14)


def test_clustering_by_question_widens_mt_bench_intervals(shared_data) -> None:
    battles = _mt_bench(shared_data)
    assert default_cluster(battles) == "prompt"
    res = clustered_ci(battles, by="prompt")
    deff = res.table.set_index("model")["design_effect"]
    # Another implementation measured 1.36-1.76x on these votes; each model's interval widens markedly.
    assert deff.min() > 1.25 and deff.max() < 2.0, deff
    assert res.trustworthy and res.n_clusters == 80
    # The cluster bootstrap agrees with the cluster sandwich on the widths.
    boot = clustered_ci(battles, by="prompt", method="bootstrap", rounds=400, seed=1).table.set_index("model")
    width_boot = boot["ci_high"] - boot["ci_low"]
    width_sand = res.table.set_index("model").eval("ci_high - ci_low")
    ratio = width_boot / width_sand.loc[width_boot.index]
    assert ratio.between(0.75, 1.3).all(), ratio
    # And rate() carries the same design effect and widens its own intervals by it.
    plain = rate(battles).table.set_index("model")
    clustered = rate(battles, cluster_by="prompt")
    t = clustered.table.set_index("model")
    widen = (t["ci_high"] - t["ci_low"]) / (plain["ci_high"] - plain["ci_low"])
    np.testing.assert_allclose(widen.to_numpy(), deff.loc[widen.index].to_numpy(), rtol=1e-6)
    assert "cluster-robust" in clustered.ci_method
    assert clustered.cov is not None and clustered.cov.shape == (6, 6)


def test_cluster_bootstrap_resamples_whole_clusters_reproducibly() -> None:
    # Prompt effects: within a prompt, one model is favoured in every battle; the cluster bootstrap
    # sees that noise, the battle bootstrap does not.
    rng = np.random.default_rng(0)
    syn = synthetic_battles(6_000, 5, seed=3, tie_rate=0.0)
    b = syn.battles.copy()
    b["prompt_id"] = [f"p{k}" for k in rng.integers(0, 60, len(b))]
    favoured = {f"p{k}": f"model-{rng.integers(0, 5)}" for k in range(60)}
    fav = b["prompt_id"].map(favoured)
    flip = rng.random(len(b)) < 0.35
    b.loc[flip & (fav == b["model_a"]), "winner"] = "model_a"
    b.loc[flip & (fav == b["model_b"]), "winner"] = "model_b"
    enc = encode(b)
    cells, cell_of = battle_cells(enc)
    g = cluster_ids(b, "prompt")
    theta = np.zeros(enc.n_models)
    one, _ = cluster_bootstrap_theta(cells, cell_of, g.codes, g.n_clusters, theta, rounds=50, seed=7)
    two, _ = cluster_bootstrap_theta(cells, cell_of, g.codes, g.n_clusters, theta, rounds=50, seed=7)
    np.testing.assert_array_equal(one, two)
    clus = rate(b, bootstrap=200, seed=0, cluster_by="prompt").table.set_index("model")
    iid = rate(b, bootstrap=200, seed=0).table.set_index("model")
    widths = (clus["ci_high"] - clus["ci_low"]) / (iid["ci_high"] - iid["ci_low"])
    assert widths.min() > 1.0 and widths.median() > 1.4, widths


def test_no_cluster_ids_is_a_clear_error() -> None:
    b = synthetic_battles(200, 3, seed=0).battles
    with pytest.raises(ClusterError, match="needs prompt ids.*prompt_id.*question_id"):
        rate(b, cluster_by="prompt")
    with pytest.raises(ClusterError, match="needs voter ids"):
        clustered_ci(b, by="voter")
    with pytest.raises(ValueError, match="unknown cluster kind"):
        cluster_ids(b, "judge")
    assert issubclass(ClusterError, ValueError)
    assert default_cluster(b) == "none"
    b["prompt_id"] = None
    with pytest.raises(ClusterError):
        cluster_ids(b, "prompt")


def test_few_clusters_say_so_and_fall_back_to_the_t_sandwich(shared_data) -> None:
    battles = _mt_bench(shared_data)
    few = battles[battles["question_id"].isin(range(81, 93))].reset_index(drop=True)
    res = rate(few, bootstrap=100, seed=0, cluster_by="prompt")
    assert res.clustering is not None and not res.clustering.trustworthy
    assert res.clustering.n_clusters == 12 < MIN_CLUSTERS
    assert res.clustering.method == "sandwich" and res.samples is None
    assert any("not trustworthy" in n and "falling back" in n for n in res.notes)
    assert "Student t on 11 df" in res.ci_method
    # t(11) quantile: wider than the normal one by 2.20 / 1.96.
    assert res.clustering.critical == pytest.approx(2.200985, rel=1e-5)
    direct = clustered_ci(few, by="prompt", method="bootstrap")
    assert direct.method == "sandwich" and direct.requested == "bootstrap" and not direct.trustworthy
    t = res.table.set_index("model")
    se = direct.table.set_index("model")["se"]
    np.testing.assert_allclose(((t["ci_high"] - t["ci_low"]) / 2).to_numpy(),
                               (res.clustering.critical * se.loc[t.index]).to_numpy(), rtol=1e-6)
    assert se.iloc[0] > 0 and ELO_SCALE > 0


def test_missing_ids_are_singleton_clusters() -> None:
    b = synthetic_battles(500, 4, seed=1).battles
    b["voter"] = [None if i % 5 == 0 else f"v{i % 30}" for i in range(len(b))]
    g = cluster_ids(b, "voter")
    assert g.missing == 100 and g.n_clusters == 24 + 100
    assert len(np.unique(g.codes)) == g.n_clusters
