"""Pairwise matrices a reader looks at beside the leaderboard (rows and columns ordered best first)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ratings.bt import sigmoid


def battle_counts(wins: np.ndarray, ties: np.ndarray, models: list[str]) -> pd.DataFrame:
    """Battles between each pair (symmetric)."""
    return pd.DataFrame(wins + wins.T + ties, index=models, columns=models)


def win_fraction(wins: np.ndarray, models: list[str]) -> pd.DataFrame:
    """Fraction of the row model's wins over the column model among their non-tied battles (NaN if none)."""
    decisive = wins + wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(decisive > 0, wins / decisive, np.nan)
    return pd.DataFrame(frac, index=models, columns=models)


def predicted_win(theta: np.ndarray, models: list[str]) -> pd.DataFrame:
    """P(row beats column | not a tie) under the fitted model: logistic in the log-strength difference.

    The same formula holds for Davidson, whose decisive outcomes also follow Bradley-Terry.
    """
    p = sigmoid(theta[:, None] - theta[None, :])
    np.fill_diagonal(p, np.nan)
    return pd.DataFrame(p, index=models, columns=models)


def reorder(frame: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    return frame.loc[order, order]
