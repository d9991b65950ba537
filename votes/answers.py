"""The answer record: one model's answer to one question, as FastChat / Arena-Hard ``model_answer`` files
hold it, and the one parser of such a row (``serving.answers`` reads and writes the files with it;
``codearena import answers`` stores its rows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class AnswerRowError(ValueError):
    """A model_answer row that cannot be read; the message names where and why."""


@dataclass(frozen=True)
class AnswerRecord:
    question_id: str  # always a string: MT-bench uses ints, Arena-Hard hex strings
    model_id: str
    turns: list[str]
    answer_id: str | None = None
    token_lens: list[int | None] | None = None
    tstamp: float | None = None
    conv_metadata: dict[str, Any] | None = None  # Arena-Hard's style counts, when the file has them


def turn_text(turn: Any, where: str, error: type[ValueError] = AnswerRowError) -> str:
    if isinstance(turn, str):
        return turn
    if isinstance(turn, dict) and isinstance(turn.get("content"), str):
        return turn["content"]
    raise error(f"{where}: a turn must be a string or an object with a 'content' string, got {turn!r:.80}")


def parse_answer_row(obj: dict[str, Any], where: str, error: type[ValueError] = AnswerRowError) -> AnswerRecord:
    """One ``model_answer`` line: ``question_id, model_id, choices: [{turns: [{content, token_len}]}]``.
    MT-bench writes turns as bare strings, Arena-Hard as ``{"content": ...}`` objects; both are read."""
    if "question_id" not in obj:
        raise error(f"{where}: missing 'question_id'")
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise error(f"{where}: 'choices' must be a non-empty list of objects")
    raw_turns = choices[0].get("turns")
    if not isinstance(raw_turns, list) or not raw_turns:
        raise error(f"{where}: choices[0].turns must be a non-empty list")
    tstamp = obj.get("tstamp")
    meta = obj.get("conv_metadata")
    return AnswerRecord(
        question_id=str(obj["question_id"]),
        model_id=str(obj.get("model_id") or obj.get("model") or ""),
        turns=[turn_text(t, where, error) for t in raw_turns],
        answer_id=obj.get("answer_id") if isinstance(obj.get("answer_id"), str) else None,
        token_lens=[t.get("token_len") if isinstance(t, dict) else None for t in raw_turns],
        tstamp=tstamp if isinstance(tstamp, (int, float)) and not isinstance(tstamp, bool) else None,
        conv_metadata=meta if isinstance(meta, dict) else None,
    )
