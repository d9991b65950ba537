"""Vote integrity: per-voter caps, anomalous voters (planted), prompt de-duplication; nothing deleted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ratings.integrity import (
    IntegrityError,
    anomalous_voters,
    apply_audit,
    cap_votes_per_voter,
    dedup_prompts,
)
from ratings.source import load_battles
from ratings.synthetic import synthetic_battles


def _with_voters(n: int, seed: int) -> tuple[pd.DataFrame, dict[str, float]]:
    syn = synthetic_battles(n, 10, seed=seed, spread=1.0)
    b = syn.battles.copy()
    rng = np.random.default_rng(seed)
    b["voter"] = [f"v{i}" for i in rng.integers(0, 300, n)]
    b["tstamp"] = 1.7e9 + np.arange(n) * 20.0
    return b, syn.true_theta


def test_cap_keeps_the_first_k_votes_per_voter_per_utc_day() -> None:
    day = 86_400.0
    b = pd.DataFrame({"model_a": ["a"] * 7, "model_b": ["b"] * 7, "winner": ["model_a"] * 7,
                      "voter": ["x", "x", "x", "y", "x", "x", None],
                      # x: three votes on day 0 (out of row order), two on day 1.
                      "tstamp": [30.0, 10.0, 20.0, 5.0, day + 1, day + 2, 3.0]})
    rule = cap_votes_per_voter(b, 2)
    assert rule.keep.tolist() == [False, True, True, True, True, True, True]
    assert rule.removed == 1
    row = rule.flagged.iloc[0]
    assert (row["voter"], row["day"], row["votes"], row["dropped"]) == ("x", "1970-01-01", 3, 1)
    assert any("without a voter id" in n for n in rule.notes)
    assert cap_votes_per_voter(b, 3, per="all").keep.tolist() == [True] * 3 + [True, False, False, True]
    iso = b.drop(columns="tstamp").assign(created_at=pd.to_datetime(b["tstamp"], unit="s", utc=True)
                                          .dt.strftime("%Y-%m-%dT%H:%M:%S.000+00:00"))
    assert cap_votes_per_voter(iso, 2).keep.tolist() == rule.keep.tolist()
    with pytest.raises(IntegrityError, match="needs timestamps"):
        cap_votes_per_voter(b.drop(columns="tstamp"), 2)
    with pytest.raises(IntegrityError, match="voter ids"):
        cap_votes_per_voter(b.drop(columns="voter"), 2)


def test_planted_contrarian_and_random_voters_are_flagged_with_evidence() -> None:
    b, truth = _with_voters(20_000, seed=0)
    rng = np.random.default_rng(1)
    rows = rng.choice(len(b), 260, replace=False)
    for k, r in enumerate(rows):
        a, o = b.at[r, "model_a"], b.at[r, "model_b"]
        if k < 60:  # always for the weaker model
            b.at[r, "winner"] = "model_a" if truth[a] < truth[o] else "model_b"
            b.at[r, "voter"] = "contrarian"
        else:  # coin flips
            b.at[r, "winner"] = "model_a" if rng.random() < 0.5 else "model_b"
            b.at[r, "voter"] = "random"
    rule = anomalous_voters(b)
    flagged = rule.flagged.set_index("voter")
    assert {"contrarian", "random"} <= set(flagged.index)
    assert len(flagged) <= 3  # family-wise alpha 0.05 over 300 honest voters
    c = flagged.loc["contrarian"]
    # Nearly every vote is an upset of the leave-voter-out model (which may order a close pair otherwise).
    assert c["upsets"] >= c["decisive"] - 2 and c["upsets"] > 2 * c["expected_upsets"]
    assert c["method"] == "exact refit" and c["e_value"] >= 300 / 0.05
    assert c["flagged_at_vote"] < 30  # a sequential test stops early on a blatant voter
    # The mask drops exactly the flagged voters' votes; nothing is removed from the frame itself.
    assert rule.removed == int(b["voter"].isin(flagged.index).sum())
    assert len(b) == 20_000


def test_honest_voters_are_not_flagged(shared_data) -> None:
    b, _ = _with_voters(20_000, seed=3)
    assert anomalous_voters(b).flagged.empty
    mt = load_battles(shared_data("mt-bench-human/human_judgments_turn1.jsonl")).battles
    rule = anomalous_voters(mt)
    assert "judge" in rule.notes[0]
    assert len(rule.flagged) <= 3  # 65 expert judges; at most a few stand out


def test_prompt_dedup_caps_prompts_far_above_the_rest() -> None:
    rng = np.random.default_rng(0)
    syn = synthetic_battles(6_000, 5, seed=1)
    b = syn.battles.copy()
    b["prompt"] = [f"Prompt {i}" for i in rng.integers(0, 200, len(b))]
    b.loc[:999, "prompt"] = "  Write a HELLO   world "
    b.loc[1000:1399, "prompt"] = "write a hello world"
    rule = dedup_prompts(b, seed=0)
    row = rule.flagged.iloc[0]
    assert row["prompt"] == "write a hello world" and row["battles"] == 1400
    cap = row["cap"]
    assert cap == max(20, int(10 * np.median(pd.Series(b["prompt"].str.casefold().str.split().str.join(" "))
                                             .value_counts())))
    assert rule.removed == 1400 - cap and len(rule.flagged) == 1
    # Exact text keeps the two spellings apart: two prompts over the cap, 1000 and 400 battles.
    exact = dedup_prompts(b, mode="exact")
    assert sorted(exact.flagged["battles"]) == [400, 1000]
    assert (dedup_prompts(b, seed=0).keep == rule.keep).all()
    # A fixed prompt set asked evenly (CodeArena's case) is left alone.
    b["prompt"] = [f"p{i % 397}" for i in range(len(b))]
    assert dedup_prompts(b).removed == 0


def test_apply_audit_counts_each_rule_and_the_total_once() -> None:
    b, _ = _with_voters(2_000, seed=4)
    b["voter"] = [f"v{i}" for i in range(len(b))]
    b.loc[:9, "voter"] = "busy"
    b.loc[:9, "tstamp"] = 1.7e9
    cap = cap_votes_per_voter(b, 5)
    b["prompt"] = "same"
    b.loc[300:, "prompt"] = [f"p{i}" for i in range(len(b) - 300)]
    dedup = dedup_prompts(b, min_count=20)
    applied = apply_audit(b, [cap, dedup])
    removed = applied.removed.set_index("rule")["removed"]
    assert removed["voter-cap-5-per-day"] == 5
    assert removed["prompt-dedup"] == 300 - 20
    assert removed["total"] == int((~(cap.keep & dedup.keep)).sum()) == len(b) - len(applied.battles)
    assert removed["total"] < removed["voter-cap-5-per-day"] + removed["prompt-dedup"]  # overlap counted once
