"""`codearena rate` end to end: real SQLite store, real battles files, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from codearena.cli import main
from ratings.synthetic import synthetic_battles
from votes.record import Battle
from votes.store import VoteStore

FIELDS = {"model", "rating", "ci_low", "ci_high", "rank", "rank_ub", "battles", "wins", "losses", "ties"}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    return run_json_err(capsys, *argv)[0]


def run_json_err(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[list[dict], str]:
    assert main(["rate", *argv, "--format", "json"]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


@pytest.fixture
def store(db_path: Path) -> Path:
    syn = synthetic_battles(600, 4, seed=1).battles
    s = VoteStore(db_path)
    battles = [Battle(model_a=r.model_a, model_b=r.model_b, winner=r.winner, source="human",
                      category="debugging" if i % 2 else "generation", language="python" if i % 3 else "rust",
                      prompt="write f", answer_a=f"```python\nx = {i}\n```", answer_b="plain text answer")
               for i, r in enumerate(syn.itertuples())]
    # Named-mode votes and judge votes must not leak into the default ranking.
    battles += [Battle(model_a="model-0", model_b="model-1", winner="model_b", mode="named") for _ in range(50)]
    battles += [Battle(model_a="model-0", model_b="model-1", winner="model_a", source="judge:qwen")
                for _ in range(30)]
    s.add_many(battles)
    s.close()
    return db_path


def test_store_default_is_anonymous_human_votes(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, err = run_json_err(capsys, str(store))
    assert {r["model"] for r in rows} == {"model-0", "model-1", "model-2", "model-3"}
    assert FIELDS <= set(rows[0])
    assert sum(r["battles"] for r in rows) == 2 * 600
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["rating"] >= rows[1]["rating"]
    assert "50 named-mode vote(s) left out" in err  # notes go to stderr, stdout stays JSON


def test_include_named_and_source_filters(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, str(store), "--include-named")
    assert sum(r["battles"] for r in rows) == 2 * 650
    judge = run_json(capsys, str(store), "--source", "judge:qwen")
    assert [r["model"] for r in judge] == ["model-0", "model-1"]
    assert judge[0]["wins"] == 30
    assert len(run_json(capsys, str(store), "--source", "all", "--include-named")) == 4


def test_unknown_source_lists_what_the_store_has(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rate", str(store), "--source", "judge:nobody"]) == 2
    err = capsys.readouterr().err
    assert "judge:nobody" in err and "human (650)" in err and "judge:qwen (30)" in err


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_every_battles_file_format_gives_the_same_ratings(tmp_path: Path, suffix: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from votes.files import write_battles_file

    df = synthetic_battles(2_000, 5, seed=3).battles
    df["extra"] = "kept"
    path = tmp_path / f"b{suffix}"
    write_battles_file(df, path)
    rows = run_json(capsys, str(path), "--bootstrap", "20", "--seed", "1")
    again = run_json(capsys, str(path), "--bootstrap", "20", "--seed", "1")
    assert rows == again  # seeded: reproducible
    ref_path = tmp_path / "ref.jsonl"
    write_battles_file(df, ref_path)
    ref = run_json(capsys, str(ref_path), "--bootstrap", "20", "--seed", "1")
    assert [r["model"] for r in rows] == [r["model"] for r in ref]
    assert rows[0]["rating"] == pytest.approx(ref[0]["rating"])


def test_by_language_gives_one_leaderboard_per_group(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, str(store), "--by", "language")
    groups = {r["group"]: r["group_battles"] for r in rows}
    assert groups == {"python": 400, "rust": 200}


def test_anchor_ties_and_style_options(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, err = run_json_err(capsys, str(store), "--anchor", "model-2=1200", "--ties", "davidson")
    assert {r["model"]: r["rating"] for r in rows}["model-2"] == pytest.approx(1200)
    assert "Davidson tie parameter nu =" in err
    assert main(["rate", str(store), "--style-control"]) == 0
    out = capsys.readouterr().out
    assert "code_blocks" in out and "style coefficients" in out


def test_table_and_csv_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "b.jsonl"
    synthetic_battles(1_000, 3, seed=0).battles.to_json(path, orient="records", lines=True)
    assert main(["rate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "model-0" in out and "rank_ub" in out and "1000 battles" in out
    assert main(["rate", str(path), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model,rating,ci_low,ci_high,rank,rank_ub") and len(lines) == 4


def test_plot_writes_self_contained_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "b.jsonl"
    synthetic_battles(1_000, 3, seed=0).battles.to_json(path, orient="records", lines=True)
    html = tmp_path / "r.html"
    assert main(["rate", str(path), "--bootstrap", "10", "--plot", str(html)]) == 0
    text = html.read_text()
    assert "plotly" in text.lower() and "Battle count per pair" in text and "Fraction of row model wins" in text
    assert '<script src="https://cdn.plot.ly' not in text and len(text) > 1_000_000  # plotly.js inlined


BAD_CASES = [
    ('{"model_a": "x", "model_b": "y", "winner": "model_a"}\n{"model_a": "x", "model_b": "y", "winner": "draw"}\n',
     "line 2", "unknown winner label 'draw'"),
    ('{"model_a": "x", "winner": "model_a"}\n', "", "missing column(s) model_b"),
    ('{"model_a": "x", "model_b": "y", "winner": "tie"}\n{"model_a": "x", "model_b": "x", "winner": "tie"}\n',
     "line 2", "model_a == model_b"),
    ('{"model_a": "x", "model_b": "y", "winner": "tie"}\n{"model_a": null, "model_b": "y", "winner": "tie"}\n',
     "line 2", "model_a is empty or NaN"),
    ("", "", "empty"),
]


@pytest.mark.parametrize(("content", "where", "problem"), BAD_CASES)
def test_bad_input_exits_2_naming_file_line_and_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        content: str, where: str, problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    html = tmp_path / "never.html"
    assert main(["rate", str(path), "--plot", str(html)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err and where in err and problem in err
    assert not html.exists()  # nothing written


def test_bad_anchor_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["rate", "x.jsonl", "--anchor", "no-equals"])
    assert main(["rate", str(tmp_path / "absent.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_csv_with_nan_winner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"model_a": ["a", "a"], "model_b": ["b", "b"], "winner": ["model_a", None]}).to_csv(path, index=False)
    assert main(["rate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:line 3" in err and "winner is empty or NaN" in err


def test_anchor_dropped_by_min_battles_in_one_group_is_a_note(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from votes.files import write_battles_file

    syn = synthetic_battles(400, 3, seed=2).battles[["model_a", "model_b", "winner"]]
    syn["category"] = "big"
    # In "small", model-0 plays 2 battles: --min-battles 5 drops it there, so the anchor is absent.
    small = pd.DataFrame({"model_a": ["model-1"] * 20 + ["model-0"] * 2,
                          "model_b": ["model-2"] * 20 + ["model-1"] * 2,
                          "winner": ["model_a", "model_b"] * 10 + ["model_a", "tie"], "category": "small"})
    path = tmp_path / "b.jsonl"
    write_battles_file(pd.concat([syn, small], ignore_index=True), path)
    rows, err = run_json_err(capsys, str(path), "--by", "category", "--anchor", "model-0=1200", "--min-battles", "5")
    big = {r["model"]: r["rating"] for r in rows if r["group"] == "big"}
    assert big["model-0"] == pytest.approx(1200)
    assert {r["model"] for r in rows if r["group"] == "small"} == {"model-1", "model-2"}
    assert "anchor model-0 absent in this group: centred on 1000" in err
    # Without groups an anchor that is left out is still an error, and says why.
    assert main(["rate", str(tmp_path / "b.jsonl"), "--anchor", "model-0=1200", "--min-battles", "10000"]) == 2
    assert "--min-battles" in capsys.readouterr().err


def test_file_default_keeps_every_source_but_drops_flagged(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from votes.files import write_battles_file

    df = pd.DataFrame({"model_a": ["a"] * 6, "model_b": ["b"] * 6,
                       "winner": ["model_a", "model_b", "model_a", "tie", "model_b", "model_b"],
                       "source": ["human", "human", "judge:x", "judge:x", "human", "judge:x"],
                       "flags": [[], [], [], [], ["identity_leak:model_b"], ["identity_leak:model_a"]]})
    path = tmp_path / "b.jsonl"
    write_battles_file(df, path)
    rows, err = run_json_err(capsys, str(path))
    assert sum(r["battles"] for r in rows) == 2 * 4
    assert "2 vote(s) flagged identity_leak left out" in err
    rows = run_json(capsys, str(path), "--include-flagged", "--source", "judge:")
    assert sum(r["battles"] for r in rows) == 2 * 3


def test_small_group_under_min_battles_is_reported_and_the_others_print(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from votes.files import write_battles_file

    big = synthetic_battles(300, 3, seed=4).battles[["model_a", "model_b", "winner"]]
    big["category"] = "big"
    tiny = pd.DataFrame({"model_a": ["model-0", "model-1"], "model_b": ["model-1", "model-2"],
                         "winner": ["model_a", "tie"], "category": "tiny"})
    path = tmp_path / "b.jsonl"
    write_battles_file(pd.concat([big, tiny], ignore_index=True), path)
    rows, err = run_json_err(capsys, str(path), "--by", "category", "--min-battles", "5")
    assert {r["group"] for r in rows} == {"big"} and len(rows) == 3
    assert "category = tiny (2 battles): all models under --min-battles 5" in err
    # Only when every group is empty is it an error.
    assert main(["rate", str(path), "--by", "category", "--min-battles", "100000"]) == 2
    assert "every category group" in capsys.readouterr().err


def test_json_rows_carry_method_ci_method_and_davidson_nu(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, str(store), "--ties", "davidson")
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
    assert {r["method"] for r in rows} == {"davidson"} and all(r["ci_method"].startswith("analytic") for r in rows)
    assert len({r["nu"] for r in rows}) == 1 and rows[0]["nu"] > 0
    half = run_json(capsys, str(store))
    assert half[0]["method"] == "bt-half-ties" and "nu" not in half[0]


def test_db_path_that_is_not_sqlite_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("notsqlite.db", "x.sqlite", "y.sqlite3"):
        path = tmp_path / name
        path.write_text("model_a,model_b,winner\na,b,model_a\n")
        assert main(["rate", str(path)]) == 2
        err = capsys.readouterr().err
        assert "not an SQLite database" in err and "unknown battles format" not in err


def test_empty_store_says_it_has_no_battles(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    VoteStore(db_path).close()
    for extra in ([], ["--source", "all"]):
        assert main(["rate", str(db_path), *extra]) == 2
        err = capsys.readouterr().err
        assert "the store has no battles yet" in err and "--source" not in err


def test_ties_share_a_rank_and_few_battles_are_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two.csv"
    pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "a"], "winner": ["tie", "tie"]}).to_csv(path, index=False)
    rows, err = run_json_err(capsys, str(path))
    assert [r["rank"] for r in rows] == [1, 1]
    assert "CIs from very few battles are unreliable" in err
