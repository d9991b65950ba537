"""`codearena validate` and the metrics behind it, on hand-checked cases and on real human/judge votes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from codearena.cli import main
from ratings.agreement import vote_agreement
from ratings.judge_bias import longer_answer_win_rate, position_consistency, self_preference
from ratings.separability import (
    RankingLike,
    confidence_agreement,
    pair_rank_brier,
    separability,
    separated,
    win_probabilities,
)
from tests.conftest import require_shared

MT_BENCH_PAPER_ORDER = ["gpt-4", "claude-v1", "gpt-3.5-turbo", "vicuna-13b-v1.2", "alpaca-13b", "llama-13b"]


def battles(rows: list[tuple], source: str = "human") -> pd.DataFrame:
    """(prompt_id, model_a, model_b, winner[, voter]) tuples as a battles frame."""
    out = []
    for i, r in enumerate(rows):
        out.append({"id": f"{source}-{i}", "prompt_id": r[0], "model_a": r[1], "model_b": r[2], "winner": r[3],
                    "voter": r[4] if len(r) > 4 else None, "turn": 1, "source": source})
    return pd.DataFrame(out)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


# -- per-vote agreement ---------------------------------------------------------------------------------
def test_vote_agreement_matches_pairs_across_positions_and_counts_ties_as_the_paper() -> None:
    ref = battles([("p1", "x", "y", "model_a", "h1"), ("p2", "y", "x", "model_b", "h2"),
                   ("p3", "x", "y", "tie", "h3"), ("p4", "x", "y", "model_b", "h4")])
    cand = battles([("p1", "y", "x", "model_b"), ("p2", "x", "y", "model_b"), ("p3", "x", "y", "model_a"),
                    ("p5", "x", "y", "model_a")], source="judge:j")
    va = vote_agreement(ref, cand)
    assert va is not None
    assert va.pairs_matched == 3  # p4 and p5 were judged by one side only
    assert va.comparisons_with_tie == 3 and va.agreement_with_tie == pytest.approx(1 / 3)
    assert va.comparisons_without_tie == 2 and va.agreement_without_tie == pytest.approx(1 / 2)
    assert va.confusion == [[1, 0, 1], [1, 0, 0], [0, 0, 0]]
    # po = 1/3, pe = (2*2 + 1*0 + 0*1) / 9 = 4/9  ->  kappa = (1/3 - 4/9) / (1 - 4/9) = -0.2
    assert va.cohen_kappa == pytest.approx(-0.2)


def test_several_votes_on_a_pair_each_count_and_a_vote_never_meets_itself() -> None:
    ref = battles([("p1", "x", "y", "model_a", "h1"), ("p1", "x", "y", "tie (bothbad)", "h2")])
    cand = battles([("p1", "x", "y", "model_a")], source="judge:j")
    va = vote_agreement(ref, cand)
    assert va.comparisons_with_tie == 2 and va.agreement_with_tie == 0.5
    assert va.comparisons_without_tie == 1 and va.agreement_without_tie == 1.0
    # The same source against itself: only votes of different people are compared.
    self_va = vote_agreement(ref, ref)
    assert self_va.comparisons_with_tie == 2 and self_va.agreement_with_tie == 0.0


def test_no_shared_pair_gives_no_agreement() -> None:
    assert vote_agreement(battles([("p1", "x", "y", "model_a")]), battles([("p2", "x", "y", "model_a")])) is None


# -- Arena-Hard metrics -----------------------------------------------------------------------------------
CI_REF = pd.DataFrame({"ci_low": [10.0, 15.0, 30.0], "ci_high": [20.0, 25.0, 40.0]}, index=["A", "B", "C"])


def test_separability_is_the_share_of_pairs_with_disjoint_intervals() -> None:
    assert separability(CI_REF) == pytest.approx(2 / 3)  # A-B overlap; A-C and B-C do not
    # As the authors' notebook: intervals that only touch are separated; one point shared by both is not.
    touching = pd.DataFrame({"ci_low": [1.0, 2.0, 5.0, 5.0], "ci_high": [2.0, 3.0, 5.0, 5.0]}, index=list("ABCD"))
    assert separated(touching, "B", "A") == 1 and separated(touching, "C", "D") == 0
    assert separability(touching) == pytest.approx(5 / 6)


def test_confidence_agreement_counts_only_pairs_the_reference_separates() -> None:
    # Reference CI_REF separates A-C and B-C, not A-B. The candidate separates A-B (not counted: the reference
    # cannot), puts C above A as the reference does (+1) and cannot separate B-C (0): (1 + 0) / 2.
    cand = pd.DataFrame({"ci_low": [10.0, 13.0, 30.0], "ci_high": [12.0, 31.0, 35.0]}, index=["A", "B", "C"])
    assert confidence_agreement(CI_REF, cand) == pytest.approx(1 / 2)
    flipped = pd.DataFrame({"ci_low": [10.0, 13.0, 0.0], "ci_high": [12.0, 14.0, 5.0]}, index=["A", "B", "C"])
    assert confidence_agreement(CI_REF, flipped) == pytest.approx(-1.0)  # C below both: -1, -1
    assert confidence_agreement(CI_REF, CI_REF) == pytest.approx(1.0)  # a ranking agrees fully with itself
    blurred = pd.DataFrame({"ci_low": [0.0, 0.0], "ci_high": [1.0, 1.0]}, index=["A", "B"])
    assert np.isnan(confidence_agreement(blurred, CI_REF))  # the reference separates nothing


def test_pair_rank_brier_uses_a_normal_on_bootstrap_mean_and_variance() -> None:
    ref = pd.Series({"A": 15.0, "B": 20.0, "C": 35.0, "D": 16.0})
    samples = pd.DataFrame({"A": [1.0, 3.0, 1.0, 3.0], "B": [2.0, 2.0, 2.0, 2.0], "C": [9.0, 9.0, 9.0, 9.0],
                            "D": [3.0, 5.0, 3.0, 5.0]})
    cand = RankingLike(rating=samples.mean(), samples=samples)
    # P(i above j) = Phi((mean_i - mean_j) / sqrt(var_i + var_j)), population variances over the replicates.
    # A vs D: means 2 and 4, variances 1 and 1 -> Phi(-2 / sqrt(2)) = 0.0786, though A never beats D in a replicate.
    assert win_probabilities(cand, "A", "D") == pytest.approx(0.0786496, abs=1e-7)
    assert win_probabilities(cand, "A", "B") == 0.5  # equal means
    assert win_probabilities(cand, "C", "B") == 1.0  # no spread on either side: the order is certain
    # Truth is the reference order, every pair counted (A-D is close in the reference, and still counts):
    # A-B 0.5 vs 0; A-C Phi(-7) vs 0; A-D 0.0786 vs 0; B-C 0 vs 0; B-D Phi(-2) vs 1; C-D Phi(5) vs 1.
    phi = stats.norm.cdf
    expected = (0.25 + phi(-7) ** 2 + phi(-np.sqrt(2)) ** 2 + 0 + phi(2) ** 2 + phi(-5) ** 2) / 6
    assert pair_rank_brier(ref, cand) == pytest.approx(expected)
    confident_wrong = RankingLike(rating=pd.Series({"A": 30.0, "B": 20.0, "C": 10.0}))
    assert pair_rank_brier(ref, confident_wrong) == pytest.approx(1.0)


# -- biases -----------------------------------------------------------------------------------------------
def test_position_consistency_under_swapped_games() -> None:
    judge = battles([("p1", "base", "m", "model_a"), ("p1", "m", "base", "model_a"),  # position A won twice
                     ("p2", "base", "m", "model_b"), ("p2", "m", "base", "model_a"),  # m won twice: consistent
                     ("p3", "base", "m", "model_a")], source="judge:j")  # never swapped: not counted
    pc = position_consistency(judge)
    assert pc == {"pairs": 2, "consistent": 0.5, "biased_to_first": 0.5, "biased_to_second": 0.0,
                  "other_inconsistent": 0.0}


def test_longer_answer_and_self_preference() -> None:
    b = battles([("p1", "gpt-4", "llama", "model_a"), ("p2", "gpt-4", "llama", "model_b"),
                 ("p3", "llama", "gpt-4", "tie")], source="judge:gpt-4-turbo")
    b["answer_a"] = ["long answer", "short", "same"]
    b["answer_b"] = ["short", "long answer", "same"]
    assert longer_answer_win_rate(b) == {"votes": 2, "longer_wins": 1.0}
    human = battles([("p1", "gpt-4", "llama", "model_b"), ("p2", "gpt-4", "llama", "model_b")])
    sp = self_preference("gpt-4-turbo", b, human)
    assert sp["family"] == "gpt" and sp["judge_win_rate"] == pytest.approx(0.5) and sp["reference_win_rate"] == 0.0


# -- the command ------------------------------------------------------------------------------------------
def _write_battles(path: Path, seed: int, flip: float) -> Path:
    """Battles among four models of known strength; ``flip`` of the verdicts are reversed (a noisy judge)."""
    rng = np.random.default_rng(seed)
    strength = {"m1": 2.0, "m2": 1.0, "m3": 0.0, "m4": -1.0}
    rows = []
    for q in range(300):
        a, b = rng.choice(list(strength), 2, replace=False)
        p = 1 / (1 + np.exp(strength[b] - strength[a]))
        a_wins = (rng.random() < p) != (rng.random() < flip)
        rows.append({"prompt_id": f"q{q}", "model_a": a, "model_b": b, "winner": "model_a" if a_wins else "model_b"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_validate_battles_files_json_output(tmp_path, capsys) -> None:
    ref = _write_battles(tmp_path / "human.jsonl", seed=1, flip=0.0)
    cand = tmp_path / "judge.jsonl"
    rows = [json.loads(ln) for ln in ref.read_text().splitlines()]
    for i, r in enumerate(rows):  # the judge flips every fifth verdict on the same pairs
        if i % 5 == 0:
            r["winner"] = "model_b" if r["winner"] == "model_a" else "model_a"
    cand.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    html = tmp_path / "report.html"
    rc, out, err = cli(capsys, "validate", "--reference", str(ref), "--candidate", str(cand), "--bootstrap", "100",
                       "--format", "json", "--html", str(html))
    assert rc == 0, err
    d = json.loads(out)
    assert d["vote_agreement"]["agreement_with_tie"] == pytest.approx(0.8)
    assert d["vote_agreement"]["pairs_matched"] == 300
    assert d["ranking_agreement"]["spearman"] == pytest.approx(1.0)
    assert d["ranking_agreement"]["kendall_tau"] == pytest.approx(1.0)
    assert 0 <= d["separability"]["reference"] <= 1 and -1 <= d["confidence_agreement"] <= 1
    assert 0 <= d["brier_score"] < 0.25
    assert [r["model"] for r in d["leaderboards"]["reference"]] == ["m1", "m2", "m3", "m4"]
    assert html.read_text().count("<svg") == 2
    # The table says what separability is; "separability, reference (95% CI)" read as an interval.
    rc, out, err = cli(capsys, "validate", "--reference", str(ref), "--candidate", str(cand), "--bootstrap", "20")
    assert rc == 0, err
    assert "separability (share of pairs with non-overlapping 95% CIs), reference" in out
    assert "(95% CI)" not in out


def test_validate_against_a_leaderboard_file(tmp_path, capsys) -> None:
    ref = _write_battles(tmp_path / "human.jsonl", seed=2, flip=0.0)
    board = tmp_path / "benchmark.csv"
    # A benchmark that swaps m3 and m4, with tight intervals: confidently wrong on that pair.
    pd.DataFrame({"model": ["m1", "m2", "m3", "m4"], "score": [90.0, 70.0, 40.0, 50.0],
                  "ci_low": [89.0, 69.0, 39.0, 49.0], "ci_high": [91.0, 71.0, 41.0, 51.0]}).to_csv(board, index=False)
    rc, out, err = cli(capsys, "validate", "--reference", str(ref), "--candidate", str(board), "--bootstrap", "100",
                       "--format", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["vote_agreement"] is None and d["separability"]["candidate"] == 1.0
    assert d["ranking_agreement"]["kendall_tau"] == pytest.approx(4 / 6)
    assert d["brier_score"] >= 1 / 6 - 1e-9  # the m3/m4 pair alone costs 1/6
    rc, out, _ = cli(capsys, "validate", "--reference", str(ref), "--candidate", str(board), "--bootstrap", "50")
    assert rc == 0 and "Kendall tau" in out and "agreement with 95% CI" in out


def test_validate_bad_inputs(tmp_path, db_path, capsys) -> None:
    rc, _, err = cli(capsys, "validate", "--reference", "human", "--candidate", "judge:x", "--db", str(db_path))
    assert rc == 2 and "no vote store" in err
    _write_battles(tmp_path / "h.jsonl", seed=3, flip=0.0)
    main(["import", "arena-battles", str(tmp_path / "h.jsonl"), "--db", str(db_path)])
    capsys.readouterr()
    rc, _, err = cli(capsys, "validate", "--reference", "import:arena-battles", "--candidate", "judge:nobody",
                     "--db", str(db_path))
    assert rc == 2 and "judge:nobody: no votes" in err and "import:arena-battles (300)" in err
    rc, _, err = cli(capsys, "validate", "--reference", "votes.txt", "--candidate", "human", "--db", str(db_path))
    assert rc == 2 and "not a vote source" in err
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    rc, _, err = cli(capsys, "validate", "--reference", str(bad), "--candidate", "human", "--db", str(db_path))
    assert rc == 2 and "neither battles" in err


# -- real data --------------------------------------------------------------------------------------------
@pytest.fixture
def pandalm_db(db_path: Path) -> Path:
    test = require_shared("pandalm/testset-v1.json")
    judge = require_shared("pandalm/gpt-3.5-turbo-testset-v1.json")
    assert main(["import", "pandalm", str(test), "--db", str(db_path), "--judge-file", str(judge),
                 "--judge-name", "gpt-3.5-turbo"]) == 0
    return db_path


def test_pandalm_human_majority_vs_gpt35(pandalm_db, capsys) -> None:
    capsys.readouterr()
    rc, out, err = cli(capsys, "validate", "--reference", "import:pandalm", "--candidate", "judge:gpt-3.5-turbo",
                       "--db", str(pandalm_db), "--bootstrap", "200", "--format", "json")
    assert rc == 0, err
    d = json.loads(out)
    va = d["vote_agreement"]
    assert va["pairs_matched"] == 974  # 999 pairs less the 25 GPT-3.5 answered with "garbage"
    # PandaLM (Wang et al. 2023, Table 2) reports GPT-3.5 agreeing with the human majority 71.07% of the time.
    assert va["agreement_with_tie"] == pytest.approx(0.716, abs=0.005)
    assert 0.80 < va["agreement_without_tie"] < 0.83 and 0.45 < va["cohen_kappa"] < 0.55
    ref = [r["model"] for r in d["leaderboards"]["reference"]]
    cand = [r["model"] for r in d["leaderboards"]["candidate"]]
    # Both rank llama-7b first and cerebras-gpt-6.7B last; they differ only on the close middle pair.
    assert ref[0] == cand[0] == "llama-7b" and ref[-1] == cand[-1] == "cerebras-gpt-6.7B"
    # One adjacent swap among five models: rho = 0.9, tau = 0.8.
    assert d["ranking_agreement"]["spearman"] == pytest.approx(0.9)
    assert d["ranking_agreement"]["kendall_tau"] == pytest.approx(0.8)


def test_mt_bench_human_agreement_among_experts_as_the_paper(db_path, capsys) -> None:
    f = require_shared("mt-bench-human/human_judgments_turn1.jsonl")
    assert main(["import", "mt-bench-human", str(f), "--db", str(db_path)]) == 0
    capsys.readouterr()
    rc, out, err = cli(capsys, "validate", "--reference", "import:mt-bench-human", "--candidate",
                       "import:mt-bench-human", "--db", str(db_path), "--bootstrap", "100", "--format", "json")
    assert rc == 0, err
    d = json.loads(out)
    # Zheng et al. 2023, Table 3, human vs human on turn 1: 63% with ties, 81% without.
    assert d["vote_agreement"]["agreement_with_tie"] == pytest.approx(0.63, abs=0.02)
    assert d["vote_agreement"]["agreement_without_tie"] == pytest.approx(0.81, abs=0.02)
    assert [r["model"] for r in d["leaderboards"]["reference"]] == MT_BENCH_PAPER_ORDER


def test_validation_doc_is_generated_from_real_data(tmp_path) -> None:
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    data = require_shared("pandalm").parent
    require_shared("mt-bench-human/human_judgments_turn1.jsonl")
    out = tmp_path / "validation.md"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "bench/make_validation_doc.py"), "--data", str(data), "--out",
                           str(out), "--bootstrap", "100"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert "| agreement w/ tie | 0.716 (974 comparisons) |" in page
    assert "## MT-bench: experts vs experts" in page and "| Spearman rho | 1.000 |" in page
    images = [line.split("](")[1].rstrip(")") for line in page.splitlines() if line.startswith("![")]
    assert len(images) == 7
    for rel in images:
        svg = ET.parse(out.parent / rel).getroot()  # well-formed XML, i.e. a browser will draw it
        assert svg.tag.endswith("svg") and len(svg) > 5


def test_position_consistency_from_games_inside_one_battle() -> None:
    # CodeArena's duel stores one battle per pair with both games in judge_detail.
    b = battles([("p1", "x", "y", "model_a"), ("p2", "x", "y", "tie"), ("p3", "x", "y", "model_b")], source="judge:j")
    b["judge_detail"] = [
        json.dumps({"games": [{"score": "A>B", "swapped": False}, {"score": "B>>A", "swapped": True}]}),  # x twice
        json.dumps({"games": [{"score": "A>B", "swapped": False}, {"score": "A>B", "swapped": True}]}),  # A twice
        json.dumps({"games": [{"score": "B>A", "swapped": False}, {"score": None, "swapped": True}]}),  # no verdict
    ]
    assert position_consistency(b) == {"pairs": 2, "consistent": 0.5, "biased_to_first": 0.5,
                                       "biased_to_second": 0.0, "other_inconsistent": 0.0}


def test_leaderboard_json_with_bootstrap_samples(tmp_path, capsys) -> None:
    ref = _write_battles(tmp_path / "human.jsonl", seed=4, flip=0.0)
    # m3's replicates (1, 0, 1, 0) average m4's 0.5: P = 0.5 for that pair, costing 0.25; m3's spread (sd 0.5)
    # also leaves m2 (z = 3) and m1 (z = 5) a little short of certain; every other pair is certain and right.
    board = [{"model": "m1", "rating": 3.0, "bootstrap": [3.0, 3.0, 3.0, 3.0]},
             {"model": "m2", "rating": 2.0, "bootstrap": [2.0, 2.0, 2.0, 2.0]},
             {"model": "m3", "rating": 1.0, "bootstrap": [1.0, 0.0, 1.0, 0.0]},
             {"model": "m4", "rating": 0.5, "bootstrap": [0.5, 0.5, 0.5, 0.5]}]
    path = tmp_path / "board.json"
    path.write_text(json.dumps({"leaderboard": board}), encoding="utf-8")
    rc, out, err = cli(capsys, "validate", "--reference", str(ref), "--candidate", str(path), "--bootstrap", "100",
                       "--format", "json")
    assert rc == 0, err
    d = json.loads(out)
    phi = stats.norm.cdf
    assert d["brier_score"] == pytest.approx((0.25 + phi(-3) ** 2 + phi(-5) ** 2) / 6)
    assert d["ranking_agreement"]["kendall_tau"] == pytest.approx(1.0)
    bad = tmp_path / "ragged.json"
    # Two samples against four: ragged (a single value would be a fixed baseline, which is allowed).
    bad.write_text(json.dumps([{**board[0], "bootstrap": [1.0, 2.0]}, board[1]]), encoding="utf-8")
    rc, _, err = cli(capsys, "validate", "--reference", str(ref), "--candidate", str(bad))
    assert rc == 2 and "same number of bootstrap samples" in err


# -- review fixes: files in the battle schema, and the same votes as `rate` ---------------------------------
def _arena_store(db_path: Path) -> Path:
    """Human votes with prompts and answers, plus named votes that disagree with them."""
    from votes.record import Battle
    from votes.store import VoteStore

    rng = np.random.default_rng(5)
    strength = {"m1": 2.0, "m2": 1.0, "m3": 0.0}
    rows = []
    for i in range(240):
        a, b = rng.choice(list(strength), 2, replace=False)
        p = 1 / (1 + np.exp(strength[b] - strength[a]))
        rows.append(Battle(model_a=str(a), model_b=str(b), winner="model_a" if rng.random() < p else "model_b",
                           prompt_id=f"p{i % 40}", prompt="write f", answer_a="a" * (i % 7 + 1),
                           answer_b="b" * (i % 5 + 1)))
    # Named votes that rank m3 first: they must not reach validation unless asked for.
    rows += [Battle(model_a="m3", model_b="m1", winner="model_a", mode="named", prompt_id=f"n{i}")
             for i in range(300)]
    s = VoteStore(db_path)
    s.add_many(rows)
    s.close()
    return db_path


def test_validate_reads_exported_votes_and_plain_files(tmp_path, db_path, capsys) -> None:
    _arena_store(db_path)
    out = tmp_path / "out.jsonl"
    assert main(["export", "votes", "--db", str(db_path), "--out", str(out)]) == 0
    capsys.readouterr()
    rc, stdout, err = cli(capsys, "validate", "--reference", str(out), "--candidate", str(out), "--bootstrap", "0",
                          "--format", "json")
    assert rc == 0, err
    d = json.loads(stdout)
    assert d["vote_agreement"]["pairs_matched"] > 0  # question_id matched as prompt_id
    assert d["judge_biases"]["longer_answer_win_rate"]["reference"]["votes"] > 0  # answers from conversations
    assert main(["rate", str(out), "--style-control", "--format", "json"]) == 0  # answers found there too
    capsys.readouterr()
    plain = tmp_path / "plain.csv"
    pd.read_json(out, lines=True)[["model_a", "model_b", "winner"]].to_csv(plain, index=False)
    rc, stdout, err = cli(capsys, "validate", "--reference", str(plain), "--candidate", str(plain), "--bootstrap",
                          "0", "--format", "json")
    assert rc == 0, err
    d = json.loads(stdout)
    assert d["vote_agreement"] is None and d["judge_biases"]["position_consistency"]["reference"] is None
    assert any("no prompt_id" in n for n in d["notes"])


def test_validate_leaves_named_votes_out_like_rate(db_path, capsys) -> None:
    _arena_store(db_path)
    rc, stdout, err = cli(capsys, "validate", "--reference", "human", "--candidate", "all", "--db", str(db_path),
                          "--bootstrap", "0", "--format", "json")
    assert rc == 0, err
    d = json.loads(stdout)
    assert [r["model"] for r in d["leaderboards"]["reference"]] == ["m1", "m2", "m3"]
    assert d["ranking_agreement"]["kendall_tau"] == pytest.approx(1.0)
    assert any("300 named-mode vote(s) left out" in n for n in d["notes"])
    rc, stdout, err = cli(capsys, "validate", "--reference", "human", "--candidate", "all", "--db", str(db_path),
                          "--bootstrap", "0", "--format", "json", "--include-named")
    assert rc == 0, err
    assert json.loads(stdout)["leaderboards"]["candidate"][0]["model"] == "m3"


def test_validate_accepts_every_judge_prefix(db_path, capsys) -> None:
    from votes.record import Battle
    from votes.store import VoteStore

    _arena_store(db_path)
    s = VoteStore(db_path)
    s.add_many([Battle(model_a="m1", model_b=m, winner="model_a", source=f"judge:{j}", prompt_id="p1")
                for j in ("x", "y") for m in ("m2", "m3")] +
               [Battle(model_a="m2", model_b="m3", winner="model_a", source="judge:x", prompt_id="p1")])
    s.close()
    rc, stdout, err = cli(capsys, "validate", "--reference", "human", "--candidate", "judge:", "--db", str(db_path),
                          "--bootstrap", "0", "--format", "json")
    assert rc == 0, err
    assert [r["model"] for r in json.loads(stdout)["leaderboards"]["candidate"]] == ["m1", "m2", "m3"]


# -- --versus: one judge without and with code execution, on the same battles ------------------------------
# (prompt_id, winner) per source on the pair (x, y); the second human vote on p1 disagrees with the first.
HUMAN = [("p1", "model_a", "h1"), ("p1", "model_b", "h2"), ("p2", "model_a", "h3"), ("p3", "model_a", "h4"),
         ("p4", "model_a", "h5"), ("p5", "model_b", "h6"), ("p6", "tie", "h7"), ("p7", "model_a", "h8")]
PLAIN = [("p1", "model_a"), ("p2", "model_a"), ("p3", "model_b"), ("p4", "model_b"), ("p5", "model_b"),
         ("p6", "model_a"), ("p8", "model_a")]
# Cast with the models in the other positions: the pair still matches; winners are the same verdicts.
EXEC = [("p1", "model_b"), ("p2", "model_b"), ("p3", "model_b"), ("p4", "model_b"), ("p5", "model_a"),
        ("p6", "tie")]


def _versus_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    human = battles([(p, "x", "y", w, v) for p, w, v in HUMAN])
    plain = battles([(p, "x", "y", w) for p, w in PLAIN], source="judge:j")
    executed = battles([(p, "y", "x", w) for p, w in EXEC], source="judge:j+exec")
    return human, plain, executed


def test_compare_candidates_on_the_battles_all_three_voted_on() -> None:
    from ratings.versus import compare_candidates

    report = compare_candidates(*_versus_frames(), names=("human", "judge:j", "judge:j+exec"))
    assert report.paired == 6  # p7 has no judge vote, p8 no human one and no exec one
    # 7 human votes on p1..p6: the plain judge agrees with 3 (h1, h3, h6), the exec judge with 6 (not h2).
    assert report.first_agreement.comparisons_with_tie == report.second_agreement.comparisons_with_tie == 7
    assert report.first_agreement.agreement_with_tie == pytest.approx(3 / 7)
    assert report.second_agreement.agreement_with_tie == pytest.approx(6 / 7)
    # Per battle: exec agrees more on p3, p4, p6; the same on p1 (half each), p2, p5.
    assert (report.first_better, report.second_better, report.same) == (0, 3, 3)
    assert report.p_value == pytest.approx(stats.binomtest(3, 3, 0.5).pvalue)  # 0.25
    assert report.winner == "judge:j+exec" and report.difference == pytest.approx(3 / 7)
    flipped = compare_candidates(_versus_frames()[0], _versus_frames()[2], _versus_frames()[1],
                                 names=("human", "judge:j+exec", "judge:j"))
    assert flipped.winner == "judge:j+exec" and (flipped.first_better, flipped.second_better) == (3, 0)
    even = compare_candidates(_versus_frames()[0], _versus_frames()[1], _versus_frames()[1])
    assert even.winner is None and even.same == 6 and np.isnan(even.p_value)


def test_compare_candidates_without_common_battles_says_why() -> None:
    from ratings.versus import compare_candidates

    human, plain, _ = _versus_frames()
    other = battles([("p9", "x", "y", "model_a")], source="judge:j+exec")
    with pytest.raises(ValueError, match="no battle .* was voted on by .* alike.*shares 6 pairs"):
        compare_candidates(human, plain, other)
    with pytest.raises(ValueError, match="no prompt_id"):
        compare_candidates(human, plain, other.drop(columns="prompt_id"))


def test_validate_versus_cli_on_a_store(tmp_path, db_path, capsys) -> None:
    from votes.record import Battle
    from votes.store import VoteStore

    store = VoteStore(db_path)
    store.add_many([Battle(model_a=r["model_a"], model_b=r["model_b"], winner=r["winner"], source=r["source"],
                           prompt_id=r["prompt_id"], voter=r["voter"]) for f in _versus_frames()
                    for r in f.to_dict("records")])
    store.close()
    base = ["validate", "--reference", "human", "--candidate", "judge:j", "--db", str(db_path)]
    rc, out, err = cli(capsys, *base, "--versus", "judge:j+exec")
    assert rc == 0, err
    assert "paired battles (same prompt and model pair, voted on by the reference and both): 6" in out
    assert ("judge:j+exec agrees more with human: 0.857 vs 0.429 w/ tie on 6 paired battles (not significant"
            in out)
    assert "judge:j 0, judge:j+exec 3, the same 3; sign test p = 0.250" in out
    rc, out, err = cli(capsys, *base, "--versus", "judge:j+exec", "--format", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["winner"] == "judge:j+exec" and d["paired_battles"] == 6
    assert d["agreement"]["judge:j"]["agreement_with_tie"] == pytest.approx(3 / 7)

    board = tmp_path / "board.csv"
    board.write_text("model,rating\nx,1000\ny,900\n")
    for extra, message in ((["--versus", "judge:j"], "is the candidate itself"),
                           (["--versus", str(board)], "a leaderboard; --versus compares votes"),
                           (["--versus", "judge:nobody"], "judge:nobody: no votes"),
                           (["--versus", "judge:j+exec", "--html", str(tmp_path / "r.html")], "--html")):
        rc, _, err = cli(capsys, *base, *extra)
        assert rc == 2 and message in err, err
