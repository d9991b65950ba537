"""FastChat / Arena-Hard ``model_answer`` rows into the store's answers table (``duel`` reuses them,
``validate`` reads their lengths), through the one row parser in :mod:`votes.answers`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from votes.answers import AnswerRowError, parse_answer_row
from votes.importers.core import ImportOptions, Rejection, Row
from votes.record import name_problem, text_problem


def parse_answers(rows: Iterable[Row], opts: ImportOptions,
                  origin: str) -> tuple[list[dict[str, Any]], list[Rejection]]:
    """``model_answer`` rows -> rows for :meth:`VoteStore.add_answers`, and the rows rejected (with why)."""
    out, bad = [], []
    for where, r in rows:
        try:
            rec = parse_answer_row(r, where)
        except AnswerRowError:
            bad.append(Rejection(where, "needs question_id, model_id and choices[0].turns"))
            continue
        if not rec.model_id:
            bad.append(Rejection(where, "needs question_id, model_id and choices[0].turns"))
            continue
        problem = name_problem(rec.model_id)
        if problem:
            bad.append(Rejection(where, f"model_id {problem}"))
            continue
        problem = next((p for p in map(text_problem, [*rec.turns, rec.question_id]) if p), None)
        if problem:
            bad.append(Rejection(where, f"an answer or its question_id {problem}"))
            continue
        meta: dict[str, Any] = {k: r[k] for k in ("answer_id", "tstamp") if k in r}
        if rec.conv_metadata is not None:
            meta["conv_metadata"] = rec.conv_metadata
        out.append({"model": rec.model_id, "question_id": rec.question_id, "answer": rec.turns[0],
                    "turns": list(rec.turns), "source": origin, "meta": meta})
    return out, bad
