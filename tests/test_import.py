"""`codearena import`: the field's vote files into a real SQLite vote store, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codearena.cli import main
from ratings import leaderboard
from tests.conftest import require_shared
from votes.store import VoteStore

MT_BENCH_PAPER_ORDER = ["gpt-4", "claude-v1", "gpt-3.5-turbo", "vicuna-13b-v1.2", "alpaca-13b", "llama-13b"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


ARENA_ROWS = [
    {"question_id": "q1", "model_a": "m1", "model_b": "m2", "winner": "model_a", "judge": "arena_user_1",
     "turn": 1, "language": "English", "tstamp": 1.0,
     "conversation_a": [{"role": "user", "content": "sort a list"}, {"role": "assistant", "content": "sorted(x)"}],
     "conversation_b": [{"role": "user", "content": "sort a list"}, {"role": "assistant", "content": "x.sort()"}]},
    {"question_id": "q2", "model_a": "m2", "model_b": "m3", "winner": "tie (bothbad)", "tstamp": 2.0},
    {"question_id": "q3", "model_a": "m1", "model_b": "m3", "winner": "model_c", "tstamp": 3.0},
    {"question_id": "q4", "model_a": "m1", "model_b": "m1", "winner": "tie", "tstamp": 4.0},
    {"question_id": "q5", "model_a": "m3", "model_b": "m1", "winner": "model_b", "tstamp": 5.0},
]


def test_arena_battles_counts_rejections_and_is_idempotent(tmp_path, db_path, capsys) -> None:
    f = write_jsonl(tmp_path / "arena.jsonl", ARENA_ROWS)
    rc, out, _ = cli(capsys, "import", "arena-battles", str(f), "--db", str(db_path))
    assert rc == 0
    assert "read 5 rows" in out and "added 3" in out and "rejected 2" in out
    assert "unknown winner label 'model_c'" in out and "arena.jsonl:line 3" in out
    assert "same model" in out and "arena.jsonl:line 4" in out

    rc, out, _ = cli(capsys, "import", "arena-battles", str(f), "--db", str(db_path))
    assert rc == 0 and "added 0, already present 3" in out

    store = VoteStore(db_path)
    assert store.sources() == {"import:arena-battles": 3}
    first = store.battles_frame("import:arena-battles").set_index("prompt_id").loc["q1"]
    assert first["answer_a"] == "sorted(x)" and first["prompt"] == "sort a list" and first["language"] == "English"
    # The raw Arena user id is never stored, only its hash.
    assert "arena_user_1" not in json.dumps(store.battles_frame().astype(str).to_dict("records"))


def test_json_list_and_as_source(tmp_path, db_path, capsys) -> None:
    f = tmp_path / "arena.json"
    f.write_text(json.dumps(ARENA_ROWS[:2]), encoding="utf-8")
    rc, out, _ = cli(capsys, "import", "arena-battles", str(f), "--db", str(db_path), "--as-source", "human")
    assert rc == 0 and "source human: 2" in out
    assert VoteStore(db_path).sources() == {"human": 2}


def test_malformed_json_line_is_an_error_with_its_line_number(tmp_path, db_path, capsys) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps(ARENA_ROWS[0]) + "\n\n{\"model_a\": \"m1\", oops}\n", encoding="utf-8")
    rc, _, err = cli(capsys, "import", "arena-battles", str(f), "--db", str(db_path))
    assert rc == 2
    assert f"{f}:line 3: not valid JSON" in err
    assert VoteStore(db_path).count() == 0  # nothing half-imported


def test_unknown_format_and_bad_source_are_refused_before_touching_the_store(tmp_path, db_path, capsys) -> None:
    f = write_jsonl(tmp_path / "a.jsonl", ARENA_ROWS[:1])
    rc, _, err = cli(capsys, "import", "chatbot-arena", str(f), "--db", str(db_path))
    assert rc == 2 and "unknown import format 'chatbot-arena'" in err and "mt-bench-human" in err
    rc, _, err = cli(capsys, "import", "arena-battles", str(f), "--db", str(db_path), "--as-source", "robot")
    assert rc == 2 and "bad --as-source 'robot'" in err
    rc, _, err = cli(capsys, "import", "arena-battles", str(tmp_path / "nope.jsonl"), "--db", str(db_path))
    assert rc == 2 and "no such file" in err
    assert not db_path.exists()


def test_judgments_each_game_is_a_battle_oriented_as_the_judge_saw_it(tmp_path, db_path, capsys) -> None:
    rows = [
        {"question_id": "q1", "model": "small", "judge": "gpt-4-1106-preview",
         "games": [{"score": "A>>B", "judgment": "..."}, {"score": "B>A", "judgment": "..."}]},
        {"question_id": "q2", "model": "small", "judge": "gpt-4-1106-preview",
         "games": [{"score": "[[A=B]]"}, {"score": None}]},
        {"question_id": "q3", "model_a": "x", "model_b": "y", "judge": "qwen-judge", "games": [{"score": "B>>A"}]},
    ]
    f = write_jsonl(tmp_path / "judgment.jsonl", rows)
    rc, out, _ = cli(capsys, "import", "codearena-judgments", str(f), "--db", str(db_path))
    assert rc == 0 and "added 4" in out and "rejected 1" in out and "game 2 has no verdict" in out
    df = VoteStore(db_path).battles_frame("judge:gpt-4-1106-preview").sort_values(["prompt_id", "created_at"])
    q1 = df[df["prompt_id"] == "q1"]
    games = {json.loads(r["judge_detail"])["game"]: r for _, r in q1.iterrows()}
    # Game 1: baseline in position A wins strongly; game 2: positions swapped, the baseline (now B) wins.
    assert (games[1]["model_a"], games[1]["model_b"], games[1]["winner"]) == ("gpt-4-0314", "small", "model_a")
    assert (games[2]["model_a"], games[2]["model_b"], games[2]["winner"]) == ("small", "gpt-4-0314", "model_b")
    assert json.loads(games[2]["flags"]) == ["swapped"] and json.loads(games[1]["judge_detail"])["strong"] is True
    other = VoteStore(db_path).battles_frame("judge:qwen-judge")
    assert other[["model_a", "model_b", "winner"]].values.tolist() == [["x", "y", "model_b"]]


def test_pandalm_majority_and_judge_join_on_small_file(tmp_path, db_path, capsys) -> None:
    base = {"instruction": "Fix the bug", "input": "x = 1 +", "response1": "x = 1", "response2": "x = 1 + 1"}
    test = [
        {"idx": 0, "cmp_key": "a-7b_b-7b", "annotator1": 2, "annotator2": 2, "annotator3": 1, **base},
        {"idx": 1, "cmp_key": "a-7b_b-7b", "annotator1": 1, "annotator2": 2, "annotator3": 0, **base},
        {"idx": 2, "cmp_key": "a-7b_c-7b", "annotator1": 0, "annotator2": 0, "annotator3": 0, **base},
    ]
    judge = [{"idx": 0, "gpt_result": "1"}, {"idx": 1, "gpt_result": "2"}, {"idx": 2, "gpt_result": "garbage"}]
    (tmp_path / "test.json").write_text(json.dumps(test), encoding="utf-8")
    (tmp_path / "judge.json").write_text(json.dumps(judge), encoding="utf-8")
    rc, out, _ = cli(capsys, "import", "pandalm", str(tmp_path / "test.json"), "--db", str(db_path),
                     "--judge-file", str(tmp_path / "judge.json"), "--judge-name", "gpt-3.5-turbo")
    assert rc == 0
    assert "annotators have no majority label" in out and "judge verdict is not 1, 2 or tie" in out
    store = VoteStore(db_path)
    human = store.battles_frame("import:pandalm").set_index("prompt_id")
    assert human["winner"].to_dict() == {"0": "model_b", "2": "tie"}
    assert human.loc["0", "model_a"] == "a-7b" and human.loc["0", "answer_b"] == "x = 1 + 1"
    judged = store.battles_frame("judge:gpt-3.5-turbo").set_index("prompt_id")
    assert judged["winner"].to_dict() == {"0": "model_a", "1": "model_b"}


def test_judge_file_needs_a_judge_name(tmp_path, db_path, capsys) -> None:
    (tmp_path / "t.json").write_text("[]", encoding="utf-8")
    (tmp_path / "j.json").write_text("[]", encoding="utf-8")
    rc, _, err = cli(capsys, "import", "pandalm", str(tmp_path / "t.json"), "--db", str(db_path),
                     "--judge-file", str(tmp_path / "j.json"))
    assert rc == 2 and "--judge-name" in err
    assert not db_path.exists()  # refused before the store was created


def test_failed_import_leaves_no_new_db(tmp_path, db_path, capsys) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    rc, _, err = cli(capsys, "import", "arena-battles", str(empty), "--db", str(db_path))
    assert rc == 2 and "the file is empty" in err
    # A folder whose second file is broken: nothing from the first is stored either.
    folder = tmp_path / "battles"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", ARENA_ROWS[:1])
    (folder / "b.jsonl").write_text("{oops\n", encoding="utf-8")
    rc, _, err = cli(capsys, "import", "arena-battles", str(folder), "--db", str(db_path))
    assert rc == 2 and "b.jsonl:line 1: not valid JSON" in err
    assert not db_path.exists()


def test_a_file_of_another_format_exits_1_and_says_so(db_path, capsys) -> None:
    turns = require_shared("mt-bench-human/human_judgments_turn1.jsonl")
    rc, out, err = cli(capsys, "import", "pandalm", str(turns), "--db", str(db_path))
    assert rc == 1
    assert "rejected 1689" in out
    assert ("no row could be read as pandalm: is this a pandalm file? (most common rejection, 1689 of 1689 "
            "rows: no idx or no cmp_key of the form modelA_modelB") in err
    assert not db_path.exists()
    # The right format for the same file imports.
    rc, _, _ = cli(capsys, "import", "mt-bench-human", str(turns), "--db", str(db_path))
    assert rc == 0 and VoteStore(db_path).count() > 0


def test_answers_in_both_turn_shapes(tmp_path, db_path, capsys) -> None:
    folder = tmp_path / "model_answer"
    folder.mkdir()
    write_jsonl(folder / "fastchat.jsonl", [{"question_id": 81, "model_id": "m1", "answer_id": "x",
                                             "choices": [{"index": 0, "turns": ["first", "second"]}]}])
    write_jsonl(folder / "arenahard.jsonl", [{"question_id": "abc", "model_id": "m2",
                                              "choices": [{"turns": [{"content": "code", "token_len": 1}]}]},
                                             {"question_id": "abd", "model_id": "m2", "choices": []}])
    rc, out, _ = cli(capsys, "import", "answers", str(folder), "--db", str(db_path))
    assert rc == 0 and "read 3 rows from 2 file(s); added 2" in out and "rejected 1" in out
    store = VoteStore(db_path)
    assert store.answers("m1")[0]["turns"] == ["first", "second"] and store.answers("m1")[0]["question_id"] == "81"
    assert store.answers("m2")[0]["answer"] == "code"
    rc, out, _ = cli(capsys, "import", "answers", str(folder), "--db", str(db_path))
    assert "added 0, already present 2" in out


# -- real data ------------------------------------------------------------------------------------------
def test_mt_bench_human_real_file_ranks_as_the_paper(db_path, capsys) -> None:
    f = require_shared("mt-bench-human/human_judgments_turn1.jsonl")
    rc, out, _ = cli(capsys, "import", "mt-bench-human", str(f), "--db", str(db_path))
    assert rc == 0 and "read 1689 rows" in out and "added 1689" in out and "rejected 0" in out
    board = leaderboard(VoteStore(db_path).battles_frame("import:mt-bench-human"))
    # Zheng et al. 2023 rank these six models, by expert votes, in exactly this order; the BT fit agrees.
    assert board["model"].tolist() == MT_BENCH_PAPER_ORDER


def test_pandalm_real_files(db_path, capsys) -> None:
    test = require_shared("pandalm/testset-v1.json")
    judge = require_shared("pandalm/gpt-3.5-turbo-testset-v1.json")
    rc, out, _ = cli(capsys, "import", "pandalm", str(test), "--db", str(db_path), "--judge-file", str(judge),
                     "--judge-name", "gpt-3.5-turbo")
    assert rc == 0
    # 999 pairs: every one has a human majority; GPT-3.5 answered "garbage" on 25 of them.
    assert "source import:pandalm: 999" in out and "source judge:gpt-3.5-turbo: 974" in out
    assert "rejected 25" in out
    store = VoteStore(db_path)
    assert set(store.battles_frame("import:pandalm")["model_a"]) \
        | set(store.battles_frame("import:pandalm")["model_b"]) \
        == {"bloom-7b", "cerebras-gpt-6.7B", "llama-7b", "opt-7b", "pythia-6.9b"}


def test_arena_hard_answers_folder(db_path, capsys) -> None:
    folder = require_shared("arena-hard-v0.1/model_answer")
    rc, out, _ = cli(capsys, "import", "answers", str(folder), "--db", str(db_path))
    assert rc == 0 and "from 12 file(s)" in out
    store = VoteStore(db_path)
    assert len(store.answer_models()) == 12
    assert len(store.answers("gpt-4o-2024-05-13")) == 500


def test_codearena_judge_records_round_trip(tmp_path, db_path, capsys) -> None:
    from serving.judge import Game, Judgment

    record = Judgment(question_id="q9", model_a="qwen", model_b="smollm", judge="qwen-judge",
                      games=[Game(swapped=False, user_prompt="..", label="A>B", status="ok"),
                             Game(swapped=True, user_prompt="..", label="B>>A", status="ok")],
                      points=3, winner="model_a").to_record()
    f = write_jsonl(tmp_path / "judgments.jsonl", [record])
    rc, out, _ = cli(capsys, "import", "codearena-judgments", str(f), "--db", str(db_path))
    # One vote per judged pair, as `codearena duel` stores it: the two games are one judgment, not two votes.
    assert rc == 0 and "source judge:qwen-judge: 1" in out
    df = VoteStore(db_path).battles_frame("judge:qwen-judge")
    # Game 1 shows qwen as A and it wins; game 2 shows it as B and B wins: qwen wins the pair.
    assert list(zip(df["model_a"], df["model_b"], df["winner"], strict=True)) == [("qwen", "smollm", "model_a")]
    detail = json.loads(df["judge_detail"][0])
    assert detail["points"] == 3 and [g["score"] for g in detail["games"]] == ["A>B", "B>>A"]
