"""Bootstrap and analytic confidence intervals."""

from __future__ import annotations

import choix
import numpy as np
import pytest

from ratings import bootstrap_ratings, rate
from ratings.bootstrap import bootstrap_theta, resample_counts
from ratings.bt import fit_bt, half_wins
from ratings.encode import aggregate, cell_matrices, encode
from ratings.synthetic import synthetic_battles


def test_seeded_bootstrap_is_reproducible_and_the_seed_matters() -> None:
    syn = synthetic_battles(5_000, 6, seed=1)
    a = bootstrap_ratings(syn.battles, rounds=20, seed=7)
    b = bootstrap_ratings(syn.battles, rounds=20, seed=7)
    c = bootstrap_ratings(syn.battles, rounds=20, seed=8)
    assert a.shape == (20, 6)
    assert a.equals(b)
    assert not np.allclose(a.to_numpy(), c.to_numpy())


def test_resample_keeps_the_battle_count() -> None:
    cells = aggregate(encode(synthetic_battles(3_000, 5, seed=2).battles))
    counts = resample_counts(cells, 10, seed=0)
    assert counts.shape == (10, len(cells.count))
    assert np.all(counts.sum(axis=1) == 3_000)


def test_resampled_rounds_do_not_depend_on_the_number_of_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    # The draws run on threads in blocks; a user on 1 CPU and one on 64 must get the same intervals.
    cells = aggregate(encode(synthetic_battles(3_000, 5, seed=2).battles))
    threaded = resample_counts(cells, 60, seed=3)
    monkeypatch.setattr("ratings.bootstrap._usable_cpus", lambda: 1)
    serial = resample_counts(cells, 60, seed=3)
    assert np.array_equal(threaded, serial)
    assert len({row.tobytes() for row in serial}) == 60  # every round its own draw, blocks included


def test_batched_rounds_equal_one_choix_fit_per_round() -> None:
    syn = synthetic_battles(8_000, 7, seed=3)
    cells = aggregate(encode(syn.battles))
    w, t = cell_matrices(cells)
    theta = fit_bt(half_wins(w, t))
    batched, _ = bootstrap_theta(cells, theta, rounds=5, seed=4)
    counts = resample_counts(cells, 5, seed=4)
    for r in range(5):
        wr, tr = cell_matrices(cells, counts[r])
        ref = choix.ilsr_pairwise_dense(half_wins(wr, tr), max_iter=10_000, tol=1e-12)
        assert np.allclose(batched[r], ref - ref.mean(), atol=1e-7)


def test_bootstrap_intervals_cover_the_truth_and_match_analytic_width() -> None:
    syn = synthetic_battles(20_000, 6, seed=5, tie_rate=0.0)
    boot = rate(syn.battles, bootstrap=200, seed=0).table.set_index("model")
    ana = rate(syn.battles).table.set_index("model")
    true_elo = {m: 1000 + 400 / np.log(10) * t for m, t in syn.true_theta.items()}
    covered = sum(boot.loc[m, "ci_low"] <= v <= boot.loc[m, "ci_high"] for m, v in true_elo.items())
    assert covered >= 5
    wb = (boot["ci_high"] - boot["ci_low"]).to_numpy()
    wa = (ana.loc[boot.index, "ci_high"] - ana.loc[boot.index, "ci_low"]).to_numpy()
    assert np.all(wb > 0) and np.allclose(wb, wa, rtol=0.3)


def test_sandwich_interval_tracks_the_bootstrap_when_ties_are_common() -> None:
    # Half a win per tie is not a binomial outcome; the sandwich must still match what resampling shows.
    syn = synthetic_battles(20_000, 5, seed=6, tie_rate=0.5)
    ana = rate(syn.battles, ci="analytic").table.set_index("model")
    boot = rate(syn.battles, bootstrap=300, seed=2).table.set_index("model").loc[ana.index]
    wa = (ana["ci_high"] - ana["ci_low"]).to_numpy()
    wb = (boot["ci_high"] - boot["ci_low"]).to_numpy()
    assert np.allclose(wa, wb, rtol=0.25), (wa, wb)


def test_davidson_bootstrap_runs_batched() -> None:
    syn = synthetic_battles(10_000, 5, seed=9, davidson_nu=0.5)
    res = rate(syn.battles, ties="davidson", bootstrap=30, seed=1)
    assert res.samples is not None and res.samples.shape == (30, 5)
    t = res.table
    assert np.all(t["ci_low"] <= t["rating"]) and np.all(t["rating"] <= t["ci_high"])


def test_bootstrap_ci_needs_rounds() -> None:
    syn = synthetic_battles(500, 3, seed=0)
    with pytest.raises(ValueError, match="--bootstrap N"):
        rate(syn.battles, ci="bootstrap")
