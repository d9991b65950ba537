"""Chatbot Arena battle files (JSONL, JSON, CSV, Parquet), and what ``codearena export votes`` writes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from votes.importers.core import (
    ImportOptions,
    Parsed,
    Rejection,
    Row,
    battle_or_rejection,
    conversation,
    created_at_kwargs,
    first_prompt,
    flags_of,
    last_reply,
    str_or_none,
    turn_of,
)
from votes.record import SOURCE_RE, import_id, text_hash
from votes.runs import BattleRun, RunRecordError, parse_runs


def _anonymous(value: Any) -> bool:
    # Missing means anonymous (Chatbot Arena's default); CSV may spell the flag as a string.
    return value is None or value is True or str(value).strip().lower() not in ("false", "0")


def _runs(where: str, value: Any) -> tuple[BattleRun, ...] | Rejection:
    """A row's code runs (what ``export votes`` writes: a list in JSONL, JSON text in CSV and Parquet), each
    read back through CodeRun.from_dict; a run that does not hold together rejects the row, with the reason."""
    try:
        return parse_runs(value)
    except RunRecordError as exc:
        return Rejection(where, f"bad runs: {exc}")


def _probability(value: Any) -> float | None:
    """Our export's pair_probability: a number in (0, 1], else none (Battle refuses anything else)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 < value <= 1 else None


def parse_arena_battles(rows: Iterable[Row], opts: ImportOptions) -> Iterator[Parsed]:
    """Chatbot Arena battle files: model_a, model_b, winner and optional question_id, judge, turn,
    conversation_a/b, language, category, tstamp (-> created_at), anony; plus what ``codearena export
    votes`` adds: ``source`` (kept unless --as-source is given), ``flags``, ``runs`` (the code runs) and
    ``id`` (kept, so a re-import of an export adds nothing)."""
    default_source = opts.as_source or f"import:{opts.dataset}"
    for index, (where, r) in enumerate(rows):
        qid, tstamp = r.get("question_id"), r.get("tstamp")
        row_source = r.get("source")
        ours = isinstance(row_source, str) and SOURCE_RE.match(row_source) is not None
        source = opts.as_source or (row_source if ours else default_source)
        # Arena rows are unique by question_id (+ tstamp); rows with neither fall back to their position.
        key = (qid, tstamp, r.get("judge"), r.get("model_a"), r.get("model_b"), r.get("turn"),
               None if qid is not None or tstamp is not None else index)
        row_id = r.get("id")
        conv_a, conv_b = conversation(r.get("conversation_a")), conversation(r.get("conversation_b"))
        judge = r.get("judge")
        if ours:
            # Our export's judge column is already the voter hash, or the source name when there is none.
            voter = None if judge is None or judge == row_source else str(judge)
        else:
            voter = text_hash(str(judge)) if judge is not None else None  # raw Arena user ids: hash only
        runs = _runs(where, r.get("runs"))
        if isinstance(runs, Rejection):
            yield runs
            continue
        yield battle_or_rejection(
            where, model_a=r.get("model_a"), model_b=r.get("model_b"), winner=r.get("winner"), source=source,
            mode="anonymous" if _anonymous(r.get("anony")) else "named", prompt_id=str_or_none(qid),
            prompt=first_prompt(conv_a), category=str_or_none(r.get("category")),
            language=str_or_none(r.get("language")), turn=turn_of(where, r.get("turn")),
            answer_a=last_reply(conv_a), answer_b=last_reply(conv_b), conversation_a=conv_a,
            conversation_b=conv_b, voter=voter, flags=flags_of(r.get("flags")), runs=runs,
            id=row_id if ours and isinstance(row_id, str) and row_id else import_id(opts.dataset, *key),
            pair_probability=_probability(r.get("pair_probability")) if ours else None,
            **created_at_kwargs(where, tstamp),
        )
