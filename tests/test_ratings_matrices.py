"""Pairwise matrices and the online Elo kept for comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ratings import rate
from ratings.elo import online_elo
from ratings.encode import encode
from ratings.matrices import battle_counts, predicted_win, win_fraction


def test_online_elo_follows_the_k4_update_by_hand() -> None:
    df = pd.DataFrame({"model_a": ["a", "a", "b"], "model_b": ["b", "b", "a"],
                       "winner": ["model_a", "tie", "model_a"]})
    r = dict(zip(encode(df).models, online_elo(encode(df)), strict=True))
    ra = rb = 1000.0
    for x, s in [("a", 1.0), ("a", 0.5), ("b", 1.0)]:  # (model_a, score of model_a)
        rx, ry = (ra, rb) if x == "a" else (rb, ra)
        e = 1 / (1 + 10 ** ((ry - rx) / 400))
        rx, ry = rx + 4 * (s - e), ry - 4 * (s - e)
        ra, rb = (rx, ry) if x == "a" else (ry, rx)
    assert r["a"] == pytest.approx(ra) and r["b"] == pytest.approx(rb)


def test_matrices_from_a_small_known_set() -> None:
    df = pd.DataFrame({"model_a": ["a", "a", "a", "b", "c"], "model_b": ["b", "b", "c", "a", "a"],
                       "winner": ["model_a", "tie", "model_a", "model_a", "model_b"]})
    res = rate(df)
    counts = battle_counts(res.wins, res.ties, res.models)
    assert counts.loc["a", "b"] == counts.loc["b", "a"] == 3
    assert counts.loc["a", "c"] == 2
    frac = win_fraction(res.wins, res.models)
    assert frac.loc["a", "b"] == pytest.approx(0.5)  # one win each, the tie left out
    assert frac.loc["a", "c"] == pytest.approx(1.0)
    assert np.isnan(frac.loc["b", "c"])  # never met
    pred = predicted_win(res.theta, res.models)
    assert pred.loc["a", "c"] == pytest.approx(1 - pred.loc["c", "a"])
    assert pred.loc["a", "c"] > 0.5
