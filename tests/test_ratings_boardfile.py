"""Leaderboard files as rankings: Arena-Hard's fixed baseline (one bootstrap value) is accepted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ratings.boardfile import BoardFileError, ranking_from_board


def test_a_baseline_with_a_single_bootstrap_value_is_fixed_across_rounds() -> None:
    board = pd.DataFrame({"model": ["gpt-4-0314", "m1", "m2"], "score": [50.0, 70.0, 30.0],
                          "bootstrap": [[50.0], [69.0, 71.0, 70.0, 72.0], [29.0, 31.0, 30.0, 28.0]]})
    r = ranking_from_board(board, "board.json")
    assert r.samples.shape == (4, 3)
    assert (r.samples["gpt-4-0314"] == 50.0).all()
    assert r.ci.loc["gpt-4-0314"].tolist() == [50.0, 50.0]
    assert r.ci.loc["m1", "ci_low"] < 70 < r.ci.loc["m1", "ci_high"]


def test_a_baseline_without_samples_is_fixed_at_its_rating() -> None:
    board = pd.DataFrame({"model": ["base", "m1"], "rating": [50.0, 60.0],
                          "bootstrap": [np.nan, [59.0, 61.0]]})
    r = ranking_from_board(board)
    assert r.samples["base"].tolist() == [50.0, 50.0]


def test_ragged_samples_are_still_an_error() -> None:
    board = pd.DataFrame({"model": ["a", "b", "c"], "rating": [1.0, 2.0, 3.0],
                          "bootstrap": [[1.0, 2.0], [2.0, 2.0, 2.0], [3.0]]})
    with pytest.raises(BoardFileError, match="same number of bootstrap samples.*found 2, 3"):
        ranking_from_board(board, "ragged.json")
    with pytest.raises(BoardFileError, match="needs a model"):
        ranking_from_board(pd.DataFrame({"name": ["a"], "rating": [1.0]}))
    with pytest.raises(BoardFileError, match="appears twice"):
        ranking_from_board(pd.DataFrame({"model": ["a", "a"], "rating": [1.0, 2.0]}))


def test_plain_intervals_and_bare_ratings() -> None:
    r = ranking_from_board(pd.DataFrame({"model": ["a", "b"], "rating": [2.0, 1.0], "ci_low": [1.5, 0.5],
                                         "ci_high": [2.5, 1.5]}))
    assert r.samples is None and r.ci.loc["a"].tolist() == [1.5, 2.5]
    bare = ranking_from_board(pd.DataFrame({"model": ["a"], "rating": [2.0]}))
    assert bare.ci is None and bare.rating["a"] == 2.0
