"""`codearena import` against what CodeArena itself writes: judge/duel judgments JSONL after `judge --db`,
`export votes` files read back, and a re-import under another source. Real CLI, real SQLite stores, real
files; the only fake is the remote judge API (tests/test_duel.py's local OpenAI-compatible server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codearena.cli import main
from tests.test_duel import _answers_file, _prompts_file, api  # noqa: F401 - api is a fixture used below
from votes.record import Battle
from votes.store import VoteStore


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


# -- (3) CodeArena judgments: one battle per judged pair, the one `judge --db` stores ----------------------
LONG = "GOOD " + "x = 1\n" * 1000  # longer than the judge's 4000-character cut: the record lacks the answer


def test_judgments_file_after_judge_db_adds_nothing(api: Path, tmp_path: Path,  # noqa: F811
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    a = _answers_file(tmp_path / "alpha.jsonl", "alpha",
                      {"q1": LONG, "q2": "weak sql", "q3": "closures capture", "q4": "GOOD reverse"})
    b = _answers_file(tmp_path / "beta.jsonl", "beta",
                      {"q1": "weak prime", "q2": "GOOD sql", "q3": "closures remember", "q4": "weak reverse"})
    out, db = tmp_path / "judgments.jsonl", tmp_path / "votes.db"
    # q4 never gets a verdict (exit 1); q1..q3 are stored, one battle per pair.
    assert main(["judge", "--answers-a", str(a), "--answers-b", str(b), "--prompts", str(_prompts_file(tmp_path)),
                 "--judge", "fake-judge", "--models", str(api), "--out", str(out), "--db", str(db), "--quiet"]) == 1
    capsys.readouterr()
    assert VoteStore(db).count() == 3

    rc, text, _ = cli(capsys, "import", "codearena-judgments", str(out), "--db", str(db))
    assert rc == 0
    # Nothing counted twice (it was 6 more battles: one per game), and the error judgment is no vote.
    assert "read 4 rows" in text and "added 0, already present 3, rejected 1" in text
    assert "judgment has no verdict (game 1: no verdict label after the follow-up" in text
    assert VoteStore(db).count() == 3

    # Into a fresh store: the same three votes, with the prompts, answers, winners and ids the duel stored,
    # q1 too, whose answer was cut for the judge: the record carries the judged answers whole, and their
    # hashes give the duel's id.
    fresh = tmp_path / "fresh.db"
    rc, text, _ = cli(capsys, "import", "codearena-judgments", str(out), "--db", str(fresh))
    assert rc == 0 and "added 3" in text and "source judge:fake-judge: 3" in text
    cols = ["id", "prompt_id", "model_a", "model_b", "winner", "prompt", "answer_a", "answer_b", "category",
            "language"]
    duel = VoteStore(db).battles_frame("judge:fake-judge")[cols].set_index("prompt_id").sort_index()
    imported = VoteStore(fresh).battles_frame("judge:fake-judge")[cols].set_index("prompt_id").sort_index()
    assert imported["winner"].to_dict() == duel["winner"].to_dict() == {"q1": "model_a", "q2": "model_b",
                                                                           "q3": "tie"}
    assert imported.equals(duel)
    assert VoteStore(fresh).get(imported.loc["q1", "id"]).answer_a == LONG

    # A second import of the file into the fresh store adds nothing either.
    rc, text, _ = cli(capsys, "import", "codearena-judgments", str(out), "--db", str(fresh))
    assert rc == 0 and "added 0, already present 3" in text


def test_judgments_written_before_answer_hashes_still_import_once(api: Path, tmp_path: Path,  # noqa: F811
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    a = _answers_file(tmp_path / "alpha.jsonl", "alpha", {"q1": LONG, "q2": "weak sql"})
    b = _answers_file(tmp_path / "beta.jsonl", "beta", {"q1": "weak prime", "q2": "GOOD sql"})
    out, db = tmp_path / "judgments.jsonl", tmp_path / "votes.db"
    assert main(["judge", "--answers-a", str(a), "--answers-b", str(b), "--prompts", str(_prompts_file(tmp_path)),
                 "--judge", "fake-judge", "--models", str(api), "--out", str(out), "--db", str(db), "--quiet"]) == 0
    capsys.readouterr()
    # The older record: no question, answers or hashes (what the judge saw is in each game's prompt).
    old = tmp_path / "old.jsonl"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for r in rows:
        for key in ("question", "answer_a", "answer_b", "answer_a_hash", "answer_b_hash"):
            r.pop(key)
    old.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    rc, text, _ = cli(capsys, "import", "codearena-judgments", str(old), "--db", str(db))
    assert rc == 0 and "added 0, already present 2" in text  # found as the duel's battles of the same games
    fresh = tmp_path / "fresh.db"
    for expected in ("added 2", "added 0, already present 2"):
        rc, text, _ = cli(capsys, "import", "codearena-judgments", str(old), "--db", str(fresh))
        assert rc == 0 and expected in text


def test_arena_hard_judgment_games_stay_one_battle_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Arena-Hard's own model_judgment rows (no winner/points/error, games without 'swapped') keep one
    # battle per game, oriented as the judge saw it.
    f = tmp_path / "gpt-4o.jsonl"
    f.write_text(json.dumps({"question_id": "q1", "model": "small", "judge": "gpt-4-1106-preview",
                             "games": [{"score": "A>>B"}, {"score": "B>A"}]}) + "\n", encoding="utf-8")
    rc, text, _ = cli(capsys, "import", "codearena-judgments", str(f), "--db", str(tmp_path / "v.db"))
    assert rc == 0 and "added 2" in text


# -- (4) export votes -> import arena-battles ------------------------------------------------------------
def _battle(n: int, a: str, b: str, winner: str, source: str, category: str | None, **kw: object) -> Battle:
    return Battle(model_a=a, model_b=b, winner=winner, source=source, category=category, prompt_id=f"q{n}",
                  prompt=f"question {n}", answer_a=f"answer {a} {n}", answer_b=f"answer {b} {n}",
                  created_at=f"2026-01-0{1 + n % 9}T03:04:05.{n:03d}+00:00", **kw)


def _original_store(path: Path) -> VoteStore:
    store = VoteStore(path)
    battles = [
        _battle(1, "m1", "m2", "model_a", "human", "Algorithm Design", language="Python", voter="a1b2c3d4e5f60718"),
        _battle(2, "m2", "m3", "model_b", "human", "Algorithm Design", language="Python"),
        _battle(3, "m1", "m3", "tie", "human", "Databases", language="SQL"),
        _battle(4, "m3", "m2", "model_a", "human", "Databases", language="SQL", mode="named"),
        _battle(7, "m2", "m1", "model_a", "human", "Databases", language="SQL", flags=["identity_leak"]),
        _battle(5, "m1", "m2", "model_b", "judge:j", "Databases", language="SQL"),
        _battle(6, "m2", "m1", "tie (bothbad)", "import:pandalm", None),
    ]
    store.add_many(battles)
    return store


COMPARED = ["id", "model_a", "model_b", "winner", "source", "mode", "category", "language", "created_at", "prompt",
            "answer_a", "answer_b", "prompt_id", "voter", "flags"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_votes_then_import_keeps_every_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    fmt: str) -> None:
    orig = _original_store(tmp_path / "orig.db")
    out = tmp_path / f"votes.{fmt}" if fmt != "parquet" else tmp_path / "release"
    assert main(["export", "votes", "--db", str(tmp_path / "orig.db"), "--format", fmt, "--out", str(out),
                 "--source", "all", "--include-named", "--include-flagged"]) == 0
    new = tmp_path / "new.db"
    # The parquet export is a folder (battles.parquet + README.md): import takes the folder.
    rc, text, _ = cli(capsys, "import", "arena-battles", str(out), "--db", str(new))
    assert rc == 0 and "added 7" in text and "rejected 0" in text
    assert "source human: 5" in text and "source judge:j: 1" in text and "source import:pandalm: 1" in text
    got = VoteStore(new).battles_frame()[COMPARED].set_index("id").sort_index()
    want = orig.battles_frame()[COMPARED].set_index("id").sort_index()
    assert got.to_dict("index") == want.to_dict("index")

    # Per-category ratings work on the imported store (human votes: two categories).
    rc, text, _ = cli(capsys, "rate", str(new), "--by", "category")
    assert rc == 0 and "Algorithm Design" in text and "Databases" in text

    # Importing the export back into the store it came from adds nothing: same ids, same sources.
    rc, text, _ = cli(capsys, "import", "arena-battles", str(out), "--db", str(tmp_path / "orig.db"))
    assert rc == 0 and "added 0, already present 7" in text


def test_arena_rows_without_source_still_get_import_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "arena.csv"
    f.write_text("question_id,model_a,model_b,winner,tstamp,category,anony\n"
                 "q1,m1,m2,model_a,1700000000.5,coding,True\nq2,m2,m1,tie,,,False\n", encoding="utf-8")
    rc, text, _ = cli(capsys, "import", "arena-battles", str(f), "--db", str(tmp_path / "v.db"))
    assert rc == 0 and "added 2" in text and "source import:arena-battles: 2" in text
    df = VoteStore(tmp_path / "v.db").battles_frame().set_index("prompt_id")
    assert df.loc["q1", "created_at"] == "2023-11-14T22:13:20.500+00:00" and df.loc["q1", "category"] == "coding"
    assert df["mode"].to_dict() == {"q1": "anonymous", "q2": "named"}


# -- (7) re-import under another source -------------------------------------------------------------------
def test_reimport_with_another_source_is_reported_not_silent(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "arena.jsonl"
    f.write_text("".join(json.dumps({"question_id": f"q{i}", "model_a": "m1", "model_b": "m2", "winner": "model_a",
                                     "tstamp": float(i)}) + "\n" for i in range(3)), encoding="utf-8")
    db = tmp_path / "v.db"
    assert cli(capsys, "import", "arena-battles", str(f), "--db", str(db))[0] == 0
    rc, text, err = cli(capsys, "import", "arena-battles", str(f), "--db", str(db), "--as-source", "human")
    assert rc == 1
    message = ("3 already stored under source import:arena-battles (ids are per row, not per source): "
               "delete them first or import into another DB")
    assert message in text and message in err
    assert "already present 0" in text and "source human" not in text
    # No second copy of the votes under the new source; the old ones are untouched.
    assert VoteStore(db).sources() == {"import:arena-battles": 3}
    # The same source again is the ordinary idempotent re-import.
    rc, text, _ = cli(capsys, "import", "arena-battles", str(f), "--db", str(db))
    assert rc == 0 and "added 0, already present 3" in text
