"""Judge outputs: CodeArena judgments (``codearena duel``/``judge`` JSONL, read as
:class:`votes.judgment.JudgmentRecord`) and Arena-Hard ``model_judgment`` rows.

A CodeArena judgment is ONE battle, the very one the duel stored (combined winner, the same id, computed
from the judged answers' hashes the record carries), so importing the file after a duel adds nothing and a
pair's two games are not two votes. Records written before the hashes existed are keyed on the prompts the
judge saw instead (a re-import adds nothing; the store is also searched for the duel's battle of the same
games). Each Arena-Hard game is one battle, oriented as the judge saw it, so position bias stays
measurable."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from votes.importers.core import (
    ImportOptions,
    Parsed,
    Rejection,
    Row,
    battle_or_rejection,
    created_at,
    str_or_none,
)
from votes.judgment import POSITION_WINNER, JudgmentFormatError, JudgmentRecord, is_strong, normalize_label
from votes.record import BattleError, import_id, text_hash


def parse_codearena_judgment(where: str, r: dict[str, Any], opts: ImportOptions) -> Parsed:
    """One CodeArena judgment record -> the one battle the duel stored for it; a record with an error is
    no vote (an error is not a tie)."""
    try:
        record = JudgmentRecord.from_record(r)
    except JudgmentFormatError as exc:
        return Rejection(where, str(exc))
    if record.error is not None or record.winner is None:
        return Rejection(where, f"judgment has no verdict ({record.error or 'no winner'})")
    # Older records name no answers: key on what the judge saw, so a re-import of the file adds nothing.
    fallback = import_id(f"judge:{record.rater}", record.model_a, record.model_b, record.question_id,
                         *(text_hash(g.user_prompt) for g in record.games))
    try:
        return record.to_battle(source=opts.as_source, fallback_id=fallback,
                                created_at=created_at(where, r.get("tstamp")))
    except (BattleError, JudgmentFormatError) as exc:
        return Rejection(where, str(exc))


def parse_arena_hard_judgment(where: str, r: dict[str, Any], opts: ImportOptions) -> Iterator[Parsed]:
    """Arena-Hard ``model_judgment`` rows: ``games`` with ``score`` labels (``A>>B`` .. ``B>>A``); game 1 puts
    the baseline (or ``model_a``) in position A, game 2 swaps the positions. ``judge_detail`` keeps the
    label, its strength (``>>`` strong) and the game number."""
    qid, judge = r.get("question_id", r.get("uid")), r.get("judge")
    first_a = r.get("model_a") or r.get("baseline") or opts.baseline
    first_b = r.get("model_b") or r.get("model")
    games = r.get("games")
    if qid is None or not first_b or not isinstance(games, list):
        yield Rejection(where, "not a judgment row (needs question_id, model or model_b, games)")
        return
    source = opts.as_source or (f"judge:{judge}" if judge else f"import:{opts.dataset}")
    for game_no, game in enumerate(games, 1):
        score = game.get("score") if isinstance(game, dict) else None
        label = normalize_label(str(score)) if score is not None else None
        if label is None:
            yield Rejection(where, f"game {game_no} has no verdict label (score {score!r})")
            continue
        # Arena-Hard's files rely on the order: game 2 is the swapped one.
        swapped = bool(game.get("swapped")) if "swapped" in game else game_no % 2 == 0
        model_a, model_b = (first_b, first_a) if swapped else (first_a, first_b)
        yield battle_or_rejection(
            where, model_a=model_a, model_b=model_b, winner=POSITION_WINNER[label], source=source,
            mode="anonymous", prompt_id=str(qid), category=str_or_none(r.get("category")),
            flags=["swapped"] if swapped else [],
            judge_detail={"score": label, "strong": is_strong(label), "game": game_no, "judge": judge},
            id=import_id(opts.dataset, qid, judge, first_a, first_b, game_no),
        )


def parse_codearena_judgments(rows: Iterable[Row], opts: ImportOptions) -> Iterator[Parsed]:
    """CodeArena judgment records, or Arena-Hard model_judgment rows, each by its own shape."""
    for where, r in rows:
        if JudgmentRecord.is_record(r):
            yield parse_codearena_judgment(where, r, opts)
        else:
            yield from parse_arena_hard_judgment(where, r, opts)
