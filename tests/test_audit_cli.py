"""`codearena audit` and what `rate` took from issue 12 (clustered CIs by default, tiers, --apply-audit,
style options), through the CLI on real SQLite stores and the real MT-bench expert votes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codearena.cli import main
from ratings.synthetic import synthetic_battles
from votes.files import write_battles_file


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def mt_db(tmp_path: Path, shared_data, capsys) -> Path:
    db = tmp_path / "mt.db"
    src = shared_data("mt-bench-human/human_judgments_turn1.jsonl")
    assert main(["import", "mt-bench-human", str(src), "--db", str(db)]) == 0
    capsys.readouterr()
    return db


def test_rate_clusters_by_prompt_and_shows_tiers(mt_db: Path, capsys) -> None:
    rc, out, err = cli(capsys, "rate", str(mt_db), "--source", "all", "--format", "json")
    assert rc == 0, err
    rows = json.loads(out)
    # 80 MT-bench questions: the default clusters by prompt, and the intervals widen (design effect > 1)
    assert {r["cluster_by"] for r in rows} == {"prompt"} and {r["clusters"] for r in rows} == {80}
    assert all(r["design_effect"] > 1.1 for r in rows)
    by_model = {r["model"]: r for r in rows}
    # claude-v1 and gpt-3.5-turbo cannot be told apart: one tier, rank range 2-3, not ranks 2 and 3
    assert by_model["claude-v1"]["tier"] == by_model["gpt-3.5-turbo"]["tier"]
    assert (by_model["claude-v1"]["rank_low"], by_model["claude-v1"]["rank_high"]) == (2, 3)
    assert by_model["gpt-4"]["tier"] == 1 and by_model["gpt-4"]["rank_high"] == 1
    rc, out, _ = cli(capsys, "rate", str(mt_db), "--source", "all", "--format", "json", "--cluster", "none")
    independent = {r["model"]: r for r in json.loads(out)}
    width = {m: r["ci_high"] - r["ci_low"] for m, r in by_model.items()}
    assert all(width[m] > independent[m]["ci_high"] - independent[m]["ci_low"] for m in width)
    assert "design_effect" not in independent["gpt-4"]


def test_audit_reports_without_removing_anything(mt_db: Path, capsys) -> None:
    rc, out, err = cli(capsys, "audit", str(mt_db), "--source", "all", "--format", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["battles"] == 1689
    assert data["influence"]["rank1"].startswith("rank 1 (gpt-4) holds unless these ")
    assert data["ties_models"]["order_changes"] is False
    assert data["position_bias"]["ci_low_elo"] < data["position_bias"]["advantage_elo"] < data["position_bias"][
        "ci_high_elo"]
    rc, text, _ = cli(capsys, "audit", str(mt_db), "--source", "all", "--no-influence")
    assert rc == 0 and "tier(s)" in text and "rank 1" not in text


def test_a_spamming_voter_is_flagged_and_apply_audit_leaves_their_votes_out(tmp_path: Path, capsys) -> None:
    syn = synthetic_battles(4000, 6, seed=3)
    battles = syn.battles.copy()
    battles["voter"] = [f"v{i % 200}" for i in range(len(battles))]
    # one voter always votes for the weakest model, 300 times
    weakest = min(syn.true_theta, key=syn.true_theta.get)
    others = [m for m in sorted(set(battles["model_a"])) if m != weakest]
    spam = battles.iloc[:300].copy()
    spam["model_a"] = weakest
    spam["model_b"] = [others[i % len(others)] for i in range(300)]
    spam["winner"] = "model_a"
    spam["voter"] = "spammer"
    f = tmp_path / "b.jsonl"
    import pandas as pd

    write_battles_file(pd.concat([battles, spam], ignore_index=True), f)
    rc, out, err = cli(capsys, "audit", str(f), "--format", "json", "--no-influence", "--cap-per-voter", "50",
                       "--cap-per", "all")
    assert rc == 0, err
    rules = {r["rule"]: r for r in json.loads(out)["rules"]}
    assert [row["voter"] for row in rules["anomalous-voters"]["flagged"]] == ["spammer"]
    assert rules["voter-cap-50-per-all"]["removed"] == 250  # the spammer's votes past the first 50
    rc, out, err = cli(capsys, "rate", str(f), "--apply-audit", "--no-dedup", "--cluster", "none")
    assert rc == 0, err
    assert "audit: anomalous-voters removed 300 vote(s)" in out + err


def test_style_options_need_style_control_and_known_features(tmp_path: Path, capsys) -> None:
    f = tmp_path / "b.jsonl"
    write_battles_file(synthetic_battles(300, 3, seed=1).battles, f)
    rc, _, err = cli(capsys, "rate", str(f), "--style-reg", "1")
    assert rc == 2 and "apply with --style-control" in err
    rc, _, err = cli(capsys, "rate", str(f), "--style-control", "--style-features", "length,sparkle")
    assert rc == 2 and "sparkle" in err and "Traceback" not in err
