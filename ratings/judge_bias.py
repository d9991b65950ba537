"""Judge biases measurable from votes alone: position, verbosity, self-preference.

Position and self-enhancement bias are the ones Zheng et al. 2023 ("Judging LLM-as-a-Judge", sec. 3.3 and
Table 2) measure; verbosity is read here as the win rate of the longer answer, as Arena-Hard's style
analysis (Li et al. 2024) and Chatbot Arena's style control treat length.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ratings.agreement import canonical_votes
from votes.files import parse_json


def _paired_battles(battles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(consistent, position score sum) per pair voted in both orders by one voter, from separate battles
    (Arena-Hard judgments imported game by game)."""
    if "prompt_id" not in battles:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=int)
    b = battles[battles["prompt_id"].notna()]
    canon = canonical_votes(b)
    assert canon is not None  # b has a prompt_id column
    canon["source"] = b["source"].to_numpy() if "source" in b else ""
    canon["a_first"] = (b["model_a"] < b["model_b"]).to_numpy()
    # Position score: +1 when the answer shown first won, -1 when the second won, 0 for a tie.
    canon["pos"] = np.where(canon["label"] == "tie", 0, np.where((canon["label"] == "a") == canon["a_first"], 1, -1))
    # Only one voter's two verdicts can show that voter's position bias; votes of two people in two orders
    # would measure their disagreement instead.
    key = ["source", "voter", "prompt_id", "turn", "model_1", "model_2"]
    first = canon.drop_duplicates([*key, "a_first"])
    both = first[first.groupby(key)["a_first"].transform("size") == 2]
    if both.empty:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=int)
    g = both.groupby(key)
    return (g["label"].nunique() == 1).to_numpy(), g["pos"].sum().to_numpy()


STRENGTH = {"A>>B": 1, "A>B": 1, "A=B": 0, "B>A": -1, "B>>A": -1}


def _embedded_games(battles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The same from battles that carry both games in ``judge_detail["games"]`` (CodeArena's duel: one
    combined battle per pair, each game with its ``score`` label and ``swapped`` flag)."""
    consistent, pos_sum = [], []
    for detail in battles["judge_detail"].dropna() if "judge_detail" in battles else []:
        try:
            d = parse_json(detail, "judge_detail") if isinstance(detail, str) else detail
        except ValueError:
            continue  # not a judge's detail: nothing to measure
        raw_games = d.get("games") if isinstance(d, dict) else None
        games = [g for g in (raw_games if isinstance(raw_games, list) else [])
                 if isinstance(g, dict) and g.get("score") in STRENGTH]
        plain = [g for g in games if not g.get("swapped")]
        swapped = [g for g in games if g.get("swapped")]
        if not plain or not swapped:
            continue
        pos1, pos2 = STRENGTH[plain[0]["score"]], STRENGTH[swapped[0]["score"]]  # +1: position A won
        # From model_a's side: it sits in A in the plain game and in B in the swapped one.
        consistent.append(pos1 == -pos2)
        pos_sum.append(pos1 + pos2)
    return np.array(consistent, dtype=bool), np.array(pos_sum, dtype=int)


def position_consistency(battles: pd.DataFrame) -> dict | None:
    """Share of pairs judged in both orders whose verdict survives the swap (MT-bench paper Table 2).

    Pairs come from two battles in opposite orientations by one voter (source, voter, prompt_id, turn,
    unordered model pair; the first vote in each orientation counts) or from one battle whose judge_detail
    holds both games. An inconsistent pair is "biased to first" when the answer in position A did better
    over the two games, "biased to second" when the one in position B did."""
    if battles.empty or "prompt_id" not in battles:
        return None
    c1, p1 = _paired_battles(battles)
    c2, p2 = _embedded_games(battles)
    consistent, pos_sum = np.concatenate([c1, c2]), np.concatenate([p1, p2])
    n = len(consistent)
    if n == 0:
        return None
    return {
        "pairs": int(n),
        "consistent": float(consistent.mean()),
        "biased_to_first": float(((~consistent) & (pos_sum > 0)).sum() / n),
        "biased_to_second": float(((~consistent) & (pos_sum < 0)).sum() / n),
        "other_inconsistent": float(((~consistent) & (pos_sum == 0)).sum() / n),
    }


def longer_answer_win_rate(battles: pd.DataFrame) -> dict | None:
    """Win rate of the longer answer (characters) over decisive votes on answers of different length."""
    if "answer_a" not in battles or "answer_b" not in battles:
        return None
    b = battles[battles["answer_a"].notna() & battles["answer_b"].notna()]
    b = b[b["winner"].isin(["model_a", "model_b"])]
    len_a, len_b = b["answer_a"].str.len().to_numpy(), b["answer_b"].str.len().to_numpy()
    differ = len_a != len_b
    if not differ.any():
        return None
    longer_won = np.where(len_a > len_b, b["winner"].to_numpy() == "model_a", b["winner"].to_numpy() == "model_b")
    return {"votes": int(differ.sum()), "longer_wins": float(longer_won[differ].mean())}


def family(name: str) -> str:
    """Model family: the leading letters of the name ("gpt-3.5-turbo" -> "gpt", "claude-v1" -> "claude")."""
    m = re.match(r"[a-z]+", name.lower())
    return m.group(0) if m else name.lower()


def _family_win_rate(battles: pd.DataFrame, fam: str) -> tuple[int, float]:
    fa = battles["model_a"].map(family) == fam
    fb = battles["model_b"].map(family) == fam
    b = battles[fa ^ fb]
    if b.empty:
        return 0, float("nan")
    own_is_a = (b["model_a"].map(family) == fam).to_numpy()
    w = b["winner"].to_numpy()
    score = np.where(np.char.startswith(w.astype(str), "tie"), 0.5,
                     np.where((w == "model_a") == own_is_a, 1.0, 0.0))
    return len(b), float(score.mean())


def self_preference(judge_name: str, judge_battles: pd.DataFrame, reference: pd.DataFrame) -> dict | None:
    """How much more the judge favours its own family's models than the reference voters do, on battles
    with exactly one model of the judge's family (ties count half). None when no such battle exists."""
    fam = family(judge_name)
    n_judge, judge_rate = _family_win_rate(judge_battles, fam)
    if n_judge == 0:
        return None
    n_ref, ref_rate = _family_win_rate(reference, fam)
    return {"family": fam, "judge_battles": n_judge, "judge_win_rate": judge_rate, "reference_battles": n_ref,
            "reference_win_rate": ref_rate, "difference": judge_rate - ref_rate if n_ref else float("nan")}
