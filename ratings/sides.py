"""The two sides of a validation (``codearena validate --reference R --candidate C``): votes from the store
or a battles file, selected by the one vote rule (``ratings.source.select_battles``), or a leaderboard file
read as a ranking (``ratings.boardfile``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ratings.boardfile import BoardFileError, ranking_from_board
from ratings.source import select_battles
from ratings.validate import Side
from votes.files import read_battles_file, read_csv_file, read_json_document, validate_battles
from votes.record import SOURCE_RE, name_problem
from votes.store import open_store, store_exists


class SourceError(ValueError):
    """A --reference/--candidate that names neither a stored source nor a usable file."""


def _leaderboard_side(name: str, df: pd.DataFrame, path: Path) -> Side:
    try:
        ranking = ranking_from_board(df, str(path))
    except BoardFileError as exc:
        raise SourceError(str(exc)) from None
    bad = next((m for m in ranking.rating.index if name_problem(str(m))), None)
    if bad is not None:
        raise SourceError(f"{path}: model {bad!r} {name_problem(str(bad))}")
    return Side(name=name, ranking=ranking)


def _select(name: str, battles: pd.DataFrame, source: str | None, include_named: bool,
            include_flagged: bool) -> Side:
    """The votes of one side through the same rule `codearena rate` uses (ratings.source.select_battles)."""
    kept, notes = select_battles(battles, source=source, include_named=include_named,
                                 include_flagged=include_flagged)
    if kept.empty:
        raise SourceError(f"{name}: every vote was left out ({'; '.join(notes)}); "
                          "pass --include-named / --include-flagged")
    return Side(name=name, battles=kept, notes=[f"{name}: {n}" for n in notes])


def load_side(spec: str, db: str | Path, *, include_named: bool = False, include_flagged: bool = False) -> Side:
    """One side of a validation, named as `codearena validate --reference/--candidate` names it: a vote
    source in the store ``db``, a battles file, or a leaderboard file."""

    path = Path(spec)
    if path.is_dir():
        raise SourceError(f"{path}: is a folder; expected a battles file, a leaderboard file or a vote source")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":
            data = read_json_document(path, SourceError)
            data = data.get("leaderboard", data.get("battles", data)) if isinstance(data, dict) else data
            try:
                df = pd.DataFrame(data)
            except (ValueError, TypeError):
                raise SourceError(f"{path}: expected a JSON list of battles or leaderboard rows") from None
        elif suffix == ".csv":
            df = read_csv_file(path, SourceError)
        else:
            df = read_battles_file(path)
        if {"model_a", "model_b", "winner"} <= set(df.columns):
            if suffix == ".csv":
                battles = validate_battles(df, path)
            elif suffix == ".json":
                battles = read_battles_file(path)
            else:
                battles = df  # read and validated above
            # A file is usually one dataset: every source in it counts (as `codearena rate FILE`).
            return _select(path.name, battles, None, include_named, include_flagged)
        if "model" in df.columns and ({"rating", "score"} & set(df.columns)):
            return _leaderboard_side(path.name, df, path)
        raise SourceError(f"{path}: neither battles (model_a, model_b, winner) nor a leaderboard (model, "
                          "rating|score); "
                          f"columns: {', '.join(map(str, df.columns))}")
    if not (SOURCE_RE.match(spec) or spec in ("all", "judge:")):
        raise SourceError(f"{spec!r}: no such file, and not a vote source (human, judge:NAME, judge:, import:NAME, "
                          "all)")
    if not store_exists(db):
        raise SourceError(f"{db}: no vote store here; import votes first or pass --db")
    store = open_store(db, read_only=True)  # validating reads: it never migrates or journals a file
    try:
        battles = store.battles_frame(spec)
        if battles.empty:
            known = ", ".join(f"{s} ({n})" for s, n in store.sources().items()) or "none"
            raise SourceError(f"{spec}: no votes with that source in {db}; sources there: {known}")
        side = _select(spec, battles, spec, include_named, include_flagged)
        side.battles = attach_answers(side.battles, store.answers())
    finally:
        store.close()
    return side


def attach_answers(battles: pd.DataFrame, answers: list[dict[str, Any]]) -> pd.DataFrame:
    """Fill answer_a/answer_b from the store's answers table where the battle has none (by model and
    prompt_id), so the longer-answer win rate can be measured on datasets that ship answers separately."""
    if not answers:
        return battles
    texts = {(a["model"], a["question_id"]): a["answer"] for a in answers}
    out = battles.copy()
    for side in ("a", "b"):
        col = f"answer_{side}"
        missing = out[col].isna()
        fill = [texts.get((m, str(q)))
                for m, q in zip(out.loc[missing, f"model_{side}"], out.loc[missing, "prompt_id"], strict=True)]
        out.loc[missing, col] = fill
    return out
