"""Which of two candidates agrees more with a reference, on the same battles: a judge with code execution
against the same judge without (``codearena validate --candidate judge:X --versus judge:X+exec``).

Pure: three battles DataFrames in, a :class:`CandidateComparison` out. Both candidates are measured on the
pairs (prompt_id, turn, unordered model pair) that the reference and both candidates voted on, so neither
gains from easier prompts the other never judged; agreement there is ratings.agreement's (Zheng et al.
2023, with and without ties, Cohen's kappa). The paired difference is tested with an exact two-sided sign
test on the pairs where one candidate agrees more than the other (McNemar's exact test when each side
has one vote per pair, the usual case), so the report can say whether the better one is better by more
than chance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ratings.agreement import KEY, VoteAgreement, canonical_votes, vote_agreement


@dataclass(frozen=True)
class CandidateComparison:
    reference: str
    first: str
    second: str
    paired: int  # pairs (prompt_id, turn, model pair) the reference and both candidates voted on
    first_agreement: VoteAgreement  # each candidate's agreement with the reference on those pairs
    second_agreement: VoteAgreement
    first_better: int  # paired pairs where the first agrees with more of the reference's votes
    second_better: int
    same: int
    p_value: float  # exact two-sided sign test on first_better vs second_better; NaN when both are 0

    @property
    def difference(self) -> float:
        """Second minus first, agreement with ties."""
        return self.second_agreement.agreement_with_tie - self.first_agreement.agreement_with_tie

    @property
    def winner(self) -> str | None:
        """The candidate that agrees more with the reference (with ties counted); None when equal."""
        if self.difference > 0:
            return self.second
        if self.difference < 0:
            return self.first
        return None

    def to_dict(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if isinstance(x, float) and math.isnan(x) else x

        def agreement(a: VoteAgreement) -> dict[str, Any]:
            return {k: clean(v) if isinstance(v, float) else v for k, v in a.to_dict().items()}

        return {"reference": self.reference, "first": self.first, "second": self.second,
                "paired_battles": self.paired, "winner": self.winner, "difference_with_tie": self.difference,
                "agreement": {self.first: agreement(self.first_agreement),
                              self.second: agreement(self.second_agreement)},
                "pairs_where_more_agreeing": {self.first: self.first_better, self.second: self.second_better,
                                              "same": self.same},
                "sign_test_p_value": clean(self.p_value)}


def _keys(canon: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(canon[KEY])


def _on_keys(battles: pd.DataFrame, keys: pd.MultiIndex) -> pd.DataFrame:
    """The battles whose pair key is among ``keys`` (canonical_votes keeps the rows with a prompt_id, in
    order, so its rows line up with those)."""
    rows = battles[battles["prompt_id"].notna()]
    canon = canonical_votes(battles)
    assert canon is not None
    return rows[_keys(canon).isin(keys)]


def _per_pair_agreement(reference: pd.DataFrame, candidate: pd.DataFrame) -> pd.Series:
    """Per pair key: the share of (reference vote, candidate vote) combinations that agree."""
    ref, cand = canonical_votes(reference), canonical_votes(candidate)
    assert ref is not None and cand is not None
    both = ref[[*KEY, "label"]].merge(cand[[*KEY, "label"]], on=KEY, suffixes=("_ref", "_cand"))
    both["agree"] = (both["label_ref"] == both["label_cand"]).astype(float)
    return both.groupby(KEY)["agree"].mean()


def compare_candidates(reference: pd.DataFrame, first: pd.DataFrame, second: pd.DataFrame, *,
                       names: tuple[str, str, str] = ("reference", "first", "second")) -> CandidateComparison:
    """How ``first`` and ``second`` each agree with ``reference`` on the pairs all three voted on.

    ``names``: the reference's, the first's and the second's, for the report. Raises ValueError when the
    battles have no prompt_id to pair them on, or when no pair was voted on by all three."""
    ref_name, first_name, second_name = names
    canon = {}
    for name, frame in ((ref_name, reference), (first_name, first), (second_name, second)):
        c = canonical_votes(frame)
        if c is None:
            raise ValueError(f"{name}: the votes have no prompt_id, so they cannot be paired with the others")
        canon[name] = _keys(c).unique()
    common = canon[ref_name].intersection(canon[first_name]).intersection(canon[second_name])
    if len(common) == 0:
        counts = (f"{first_name} shares {len(canon[ref_name].intersection(canon[first_name]))} pairs with the "
                  f"reference, {second_name} {len(canon[ref_name].intersection(canon[second_name]))}, the two "
                  f"candidates {len(canon[first_name].intersection(canon[second_name]))}")
        raise ValueError(f"no battle (same prompt and model pair) was voted on by {ref_name}, {first_name} and "
                         f"{second_name} alike: nothing to compare ({counts})")
    ref = _on_keys(reference, common)
    one, two = _on_keys(first, common), _on_keys(second, common)
    a1, a2 = vote_agreement(ref, one), vote_agreement(ref, two)
    if a1 is None or a2 is None:  # only when a candidate's votes are the reference's own (same ids)
        raise ValueError(f"{first_name} or {second_name} shares its votes with {ref_name}: compare other sources")
    per1 = _per_pair_agreement(ref, one).reindex(common)
    per2 = _per_pair_agreement(ref, two).reindex(common)
    diff = (per2 - per1).to_numpy()
    first_better, second_better = int(np.sum(diff < 0)), int(np.sum(diff > 0))
    n = first_better + second_better
    p = float(stats.binomtest(second_better, n, 0.5).pvalue) if n else float("nan")
    return CandidateComparison(reference=ref_name, first=first_name, second=second_name, paired=len(common),
                               first_agreement=a1, second_agreement=a2, first_better=first_better,
                               second_better=second_better, same=len(common) - n, p_value=p)
