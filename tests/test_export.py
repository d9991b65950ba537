"""`codearena export`: ratings with their metadata, votes that other tools load, DPO preference pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from codearena.cli import main
from votes.record import Battle
from votes.store import VoteStore


@pytest.fixture
def store(db_path: Path) -> Path:
    s = VoteStore(db_path)
    b = []
    winners = ["model_a", "model_b", "model_a", "tie", "tie (bothbad)", "model_a"]
    for i in range(60):
        w = winners[i % len(winners)]
        b.append(Battle(model_a=["qwen", "smol", "llama"][i % 3], model_b=["smol", "llama", "qwen"][i % 3], winner=w,
                        prompt=f"write function {i}", prompt_id=f"q{i}", answer_a=f"def a{i}(): pass",
                        answer_b=f"def b{i}(): pass", category="generation", language="python", voter=f"v{i % 5}"))
    # Decisive but without answer texts: a vote, not a preference pair.
    b += [Battle(model_a="qwen", model_b="smol", winner="model_a", prompt_id="q-noanswer") for _ in range(4)]
    # A multi-turn battle: the stored conversation wins over prompt + answer.
    conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "A1"},
            {"role": "user", "content": "more"}, {"role": "assistant", "content": "A2"}]
    b.append(Battle(model_a="qwen", model_b="llama", winner="model_b", prompt="hi", answer_a="A1", answer_b="B1",
                    conversation_a=conv, turn=2, mode="named"))
    b += [Battle(model_a="qwen", model_b="smol", winner="model_a", source="judge:qwen-judge", prompt="p",
                 answer_a="x", answer_b="y") for _ in range(7)]
    s.add_many(b)
    s.close()
    return db_path


def test_ratings_json_records_method_votes_date_and_ci(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "lb.json"
    assert main(["export", "ratings", "--db", str(store), "--out", str(out), "--bootstrap", "20"]) == 0
    data = json.loads(out.read_text())
    assert data["method"] == "bt-half-ties"
    # votes share prompts here: the bootstrap resamples whole prompts (rate's default --cluster auto)
    assert data["ci_method"].startswith("cluster-bootstrap") and "by prompt" in data["ci_method"]
    assert data["votes"] == 64
    assert data["date"][:4].isdigit() and data["source"] == "human"
    assert [r["model"] for r in data["leaderboard"]] and {"rating", "ci_low", "rank_ub"} <= set(data["leaderboard"][0])


@pytest.mark.parametrize("fmt", ["csv", "md"])
def test_ratings_csv_and_markdown_get_a_meta_sidecar(store: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"lb.{fmt}"
    assert main(["export", "ratings", "--db", str(store), "--out", str(out), "--format", fmt,
                 "--ties", "davidson"]) == 0
    meta = json.loads((tmp_path / f"lb.{fmt}.meta.json").read_text())
    assert meta["method"] == "davidson" and meta["votes"] == 64 and "davidson_nu" in meta
    text = out.read_text()
    if fmt == "csv":
        assert len(pd.read_csv(out)) == 3
    else:
        assert text.startswith("| model | rating |") and text.count("\n") == 5


def test_votes_jsonl_in_the_chatbot_arena_schema(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "votes.jsonl"
    # Every source and the named vote: the default selection is rate's (anonymous human votes).
    assert main(["export", "votes", "--db", str(store), "--out", str(out), "--source", "all",
                 "--include-named"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 72
    r = next(r for r in rows if r["question_id"] == "q0")
    assert {"question_id", "model_a", "model_b", "winner", "judge", "turn", "anony", "language", "tstamp",
            "conversation_a", "conversation_b"} <= set(r)
    assert r["conversation_a"] == [{"role": "user", "content": "write function 0"},
                                   {"role": "assistant", "content": "def a0(): pass"}]
    assert r["judge"] == "v0" and r["anony"] is True and r["tstamp"] > 1.7e9
    assert r["source"] == "human" and r["flags"] == []
    multi = next(r for r in rows if r["turn"] == 2)
    assert len(multi["conversation_a"]) == 4 and multi["anony"] is False
    assert multi["conversation_b"][1]["content"] == "B1"
    noans = next(r for r in rows if r["question_id"] == "q-noanswer")
    assert noans["conversation_a"] is None
    judged = [r for r in rows if r["judge"] == "judge:qwen-judge"]
    assert len(judged) == 7
    # The export is itself a valid battles file: it rates.
    assert main(["rate", str(out), "--format", "json"]) == 0


def test_votes_parquet_folder_with_dataset_card(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "release"
    assert main(["export", "votes", "--db", str(store), "--source", "human", "--format", "parquet",
                 "--out", str(out)]) == 0
    table = pq.read_table(out / "battles.parquet")
    df = table.to_pandas()
    assert len(df) == 64 and set(df["winner"]) == {"model_a", "model_b", "tie", "tie (bothbad)"}
    conv = df.loc[df["question_id"] == "q1", "conversation_b"].iloc[0]
    assert list(conv[1].values()) == ["assistant", "def b1(): pass"]
    card = (out / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "path: battles.parquet" in card
    assert "battles: 64" in card and "`conversation_a / conversation_b`" in card


def test_votes_csv_flattens_conversations(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "votes.csv"
    assert main(["export", "votes", "--db", str(store), "--format", "csv", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 64  # anonymous human votes, as `rate` counts them
    assert json.loads(df.loc[df["question_id"] == "q3", "conversation_a"].iloc[0])[0]["role"] == "user"


def test_preferences_keep_decisive_human_votes_with_answers(store: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prefs.jsonl"
    assert main(["export", "preferences", "--db", str(store), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # 60 votes cycle a, b, a, tie, bothbad, a: 40 decisive. The named multi-turn vote is left out twice
    # over: named by default, multi-turn always.
    assert len(rows) == 40
    # One phrasing for every count (the summary used to mix "votes left out" and "without answer texts").
    assert "40 pairs; left out: 10 ties, 10 both-bad, 0 multi-turn, 4 without answer text" in said
    r = next(r for r in rows if r["question_id"] == "q1")  # winner model_b
    assert (r["prompt"], r["chosen"], r["rejected"]) == ("write function 1", "def b1(): pass", "def a1(): pass")
    assert r["model_chosen"] == "llama" and r["model_rejected"] == "smol"
    assert all({"prompt", "chosen", "rejected"} <= set(x) for x in rows)


def test_export_refuses_to_overwrite_and_bad_format(store: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.json"
    out.write_text("keep me")
    assert main(["export", "ratings", "--db", str(store), "--out", str(out)]) == 2
    assert out.read_text() == "keep me" and "already exists" in capsys.readouterr().err
    assert main(["export", "votes", "--db", str(store), "--format", "md", "--out", str(tmp_path / "v.md")]) == 2
    assert "jsonl | csv | parquet" in capsys.readouterr().err


def _export_votes_default(store: Path, out: Path) -> list[dict]:
    assert main(["export", "votes", "--db", str(store), "--out", str(out)]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_every_export_selects_votes_as_rate_does(store: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    s = VoteStore(store)
    s.add_many([Battle(model_a="qwen", model_b="smol", winner="model_b", prompt="leak", prompt_id=f"leak{i}",
                       answer_a="I am Qwen", answer_b="b", flags=["identity_leak:model_a"]) for i in range(3)])
    s.close()
    rows = _export_votes_default(store, tmp_path / "v.jsonl")
    assert len(rows) == 64 and {r["source"] for r in rows} == {"human"} and all(r["anony"] for r in rows)
    assert "3 vote(s) flagged identity_leak left out" in capsys.readouterr().out
    assert main(["export", "preferences", "--db", str(store), "--out", str(tmp_path / "p.jsonl"),
                 "--include-named", "--include-flagged"]) == 0
    said = capsys.readouterr().out
    prefs = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(prefs) == 43 and "1 multi-turn, " in said  # the named 2-turn vote never counts
    assert main(["export", "votes", "--db", str(store), "--out", str(tmp_path / "f.jsonl"),
                 "--include-flagged"]) == 0
    flagged = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert [r["flags"] for r in flagged if r["question_id"] == "leak0"] == [["identity_leak:model_a"]]
    # The flags survive the round trip: rating the export leaves them out again.
    capsys.readouterr()
    assert main(["rate", str(tmp_path / "f.jsonl"), "--format", "json"]) == 0
    assert "3 vote(s) flagged identity_leak left out" in capsys.readouterr().err


def test_export_ratings_reproduces_rate(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    opts = ["--anchor", "qwen=1200", "--min-battles", "5", "--ci", "bootstrap", "--bootstrap", "30", "--seed",
            "4", "--prior", "2", "--ties", "davidson"]
    out = tmp_path / "lb.json"
    assert main(["export", "ratings", "--db", str(store), "--out", str(out), *opts]) == 0
    capsys.readouterr()
    assert main(["rate", str(store), "--format", "json", *opts]) == 0
    printed = json.loads(capsys.readouterr().out)
    data = json.loads(out.read_text())
    assert [r["model"] for r in data["leaderboard"]] == [r["model"] for r in printed]
    for col in ("rating", "ci_low", "ci_high", "battles", "rank_ub"):
        assert [r[col] for r in data["leaderboard"]] == pytest.approx([r[col] for r in printed])
    assert next(r for r in data["leaderboard"] if r["model"] == "qwen")["rating"] == pytest.approx(1200)
    assert data["settings"] == {"ties": "davidson", "bootstrap": 30, "seed": 4, "ci": "bootstrap",
                                "anchor": {"model": "qwen", "rating": 1200.0}, "min_battles": 5, "prior": 2.0,
                                "cluster_by": "auto", "include_named": False, "include_flagged": False}


@pytest.mark.parametrize("name,reader", [("lb.csv", "csv"), ("lb.md", "md"), ("lb.json", "json")])
def test_ratings_format_follows_the_out_suffix(store: Path, tmp_path: Path, name: str, reader: str) -> None:
    out = tmp_path / name
    assert main(["export", "ratings", "--db", str(store), "--out", str(out)]) == 0
    text = out.read_text()
    if reader == "csv":
        assert list(pd.read_csv(out).columns[:2]) == ["model", "rating"] and not text.startswith("{")
    elif reader == "md":
        assert text.startswith("| model | rating |")
    else:
        assert "leaderboard" in json.loads(text)


def test_votes_format_follows_the_out_suffix_and_a_contradiction_is_an_error(
        store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "votes", "--db", str(store), "--out", str(tmp_path / "v.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "v.csv")) == 64
    assert main(["export", "votes", "--db", str(store), "--out", str(tmp_path / "release")]) == 0
    assert len(pq.read_table(tmp_path / "release" / "battles.parquet")) == 64
    assert main(["export", "votes", "--db", str(store), "--out", str(tmp_path / "v.parquet")]) == 0
    assert (tmp_path / "v.parquet" / "battles.parquet").is_file()
    capsys.readouterr()
    assert main(["export", "ratings", "--db", str(store), "--format", "json", "--out", str(tmp_path / "x.csv")]) == 2
    assert "contradicts" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
    assert main(["export", "preferences", "--db", str(store), "--out", str(tmp_path / "p.txt")]) == 2
    assert "pass --format" in capsys.readouterr().err


def _card(tmp_path: Path, db: Path, *extra: str) -> str:
    out = tmp_path / "card"
    assert main(["export", "votes", "--db", str(db), "--out", str(out), "--force", *extra]) == 0
    return (out / "README.md").read_text()


def test_dataset_card_license_follows_the_sources(store: Path, tmp_path: Path) -> None:
    s = VoteStore(store)
    s.add_many([Battle(model_a="qwen", model_b="smol", winner="model_a", source="import:pandalm",
                       prompt_id=f"p{i}") for i in range(3)]
               + [Battle(model_a="qwen", model_b="smol", winner="tie", source="import:somewhere",
                         prompt_id=f"s{i}") for i in range(2)])
    s.close()
    human = _card(tmp_path, store, "--source", "human")
    assert "license: cc-by-4.0" in human and "operator should confirm" in human
    panda = _card(tmp_path, store, "--source", "import:pandalm")
    assert "license: other" in panda and "`import:pandalm`: apache-2.0" in panda
    assert "cc-by-4.0" not in panda
    mixed = _card(tmp_path, store, "--source", "all")
    assert "license: other" in mixed and "`import:somewhere`: unknown, check the source" in mixed
    assert "license: mit" in _card(tmp_path, store, "--source", "import:pandalm", "--license", "mit")
