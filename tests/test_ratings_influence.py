"""Influence audit: the votes it names really flip the pair when dropped, and fewer do not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ratings import rate
from ratings.influence import influence_audit, rank1_sentence
from ratings.source import load_battles
from ratings.synthetic import synthetic_battles


def _order(battles) -> list[str]:
    return rate(battles, ci="none").table["model"].tolist()


def test_dropping_the_named_votes_flips_the_pair_and_one_fewer_does_not(shared_data) -> None:
    battles = load_battles(shared_data("mt-bench-human/human_judgments_turn1.jsonl")).battles
    rep = influence_audit(battles)
    assert rep.top is not None and rep.top.upper == "gpt-4" and rep.top.confirmed
    for flip in [rep.top, *rep.pairs]:
        assert flip.confirmed and len(flip.battles) == flip.n_votes
        kept = battles.drop(index=flip.battles)
        order = _order(kept)
        assert order.index(flip.lower) < order.index(flip.upper), flip
        # The same votes but the last: the original order holds (the count is the smallest along this order).
        order = _order(battles.drop(index=flip.battles[:-1]))
        assert order.index(flip.upper) < order.index(flip.lower), flip
    sentence = rank1_sentence(rep)
    assert sentence.startswith("rank 1 (gpt-4) holds unless these ") and "% of all) are dropped" in sentence


def test_refits_confirm_the_count_on_synthetic_battles() -> None:
    syn = synthetic_battles(50_000, 8, seed=2)
    rep = influence_audit(syn.battles)
    order = _order(syn.battles)
    assert [p.upper for p in rep.pairs] == order[:-1]
    for p in rep.pairs:
        assert p.confirmed
        assert 0 < p.share < 1
        assert p.refit_gap < 0 < p.gap
    # Closer pairs fall to fewer votes.
    gaps = np.array([p.gap for p in rep.pairs])
    votes = np.array([p.n_votes for p in rep.pairs])
    assert votes[np.argmin(gaps)] <= np.median(votes)


def test_a_pair_that_cannot_flip_says_so() -> None:
    # b never beats a: dropping a's wins can at most leave a tie-free zero-gap pair, never b above a.
    b = pd.DataFrame({"model_a": ["a"] * 30 + ["b"] * 10, "model_b": ["b"] * 30 + ["a"] * 10,
                      "winner": ["model_a"] * 20 + ["tie"] * 10 + ["tie"] * 10})
    rep = influence_audit(b)
    assert rep.top is not None
    assert rep.top.n_votes is None or rep.top.confirmed
