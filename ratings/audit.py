"""The vote audit: what a careful reviewer asks of a leaderboard before trusting it, in one call.

:func:`audit_rules` runs the integrity rules that can take votes out (per-voter caps, anomalous voters,
repeated prompts); nothing is deleted: ``codearena audit`` reports them, ``codearena rate --apply-audit``
rates without the votes they flag and says how many each rule removed. :func:`audit` adds what no vote is
removed for: how few votes hold rank 1 and each adjacent pair (influence), the first-shown position's
advantage, whether the order survives another ties model, and the tiers with the votes still needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ratings.influence import InfluenceReport, influence_audit, rank1_sentence
from ratings.integrity import (
    AppliedAudit,
    AuditRule,
    anomalous_voters,
    apply_audit,
    cap_votes_per_voter,
    dedup_prompts,
)
from ratings.position import PositionBias, position_bias
from ratings.raokupper import TieModelComparison, compare_tie_models
from ratings.tiers import TierReport


@dataclass(frozen=True)
class AuditOptions:
    """Which rules run. ``cap_per_voter``: at most K votes per voter per ``cap_per`` (``day``/``all``);
    ``anomalous_alpha``: family-wise level of the anomalous-voter test (None: not run); ``dedup_factor``:
    prompts over factor x the median battles per prompt are capped (None: not run)."""

    cap_per_voter: int | None = None
    cap_per: str = "day"
    anomalous_alpha: float | None = 0.05
    anomalous_min_votes: int = 5
    dedup_factor: float | None = 10.0
    dedup_min_count: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cap_per_voter is not None and self.cap_per_voter < 1:
            raise ValueError(f"--cap-per-voter must be at least 1, got {self.cap_per_voter}")
        if self.anomalous_alpha is not None and not 0 < self.anomalous_alpha < 1:
            raise ValueError(f"--alpha must be between 0 and 1, got {self.anomalous_alpha}")
        if self.dedup_factor is not None and not self.dedup_factor > 1:
            raise ValueError(f"--dedup-factor must be above 1, got {self.dedup_factor}")


def audit_rules(battles: pd.DataFrame, opts: AuditOptions) -> list[AuditRule]:
    """The rules ``opts`` asks for, each with the votes it would take out and its evidence. A rule whose
    data is absent (no voter ids, no prompts) is reported with a note and removes nothing."""
    rules: list[AuditRule] = []
    has_voters = "voter" in battles.columns and battles["voter"].notna().any()
    if opts.cap_per_voter is not None:
        rules.append(cap_votes_per_voter(battles, opts.cap_per_voter, per=opts.cap_per) if has_voters else
                     _skipped("voter-cap", battles, "no voter ids in these votes: nothing to cap"))
    if opts.anomalous_alpha is not None:
        rules.append(anomalous_voters(battles, alpha=opts.anomalous_alpha, min_votes=opts.anomalous_min_votes)
                     if has_voters else _skipped("anomalous-voters", battles, "no voter ids in these votes"))
    if opts.dedup_factor is not None:
        try:
            rules.append(dedup_prompts(battles, factor=opts.dedup_factor, min_count=opts.dedup_min_count,
                                       seed=opts.seed))
        except ValueError as exc:
            rules.append(_skipped("prompt-dedup", battles, str(exc)))
    return rules


def _skipped(rule: str, battles: pd.DataFrame, why: str) -> AuditRule:
    import numpy as np

    return AuditRule(rule=rule, keep=np.ones(len(battles), dtype=bool), flagged=pd.DataFrame(), notes=[why])


def apply_rules(battles: pd.DataFrame, opts: AuditOptions) -> tuple[AppliedAudit, list[AuditRule]]:
    """The battles the rules keep (for ``rate --apply-audit``), the removed counts, and the rules."""
    rules = audit_rules(battles, opts)
    return apply_audit(battles, rules), rules


@dataclass
class AuditReport:
    n_battles: int
    rules: list[AuditRule]
    applied: AppliedAudit
    influence: InfluenceReport | None = None
    position: PositionBias | None = None
    ties: TieModelComparison | None = None
    tiers: TierReport | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "battles": self.n_battles,
            "rules": [{"rule": r.rule, "removed": r.removed, "notes": r.notes, "flagged": _records(r.flagged)}
                      for r in self.rules],
            "removed": _records(self.applied.removed),
            "notes": self.notes,
        }
        if self.influence is not None:
            out["influence"] = {"rank1": rank1_sentence(self.influence), "pairs": _records(self.influence.table()),
                                "notes": self.influence.notes}
        if self.position is not None:
            p = self.position
            out["position_bias"] = {"advantage_elo": p.advantage_elo, "ci_low_elo": p.ci_low * _elo(),
                                    "ci_high_elo": p.ci_high * _elo(), "first_win_share": p.first_win_share,
                                    "battles": p.n_battles, "summary": p.summary()}
        if self.ties is not None:
            out["ties_models"] = {"order_changes": self.ties.order_changes, "changed": self.ties.changed,
                                  "davidson_nu": self.ties.nu, "rao_kupper_theta": self.ties.rao_kupper_theta,
                                  "table": _records(self.ties.table), "notes": self.ties.notes}
        if self.tiers is not None:
            out["tiers"] = {"method": self.tiers.method, "level": self.tiers.level, "n_tiers": self.tiers.n_tiers,
                            "critical": self.tiers.critical, "table": _records(self.tiers.table),
                            "pairs": _records(self.tiers.pairs), "notes": self.tiers.notes}
        return out


def _elo() -> float:
    from ratings.bt import ELO_SCALE

    return float(ELO_SCALE)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    rows = df.to_dict(orient="records") if df is not None and not df.empty else []
    for r in rows:
        for k, v in list(r.items()):
            if hasattr(v, "item"):
                v = v.item()
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            r[k] = v
    return rows


def audit(battles: pd.DataFrame, opts: AuditOptions | None = None, *, influence: bool = True,
          prior: float = 1.0) -> AuditReport:
    """Every check of the module docstring on ``battles`` (already selected by the vote rule)."""
    from ratings.leaderboard import rate
    from ratings.tiers import leaderboard_tiers

    opts = opts or AuditOptions()
    applied, rules = apply_rules(battles, opts)
    report = AuditReport(n_battles=len(battles), rules=rules, applied=applied)
    kept = applied.battles
    if kept.empty:
        report.notes.append("the rules leave no votes: nothing else to audit")
        return report
    for name, run in (("influence", lambda: influence_audit(kept, prior=prior) if influence else None),
                      ("position", lambda: position_bias(kept, prior=prior)),
                      ("ties", lambda: compare_tie_models(kept, prior=prior)),
                      ("tiers", lambda: leaderboard_tiers(rate(kept, prior=prior)))):
        try:
            setattr(report, name, run())
        except ValueError as exc:
            report.notes.append(f"{name}: not computed ({exc})")
    return report
