"""Validate one ranking against another: human votes vs an LLM judge's, a benchmark vs the arena.

Pure: battles DataFrames or leaderboards in, a :class:`ValidationReport` out. Loading a source (a DB, a file)
is the caller's job (``codearena validate``).

What it reports, and where each definition comes from:
- per-vote agreement w/ and w/o tie, Cohen's kappa, confusion matrix (Zheng et al. 2023): ratings.agreement;
- ranking agreement of the two Bradley-Terry leaderboards: Spearman's rho and Kendall's tau on the models
  both rank;
- separability with 95% CI, agreement with 95% CI, pair-rank Brier score (Li et al. 2024, arXiv:2406.11939,
  sec. 3): ratings.separability;
- judge biases (position consistency, longer-answer win rate, self-preference): ratings.judge_bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ratings.agreement import VoteAgreement, vote_agreement
from ratings.judge_bias import longer_answer_win_rate, position_consistency, self_preference
from ratings.leaderboard import check_settings, rate
from ratings.separability import (
    RankingLike,
    confidence_agreement,
    intervals,
    pair_rank_brier,
    separability,
)


@dataclass
class Side:
    """One side of a validation: a name, and battles (votes) and/or a leaderboard."""

    name: str
    battles: pd.DataFrame | None = None
    ranking: RankingLike | None = None
    notes: list[str] = field(default_factory=list)  # what loading left out (named, flagged votes)


def rank_battles(battles: pd.DataFrame, bootstrap: int, seed: int) -> RankingLike:
    """BT point ratings (half ties) with, when ``bootstrap`` > 0, the replicates and their 95% intervals."""
    res = rate(battles, bootstrap=bootstrap, seed=seed, ci="bootstrap" if bootstrap > 0 else "none")
    table = res.table.set_index("model")
    rating = table["rating"].astype(float)
    if bootstrap <= 0:
        return RankingLike(rating=rating)
    samples = res.samples if len(res.components) <= 1 else None
    ci = samples_ci = table[["ci_low", "ci_high"]].astype(float)
    if samples is not None:
        samples_ci = intervals(samples[rating.index])
    return RankingLike(rating=rating, ci=samples_ci if samples is not None else ci, samples=samples)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def board_rows(r: RankingLike) -> list[dict[str, Any]]:
    order = r.rating.sort_values(ascending=False)
    rows = []
    for rank, (model, rating) in enumerate(order.items(), 1):
        row = {"model": model, "rating": float(rating), "rank": rank, "ci_low": None, "ci_high": None}
        if r.ci is not None and model in r.ci.index:
            row["ci_low"], row["ci_high"] = float(r.ci.at[model, "ci_low"]), float(r.ci.at[model, "ci_high"])
        rows.append(row)
    return rows


@dataclass
class ValidationReport:
    reference: str
    candidate: str
    models: list[str]  # ranked by both
    bootstrap: int
    seed: int
    vote_agreement: VoteAgreement | None
    leaderboards: dict[str, list[dict[str, Any]]]
    spearman: float
    kendall_tau: float
    separability: dict[str, float]  # reference, candidate (95% CI)
    confidence_agreement: float
    brier_score: float
    judge_biases: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "reference": self.reference,
            "candidate": self.candidate,
            "models": self.models,
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "vote_agreement": self.vote_agreement.to_dict() if self.vote_agreement else None,
            "ranking_agreement": {"spearman": self.spearman, "kendall_tau": self.kendall_tau},
            "separability": self.separability,
            "confidence_agreement": self.confidence_agreement,
            "brier_score": self.brier_score,
            "judge_biases": self.judge_biases,
            "leaderboards": self.leaderboards,
            "notes": self.notes,
        })


def validate(reference: Side, candidate: Side, *, bootstrap: int = 1000, seed: int = 0) -> ValidationReport:
    """Compare ``candidate`` with ``reference`` (the ground truth, usually human votes)."""
    check_settings(bootstrap=bootstrap, seed=seed)
    notes: list[str] = [*reference.notes, *candidate.notes]
    ranks: dict[str, RankingLike] = {}
    for role, side in (("reference", reference), ("candidate", candidate)):
        if side.ranking is not None:
            ranks[role] = side.ranking
        elif side.battles is not None and len(side.battles):
            ranks[role] = rank_battles(side.battles, bootstrap, seed)
        else:
            raise ValueError(f"{role} {side.name!r} has no battles and no leaderboard")
    ref, cand = ranks["reference"], ranks["candidate"]
    models = sorted(set(ref.rating.index) & set(cand.rating.index))
    only = sorted(set(ref.rating.index) ^ set(cand.rating.index))
    if only:
        notes.append(f"ranked by one side only, left out of ranking metrics: {', '.join(only)}")
    if len(models) < 2:
        raise ValueError(f"{reference.name!r} and {candidate.name!r} rank fewer than two common models "
                         f"({', '.join(models) or 'none'}): nothing to compare")
    rho = float(stats.spearmanr(ref.rating[models], cand.rating[models]).statistic) if len(models) > 2 else float("nan")
    tau = float(stats.kendalltau(ref.rating[models], cand.rating[models]).statistic)
    sep = {role: separability(r.ci.loc[[m for m in models if m in r.ci.index]]) if r.ci is not None else float("nan")
           for role, r in ranks.items()}
    if ref.ci is None or cand.ci is None:
        notes.append("separability and confidence agreement need confidence intervals on both sides")
        conf = float("nan")
    else:
        conf = confidence_agreement(ref.ci.loc[models], cand.ci.loc[models])
    agreement = None
    biases: dict[str, Any] = {}
    if reference.battles is not None and candidate.battles is not None:
        agreement = vote_agreement(reference.battles, candidate.battles)
        if agreement is None:
            no_ids = [s.name for s in (reference, candidate) if "prompt_id" not in s.battles]
            if no_ids:
                notes.append(f"no prompt_id (or question_id) in {', '.join(no_ids)}: no per-vote agreement")
            else:
                notes.append("no pair (prompt_id, turn, model pair) was voted on by both sides: "
                             "no per-vote agreement")
    for role, side in (("reference", reference), ("candidate", candidate)):
        if side.battles is None:
            continue
        biases.setdefault("position_consistency", {})[role] = position_consistency(side.battles)
        biases.setdefault("longer_answer_win_rate", {})[role] = longer_answer_win_rate(side.battles)
    if candidate.battles is not None and reference.battles is not None and candidate.name.startswith("judge:"):
        biases["self_preference"] = self_preference(candidate.name.split(":", 1)[1], candidate.battles,
                                                    reference.battles)
    return ValidationReport(
        reference=reference.name, candidate=candidate.name, models=models, bootstrap=bootstrap, seed=seed,
        vote_agreement=agreement, leaderboards={"reference": board_rows(ref), "candidate": board_rows(cand)},
        spearman=rho, kendall_tau=tau, separability=sep, confidence_agreement=conf,
        brier_score=pair_rank_brier(ref.rating[models], RankingLike(
            rating=cand.rating[models], ci=cand.ci.loc[models] if cand.ci is not None else None,
            samples=cand.samples[models] if cand.samples is not None else None)),
        judge_biases=biases, notes=notes,
    )
