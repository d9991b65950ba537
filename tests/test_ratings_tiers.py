"""Rank intervals, simultaneous tiers and votes needed."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import rate
from ratings.bt import ELO_SCALE
from ratings.source import load_battles
from ratings.synthetic import synthetic_battles
from ratings.tiers import competition_ranks, rank_intervals, tiers, votes_needed


def test_rank_intervals_are_the_range_of_ranks_across_rounds() -> None:
    samples = np.array([[3.0, 2.0, 1.0], [2.0, 3.0, 1.0], [3.0, 1.0, 2.0], [3.0, 2.0, 1.0]])
    assert competition_ranks(np.array([1.0, 1.0, 0.0])).tolist() == [[1, 1, 3]]
    lo, hi = rank_intervals(samples, level=1.0)
    assert lo.tolist() == [1, 1, 2] and hi.tolist() == [2, 3, 3]


def test_tiers_use_a_simultaneous_max_t_not_one_test_per_pair() -> None:
    # Three well separated groups of two near-equal models.
    rating = np.array([1200.0, 1199.0, 1100.0, 1099.0, 1000.0, 999.0])
    cov = np.eye(6) * 5.0**2
    rep = tiers([f"m{i}" for i in range(6)], rating, cov=cov, n_votes=10_000, seed=0)
    assert rep.table["tier"].tolist() == [1, 1, 2, 2, 3, 3]
    assert rep.n_tiers == 3
    # Five adjacent pairs: the simultaneous critical value is above the single-test 1.96 and below a
    # Bonferroni bound (adjacent differences are correlated).
    assert 2.0 < rep.critical < 2.58
    # A pair with t between 1.96 and the max-t value is not separated.
    mid = np.array([1000.0, 1000.0 - 2.3 * 5.0 * np.sqrt(2)])
    two = tiers(["a", "b"], mid, cov=np.eye(2) * 25.0)
    assert two.critical == pytest.approx(1.96, abs=0.05) and two.pairs["separated"].iloc[0]
    six = tiers([f"m{i}" for i in range(6)], np.array([1000.0, 1000 - 2.3 * 5 * np.sqrt(2), 800, 600, 400, 200]),
                cov=np.eye(6) * 25.0)
    assert not six.pairs["separated"].iloc[0] and six.pairs["separated"].iloc[1:].all()


def test_votes_needed_follow_the_inverse_square_root_law() -> None:
    # diff 10, se 10, critical 2: se must halve -> four times the votes -> 3n more.
    assert votes_needed(np.array([10.0]), np.array([10.0]), 1_000, 2.0).tolist() == [3_000.0]
    assert votes_needed(np.array([30.0]), np.array([10.0]), 1_000, 2.0).tolist() == [0.0]
    assert np.isinf(votes_needed(np.array([0.0]), np.array([10.0]), 1_000, 2.0)[0])


def test_votes_needed_is_confirmed_by_more_simulated_votes() -> None:
    syn = synthetic_battles(20_000, 4, seed=5, spread=0.05, uneven=False)
    res = rate(syn.battles)
    cov = res.cov * ELO_SCALE**2
    rep = tiers(res.models, res.table["rating"].to_numpy(), cov=cov, n_votes=res.n_battles, seed=0)
    pairs = rep.pairs
    need = pairs.loc[~pairs["separated"], "votes_needed"]
    assert len(need) and np.isfinite(need).all()
    # Quadrupling the data at the same mix halves every SE (up to noise).
    big = rate(synthetic_battles(80_000, 4, seed=5, spread=0.05, uneven=False).battles)
    ratio = np.sqrt(np.diag(big.cov)) / np.sqrt(np.diag(res.cov))
    assert np.allclose(ratio, 0.5, atol=0.05)


def test_mt_bench_tiers_from_bootstrap_samples(shared_data) -> None:
    battles = load_battles(shared_data("mt-bench-human/human_judgments_turn1.jsonl")).battles
    res = rate(battles, bootstrap=500, seed=0)
    rep = tiers(res.models, res.table["rating"].to_numpy(), samples=res.samples.to_numpy(), n_votes=res.n_battles)
    t = rep.table.set_index("model")
    # Claude-v1 and GPT-3.5 are 3 Elo apart: one tier, and each can be rank 2 or 3.
    assert t.loc["claude-v1", "tier"] == t.loc["gpt-3.5-turbo", "tier"]
    assert (t.loc["claude-v1", "rank_low"], t.loc["claude-v1", "rank_high"]) == (2, 3)
    assert t.loc["gpt-4", "tier"] == 1 and t.loc["gpt-4", "rank_high"] == 1
    assert rep.method == "bootstrap max-t"
    row = rep.pairs.set_index("upper").loc["claude-v1"]
    assert not row["separated"] and row["votes_needed"] > 10 * res.n_battles


def test_bad_tier_inputs() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        tiers(["a", "b"], np.zeros(2))
    with pytest.raises(ValueError, match="model names"):
        tiers(["a"], np.zeros(2), cov=np.eye(2))
