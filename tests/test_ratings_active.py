"""Active pair sampling: a pure function from counts, ratings and covariance to pair probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from ratings.active import (
    SamplingPolicy,
    bt_covariance,
    pair_probabilities,
    probability_table,
    variance_reduction,
)
from ratings.analytic import sandwich_cov_half
from ratings.bt import ELO_SCALE, fit_bt, half_wins
from ratings.encode import aggregate, cell_matrices, encode
from ratings.synthetic import synthetic_battles


def _state(n: int = 20_000, m: int = 6, seed: int = 0):
    syn = synthetic_battles(n, m, seed=seed, spread=0.6, uneven=False)
    cells = aggregate(encode(syn.battles))
    w, t = cell_matrices(cells)
    theta = fit_bt(half_wins(w, t))
    return cells, w, t, theta


def test_matrix_covariance_equals_the_cell_sandwich() -> None:
    cells, w, t, theta = _state()
    np.testing.assert_allclose(bt_covariance(w, t, theta), sandwich_cov_half(cells, theta), rtol=1e-9, atol=1e-14)


def test_probabilities_are_a_distribution_with_a_floor() -> None:
    _, w, t, theta = _state()
    n = w + w.T + t
    policy = SamplingPolicy(floor=0.2, new_model_battles=0)
    p = pair_probabilities(n, theta, bt_covariance(w, t, theta), policy)
    upper = p[np.triu_indices(6, 1)]
    assert upper.sum() == pytest.approx(1.0)
    assert np.allclose(p, p.T) and np.all(np.diag(p) == 0)
    assert upper.min() >= 0.2 / len(upper) - 1e-15
    table = probability_table([f"m{i}" for i in range(6)], p)
    assert len(table) == 15 and table["probability"].is_monotonic_decreasing


def test_the_closest_adjacent_pair_is_favoured() -> None:
    # Two models 5 Elo apart among well separated ones: separating them is where votes help most.
    theta = np.array([400.0, 200.0, 5.0, 0.0, -200.0, -400.0]) / ELO_SCALE
    theta -= theta.mean()
    cov = np.eye(6) * (30.0 / ELO_SCALE) ** 2
    cov = (np.eye(6) - 1 / 6) @ cov @ (np.eye(6) - 1 / 6)
    p = pair_probabilities(np.full((6, 6), 1_000.0), theta, cov, SamplingPolicy(new_model_battles=0))
    i, j = np.unravel_index(np.argmax(p), p.shape)
    assert {int(i), int(j)} == {2, 3}
    # A vote on a lopsided pair (400 vs -400) barely helps.
    assert p[0, 5] < 0.2 * p[2, 3]
    red = variance_reduction(theta, cov, SamplingPolicy())
    assert red[2, 3] == red.max()


def test_a_precision_goal_favours_the_least_certain_model() -> None:
    theta = np.zeros(4)
    cov = np.diag([1.0, 1.0, 1.0, 9.0]) * 1e-3
    policy = SamplingPolicy(new_model_battles=0, target_ci_elo=1.0, resolution_elo=1_000.0)
    p = pair_probabilities(np.full((4, 4), 500.0), theta, cov, policy)
    assert p[3, :3].min() > p[:3, :3][np.triu_indices(3, 1)].max()


def test_new_and_unrated_models_are_boosted() -> None:
    _, w, t, theta = _state(m=5)
    n = w + w.T + t
    m = 6
    counts = np.zeros((m, m))
    counts[:5, :5] = n
    th = np.r_[theta, 0.0]
    cov = np.full((m, m), np.nan)
    cov[:5, :5] = bt_covariance(w, t, theta)
    p = pair_probabilities(counts, th, cov, SamplingPolicy(new_model_boost=5.0))
    new_pairs = p[5, :5]
    old_pairs = p[:5, :5][np.triu_indices(5, 1)]
    assert new_pairs.min() > old_pairs.max()
    assert p[np.triu_indices(m, 1)].sum() == pytest.approx(1.0)


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        SamplingPolicy(floor=1.5)
    with pytest.raises(ValueError):
        SamplingPolicy(target_ci_elo=0)
    with pytest.raises(ValueError, match="two models"):
        pair_probabilities(np.zeros((1, 1)), np.zeros(1), None)
