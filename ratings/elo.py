"""Online Elo (K=4, as on Chatbot Arena's first leaderboard), for comparison only.

Order-dependent and never converges to a fixed point, which is why the leaderboard uses Bradley-Terry; it
is kept so a reader can see how far the two disagree on their data. It is inherently sequential: one pass.
"""

from __future__ import annotations

import numpy as np

from ratings.encode import A_WINS, B_WINS, Encoded

ONLINE_K = 4.0
ONLINE_SCALE = 400.0
ONLINE_BASE = 10.0
ONLINE_INIT = 1000.0


def online_elo(enc: Encoded, *, k: float = ONLINE_K) -> np.ndarray:
    """Ratings after one pass over the battles in their given order (ties and both-bad score 0.5)."""
    rating = [ONLINE_INIT] * enc.n_models
    score = np.where(enc.outcome == A_WINS, 1.0, np.where(enc.outcome == B_WINS, 0.0, 0.5)).tolist()
    for a, b, sa in zip(enc.a.tolist(), enc.b.tolist(), score, strict=True):
        ra, rb = rating[a], rating[b]
        ea = 1.0 / (1.0 + ONLINE_BASE ** ((rb - ra) / ONLINE_SCALE))
        rating[a] = ra + k * (sa - ea)
        rating[b] = rb + k * (ea - sa)
    return np.asarray(rating)
