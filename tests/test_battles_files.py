"""Battles files in the Chatbot Arena schema: each format loads; each bad row is named."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from votes.files import BattlesFileError, read_battles_file, write_battles_file

ROWS = [
    {"model_a": "gpt-4", "model_b": "llama-13b", "winner": "model_a", "question_id": 81, "judge": "expert_1"},
    {"model_a": "llama-13b", "model_b": "claude-v1", "winner": "tie (bothbad)", "question_id": 82, "judge": "x"},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_every_format_round_trips_and_keeps_extra_columns(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"battles{suffix}"
    write_battles_file(pd.DataFrame(ROWS), path)
    df = read_battles_file(path)
    assert list(df["winner"]) == ["model_a", "tie (bothbad)"]
    assert list(df["judge"]) == ["expert_1", "x"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"winner": "A>>B"}, r"line 2: unknown winner label 'A>>B'"),
        ({"model_b": "gpt-4", "model_a": "gpt-4"}, r"line 2: model_a == model_b"),
        ({"model_b": None}, r"line 2: model_b is empty or NaN"),
        ({"model_a": ""}, r"line 2: empty model name"),
    ],
)
def test_bad_rows_are_named_by_line(tmp_path: Path, bad: dict, message: str) -> None:
    path = write_jsonl(tmp_path / "b.jsonl", [ROWS[0], {**ROWS[1], **bad}])
    with pytest.raises(BattlesFileError, match=message):
        read_battles_file(path)


def test_missing_column_empty_file_and_broken_json(tmp_path: Path) -> None:
    with pytest.raises(BattlesFileError, match="missing column"):
        read_battles_file(write_jsonl(tmp_path / "a.jsonl", [{"model_a": "x", "model_b": "y"}]))
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(BattlesFileError, match="empty"):
        read_battles_file(tmp_path / "e.jsonl")
    (tmp_path / "j.jsonl").write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(BattlesFileError, match=r"j.jsonl:line 2: not valid JSON"):
        read_battles_file(tmp_path / "j.jsonl")
    with pytest.raises(BattlesFileError, match="CSV line 3|line 3"):
        pd.DataFrame([ROWS[0], {**ROWS[1], "winner": "nope"}]).to_csv(tmp_path / "c.csv", index=False)
        read_battles_file(tmp_path / "c.csv")


def test_arena_schema_files_get_the_store_columns(tmp_path: Path) -> None:
    """question_id -> prompt_id and the last assistant turn -> answer_a/b, in JSONL and in CSV (where a
    conversation is JSON text), so validation and style control read exported files."""
    conv_a = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "A1"},
              {"role": "user", "content": "more"}, {"role": "assistant", "content": "A2"}]
    conv_b = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "B1"}]
    df = pd.DataFrame({"model_a": ["x", "y"], "model_b": ["y", "x"], "winner": ["model_a", "tie"],
                       "question_id": [81, "q2"], "conversation_a": [conv_a, None], "conversation_b": [conv_b, None]})
    jsonl = tmp_path / "b.jsonl"
    write_battles_file(df, jsonl)
    csv = tmp_path / "b.csv"
    flat = df.copy()
    for c in ("conversation_a", "conversation_b"):
        flat[c] = [None if v is None else json.dumps(v) for v in flat[c]]
    write_battles_file(flat, csv)
    for path in (jsonl, csv):
        got = read_battles_file(path)
        assert list(got["prompt_id"]) == ["81", "q2"], path
        assert [None if pd.isna(v) else v for v in got["answer_a"]] == ["A2", None], path
        assert [None if pd.isna(v) else v for v in got["answer_b"]] == ["B1", None], path
    # Columns already there win: the store's own exports keep their answers.
    own = df.assign(prompt_id=["p1", "p2"], answer_a=["mine", "mine2"])
    write_battles_file(own, jsonl)
    got = read_battles_file(jsonl)
    assert list(got["prompt_id"]) == ["p1", "p2"] and list(got["answer_a"]) == ["mine", "mine2"]


def test_csv_keeps_hash_like_ids_as_text(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    pd.DataFrame([{**ROWS[0], "judge": "1e23", "question_id": "007"}]).to_csv(path, index=False)
    df = read_battles_file(path)
    assert df["judge"].iloc[0] == "1e23" and df["question_id"].iloc[0] == "007"


@pytest.mark.parametrize("ids", [[81, None, "q2", "81"], [81.0, float("nan")], ["007", None]])
def test_prompt_id_is_str_of_each_question_id_with_missing_kept_missing(ids: list) -> None:
    from votes.files import _store_columns

    for dtype in (object, "Int64") if all(isinstance(i, int) or i is None for i in ids) else (object,):
        q = pd.Series(ids, dtype=dtype)
        got = _store_columns(pd.DataFrame({"question_id": q}))["prompt_id"]
        expected = [None if pd.isna(v) else str(v) for v in q]
        assert [None if pd.isna(v) else v for v in got] == expected


NON_ASCII = {**ROWS[0], "judge": "exp\u00e9rt \u2014 \u5f20"}  # not ASCII: the careful reader, not the fast path


@pytest.mark.parametrize("rows,suffix", [(ROWS, ".jsonl"), ([*ROWS, NON_ASCII], ".jsonl"), (ROWS, ".csv"),
                                         (ROWS, ".parquet")])
def test_a_file_read_in_the_background_equals_one_read_in_the_foreground(tmp_path: Path, rows: list[dict],
                                                                         suffix: str) -> None:
    from votes.prefetch import read_in_background

    path = tmp_path / f"battles{suffix}"
    write_battles_file(pd.DataFrame(rows), path)
    pending = read_in_background(path)
    assert pending is not None
    pd.testing.assert_frame_equal(pending.result(), read_battles_file(path))


def test_a_bad_file_read_in_the_background_raises_the_same_one_line_error(tmp_path: Path) -> None:
    from votes.prefetch import read_in_background

    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + '{"model_a": "x", "model_b": "y", "winner": "model_q"}\n')
    with pytest.raises(BattlesFileError) as foreground:
        read_battles_file(path)
    pending = read_in_background(path)
    with pytest.raises(BattlesFileError) as background:
        pending.result()
    assert str(background.value) == str(foreground.value) and ":line 2" in str(background.value)


def test_only_battles_files_are_read_in_the_background(tmp_path: Path) -> None:
    from votes.prefetch import read_in_background
    from votes.store import VoteStore

    VoteStore(tmp_path / "v.jsonl").close()  # a store, whatever its name says
    assert read_in_background(tmp_path / "v.jsonl") is None
    assert read_in_background(tmp_path / "missing.jsonl") is None
    assert read_in_background(tmp_path) is None


def test_the_background_reader_parses_before_pandas_is_imported() -> None:
    # Its point: pyarrow parses while the command imports pandas and the rating code.
    import subprocess
    import sys

    code = ("import sys, votes.prefetch, votes.jsonl_fast; "
            "print(sorted(m for m in ('pandas', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "[]"
