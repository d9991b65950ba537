"""The ``model_answer`` JSONL format of FastChat / Arena-Hard: read it, write it line by line.

One line per question: ``question_id, answer_id, model_id, choices: [{index: 0, turns: [{content,
token_len}]}], tstamp``. MT-bench files write turns as bare strings and questions' turns as strings too;
Arena-Hard writes ``{"content": ...}`` objects. Both are read; we always write the object form.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from votes.answers import AnswerRecord, parse_answer_row, turn_text
from votes.files import iter_json_lines

__all__ = ["AnswerFileError", "AnswerRecord", "Question", "append_row", "answer_row", "done_question_ids",
           "iter_answers", "read_answers", "read_questions"]


class AnswerFileError(ValueError):
    """A model_answer or question file that cannot be read, naming the file, line and problem."""


@dataclass(frozen=True)
class Question:
    question_id: str
    turns: list[str]
    category: str | None = None


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    return iter_json_lines(path, AnswerFileError)


def iter_answers(path: str | Path) -> Iterator[AnswerRecord]:
    path = Path(path)
    for lineno, obj in _json_lines(path):
        yield parse_answer_row(obj, f"{path}:line {lineno}", AnswerFileError)


def read_answers(path: str | Path) -> dict[str, AnswerRecord]:
    """question_id -> answer. A later line for the same question wins (a re-generated answer)."""
    return {rec.question_id: rec for rec in iter_answers(path)}


def read_questions(path: str | Path) -> dict[str, Question]:
    """A FastChat/Arena-Hard ``question.jsonl``: question_id -> Question."""
    path = Path(path)
    out: dict[str, Question] = {}
    for lineno, obj in _json_lines(path):
        where = f"{path}:line {lineno}"
        if "question_id" not in obj or not isinstance(obj.get("turns"), list) or not obj["turns"]:
            raise AnswerFileError(f"{where}: a question needs 'question_id' and a non-empty 'turns' list")
        qid = str(obj["question_id"])
        out[qid] = Question(qid, [turn_text(t, where, AnswerFileError) for t in obj["turns"]], obj.get("category"))
    return out


def done_question_ids(path: str | Path, model_id: str) -> set[str]:
    """Questions already answered by ``model_id`` in ``path`` (empty when the file does not exist yet).

    A torn last line (a crash mid-write) is ignored rather than fatal: that question is simply redone.
    """
    path = Path(path)
    if not path.exists():
        return set()
    done: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, RecursionError):  # a broken or absurdly nested line: not an answer
                continue
            if isinstance(obj, dict) and obj.get("model_id") == model_id and "question_id" in obj:
                done.add(str(obj["question_id"]))
    return done


def answer_row(question_id: str, model_id: str, turns: list[str], token_lens: list[int | None],
               timings: list[dict[str, Any] | None] | None = None) -> dict[str, Any]:
    """One line. ``timings``: each turn's ``AnswerTiming.to_dict()`` (or None), kept in its turn object as
    ``timing`` (readers of the format ignore keys they do not know)."""
    turn_objs: list[dict[str, Any]] = [{"content": t, "token_len": n} for t, n in zip(turns, token_lens, strict=True)]
    for obj, timing in zip(turn_objs, timings or [], strict=False):
        if timing is not None:
            obj["timing"] = timing
    return {
        "question_id": question_id,
        "answer_id": uuid.uuid4().hex,
        "model_id": model_id,
        "choices": [{"index": 0, "turns": turn_objs}],
        "tstamp": time.time(),
    }


def append_row(fh: IO[str], row: dict[str, Any]) -> None:
    """One line, flushed at once, so a crash loses at most the answer being written."""
    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    fh.flush()
