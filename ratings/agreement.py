"""Per-vote agreement between two voters (humans, a judge) on the pairs both judged.

Follows Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena" (NeurIPS Datasets and
Benchmarks), sec. 4.2 and Table 3: agreement is the probability that a vote of one type and a vote of the
other type on the same question and model pair agree. Setup "w/ tie" (S1) counts every vote, a tie agreeing
only with a tie; "w/o tie" (S2) drops every comparison in which either vote is a tie. Several votes on one
pair (MT-bench has several expert judges per pair) count the way FastChat's ``compute_agreement.py`` counts
them: every (reference vote, candidate vote) combination on the pair is one comparison.

A pair is matched on (prompt_id, turn, unordered model pair); winners are mapped to one orientation (the
alphabetically first model is side "a"), so a vote cast with the models in swapped positions still matches.
Comparing a source with itself gives the voters' agreement with each other (the paper's human-human row).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

LABELS: tuple[str, str, str] = ("a", "tie", "b")  # a: the alphabetically first model of the pair wins
KEY = ["prompt_id", "turn", "model_1", "model_2"]


def canonical_votes(battles: pd.DataFrame) -> pd.DataFrame | None:
    """One row per vote with a pair key independent of position: prompt_id, turn, model_1 < model_2, label.

    None when the battles have no prompt_id column (a plain model_a,model_b,winner file): votes cannot be
    matched across sources without knowing what was asked."""
    if "prompt_id" not in battles:
        return None
    b = battles[battles["prompt_id"].notna()]
    a_first = (b["model_a"] < b["model_b"]).to_numpy()
    winner = b["winner"].astype(str).to_numpy()
    is_tie = np.char.startswith(winner.astype(str), "tie")
    a_won = winner == "model_a"
    # Label relative to model_1 (the alphabetically first name), whatever position it had.
    label = np.where(is_tie, "tie", np.where(a_won == a_first, "a", "b"))
    turn = b["turn"].fillna(1).astype(int) if "turn" in b else pd.Series(1, index=b.index)
    return pd.DataFrame({
        "prompt_id": b["prompt_id"].astype(str).to_numpy(),
        "turn": turn.to_numpy(),
        "model_1": np.where(a_first, b["model_a"], b["model_b"]),
        "model_2": np.where(a_first, b["model_b"], b["model_a"]),
        "label": label,
        "id": b["id"].fillna("").astype(str).to_numpy() if "id" in b else "",
        "voter": b["voter"].fillna("").astype(str).to_numpy() if "voter" in b else "",
    })


@dataclass(frozen=True)
class VoteAgreement:
    pairs_matched: int  # (prompt, turn, model pair) keys both sides voted on
    reference_votes: int  # votes on those pairs
    candidate_votes: int
    comparisons_with_tie: int  # (reference vote, candidate vote) combinations
    agreement_with_tie: float
    comparisons_without_tie: int
    agreement_without_tie: float
    cohen_kappa: float  # on the 3-label confusion matrix (a, tie, b)
    cohen_kappa_without_tie: float
    labels: tuple[str, ...]
    confusion: list[list[int]]  # rows: reference label, columns: candidate label, in ``labels`` order

    def to_dict(self) -> dict:
        return asdict(self)


def cohen_kappa(confusion: np.ndarray) -> float:
    """Cohen's kappa from a square confusion matrix of counts (rows one rater, columns the other)."""
    total = confusion.sum()
    if total == 0:
        return float("nan")
    observed = np.trace(confusion) / total
    expected = float((confusion.sum(axis=1) @ confusion.sum(axis=0)) / total**2)
    return float("nan") if expected == 1.0 else float((observed - expected) / (1.0 - expected))


def vote_agreement(reference: pd.DataFrame, candidate: pd.DataFrame) -> VoteAgreement | None:
    """Agreement of two sets of battles on the pairs both judged; None when they share no pair (or either
    side has no prompt_id to match on)."""
    ref, cand = canonical_votes(reference), canonical_votes(candidate)
    if ref is None or cand is None:
        return None
    # An inner merge on the pair key yields exactly the cross product of votes per pair.
    both = ref.merge(cand, on=KEY, suffixes=("_ref", "_cand"))
    # A vote is not compared with itself, nor with another vote by the same person: the paper's agreement
    # is between "randomly selected individuals (but not identical)", which is what makes human-human
    # agreement (reference and candidate the same source) a meaningful ceiling.
    same = (((both["id_ref"] != "") & (both["id_ref"] == both["id_cand"]))
            | ((both["voter_ref"] != "") & (both["voter_ref"] == both["voter_cand"])))
    both = both[~same]
    if both.empty:
        return None
    keys = both[KEY].drop_duplicates()
    matched_ref = ref.merge(keys, on=KEY)
    matched_cand = cand.merge(keys, on=KEY)
    index = {label: i for i, label in enumerate(LABELS)}
    confusion = np.zeros((3, 3), dtype=np.int64)
    np.add.at(confusion, (both["label_ref"].map(index).to_numpy(), both["label_cand"].map(index).to_numpy()), 1)
    no_tie = confusion[np.ix_([0, 2], [0, 2])]
    n_with, n_without = int(confusion.sum()), int(no_tie.sum())
    return VoteAgreement(
        pairs_matched=len(keys),
        reference_votes=len(matched_ref),
        candidate_votes=len(matched_cand),
        comparisons_with_tie=n_with,
        agreement_with_tie=float(np.trace(confusion) / n_with),
        comparisons_without_tie=n_without,
        agreement_without_tie=float(np.trace(no_tie) / n_without) if n_without else float("nan"),
        cohen_kappa=cohen_kappa(confusion),
        cohen_kappa_without_tie=cohen_kappa(no_tie),
        labels=LABELS,
        confusion=confusion.tolist(),
    )
