"""Reweighted Bradley-Terry (inverse-propensity weights from the arena's sampler): weights of 1 change
nothing, a constant weight changes nothing, and uneven weights widen the intervals as they should."""

from __future__ import annotations

import numpy as np
import pytest

from ratings.leaderboard import rate
from ratings.synthetic import synthetic_battles


@pytest.fixture
def battles():
    return synthetic_battles(6000, 6, seed=5).battles


@pytest.mark.parametrize("ci", ["analytic", "bootstrap"])
def test_constant_weights_are_the_unweighted_fit(battles, ci) -> None:
    kw = {"ci": ci, "bootstrap": 200 if ci == "bootstrap" else 0, "seed": 1}
    plain = rate(battles, **kw).table.set_index("model")
    weighted = rate(battles, weights=np.full(len(battles), 3.0), **kw).table.set_index("model")
    assert np.allclose(weighted["rating"], plain.loc[weighted.index, "rating"], atol=1e-6)
    width = (weighted["ci_high"] - weighted["ci_low"]) / (plain["ci_high"] - plain["ci_low"]).loc[weighted.index]
    # analytic: the same sandwich; bootstrap: a Poisson resample of battles instead of a multinomial of cells
    assert np.allclose(width, 1.0, atol=1e-9 if ci == "analytic" else 0.25)


def test_inverse_propensity_weights_undo_a_sampler_that_favours_a_pair(battles) -> None:
    rng = np.random.default_rng(0)
    pairs = battles[["model_a", "model_b"]].apply(lambda r: tuple(sorted(r)), axis=1)
    favoured = pairs.iloc[0]
    # the sampler showed the favoured pair 5x as often: keep every one of its battles, a fifth of the rest
    keep = (pairs == favoured).to_numpy() | (rng.random(len(battles)) < 0.2)
    shown = battles.loc[keep].reset_index(drop=True)
    p = np.where((pairs[keep] == favoured).to_numpy(), 5.0, 1.0)
    res = rate(shown, weights=1.0 / p)
    plain = rate(shown)
    assert "weighted" not in plain.ci_method
    widths = (res.table["ci_high"] - res.table["ci_low"]).mean()
    assert widths > (plain.table["ci_high"] - plain.table["ci_low"]).mean()  # uneven weights cost precision


def test_bad_weights_are_refused(battles) -> None:
    with pytest.raises(ValueError, match="finite positive"):
        rate(battles, weights=np.zeros(len(battles)))
    with pytest.raises(ValueError, match="half ties"):
        rate(battles, weights=np.ones(len(battles)), ties="davidson")
