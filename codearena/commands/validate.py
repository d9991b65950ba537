"""`codearena validate`: does a judge (or a benchmark) rank models the way human voters do?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from codearena.commands._common import add_db, db_path

HELP = "compare two rankings (human votes vs an LLM judge): agreement, kappa, separability, Brier, biases"
DESCRIPTION = """Validate a candidate ranking against a reference ranking (usually human votes).

REFERENCE and CANDIDATE are each one of:
  a vote source in the store (--db): human, judge:NAME, judge: (every judge), import:NAME (e.g.
  import:pandalm) or all
  a battles file (.jsonl/.json/.csv/.parquet with model_a, model_b, winner): every source in it (a file is
  usually one dataset), or the Chatbot Arena battle schema that `codearena export votes` writes
  a leaderboard file (.csv/.json with model and rating or score; optional ci_low/ci_high, or, in JSON,
  a "bootstrap" list of sampled ratings per model)

Named-mode votes and votes flagged identity_leak are left out on both sides, as `codearena rate` leaves
them out, unless --include-named / --include-flagged.

Reported: per-vote agreement with and without ties and Cohen's kappa on the pairs both voted on (Zheng et
al. 2023), Spearman and Kendall tau between the two Bradley-Terry leaderboards, separability with 95% CI,
agreement with 95% CI and the pair-rank Brier score (Li et al. 2024, Arena-Hard), and judge biases where
the data allows (position consistency, longer-answer win rate, self-preference). See docs/validation.md.

Example:
  codearena validate --reference import:pandalm --candidate judge:gpt-3.5-turbo --format json
"""


class SourceError(ValueError):
    """A --reference/--candidate that names neither a stored source nor a usable file."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference", required=True, metavar="R", help="ground truth: source, battles or leaderboard file")
    parser.add_argument("--candidate", required=True, metavar="C", help="ranking to validate: source or file")
    add_db(parser)
    parser.add_argument("--include-named", action="store_true",
                        help="also use named-mode votes (left out by default: the voter saw the names)")
    parser.add_argument("--include-flagged", action="store_true",
                        help="also use votes flagged identity_leak (left out by default: not blind)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap replicates for the 95%% intervals (default 1000; 0 disables CIs)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    parser.add_argument("--html", type=Path, default=None, metavar="F", help="also write a self-contained HTML report")


def _leaderboard_side(name: str, df: Any, path: Path):
    import numpy as np
    import pandas as pd

    from ratings.separability import RankingLike
    from votes.record import name_problem

    col = "rating" if "rating" in df.columns else "score"
    if df["model"].isna().any() or df[col].isna().any():
        raise SourceError(f"{path}: leaderboard rows need a model and a {col}")
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if not np.isfinite(values).all():
        i = int(np.flatnonzero(~np.isfinite(values))[0])
        raise SourceError(f"{path}: row {i}: {col} {df[col].iloc[i]!r} is not a finite number")
    models = [str(m) for m in df["model"]]
    bad = next((m for m in models if name_problem(m)), None)
    if bad is not None:
        raise SourceError(f"{path}: model {bad!r} {name_problem(bad)}")
    rating = pd.Series(values, index=models)
    ci = samples = None
    if "bootstrap" in df.columns:
        lists = [list(v) if isinstance(v, (list, tuple, np.ndarray)) else None for v in df["bootstrap"]]
        if any(v is None for v in lists):
            raise SourceError(f"{path}: every model's bootstrap must be a list of sampled ratings")
        if len({len(v) for v in lists}) != 1:
            raise SourceError(f"{path}: every model needs the same number of bootstrap samples")
        try:
            matrix = np.array(lists, dtype=float)
        except (TypeError, ValueError):
            raise SourceError(f"{path}: bootstrap samples must be lists of numbers") from None
        if matrix.ndim != 2 or not np.isfinite(matrix).all():
            raise SourceError(f"{path}: bootstrap samples must be lists of finite numbers")
        samples = pd.DataFrame(matrix.T, columns=rating.index)
        from ratings.separability import intervals

        ci = intervals(samples)
    elif {"ci_low", "ci_high"} <= set(df.columns) and df[["ci_low", "ci_high"]].notna().all().all():
        bounds = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                  for c in ("ci_low", "ci_high")}
        if not all(np.isfinite(b).all() for b in bounds.values()):
            raise SourceError(f"{path}: ci_low and ci_high must be finite numbers")
        ci = pd.DataFrame(bounds, index=rating.index)
    from ratings.validate import Side

    return Side(name=name, ranking=RankingLike(rating=rating, ci=ci, samples=samples))


def _select(name: str, battles: Any, source: str | None, include_named: bool, include_flagged: bool):
    """The votes of one side through the same rule `codearena rate` uses (ratings.source.select_battles)."""
    from ratings.source import select_battles
    from ratings.validate import Side

    kept, notes = select_battles(battles, source=source, include_named=include_named,
                                 include_flagged=include_flagged)
    if kept.empty:
        raise SourceError(f"{name}: every vote was left out ({'; '.join(notes)}); "
                          "pass --include-named / --include-flagged")
    return Side(name=name, battles=kept, notes=[f"{name}: {n}" for n in notes])


def load_side(spec: str, db: str, *, include_named: bool = False, include_flagged: bool = False):
    """A --reference/--candidate value as a ratings.validate.Side."""
    import pandas as pd

    from votes.files import read_battles_file, read_csv_file, read_json_document, validate_battles
    from votes.record import SOURCE_RE

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
        raise SourceError(f"{path}: neither battles (model_a, model_b, winner) nor a leaderboard (model, rating|score); "
                          f"columns: {', '.join(map(str, df.columns))}")
    if not (SOURCE_RE.match(spec) or spec in ("all", "judge:")):
        raise SourceError(f"{spec!r}: no such file, and not a vote source (human, judge:NAME, judge:, import:NAME, "
                          "all)")
    from votes.store import VoteStore

    if not Path(db).exists():
        raise SourceError(f"{db}: no vote store here; import votes first or pass --db")
    store = VoteStore(db, read_only=True)  # validating reads: it never migrates or journals a file
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


def attach_answers(battles, answers: list[dict[str, Any]]):
    """Fill answer_a/answer_b from the store's answers table where the battle has none (by model and
    prompt_id), so the longer-answer win rate can be measured on datasets that ship answers separately."""
    if not answers:
        return battles
    texts = {(a["model"], a["question_id"]): a["answer"] for a in answers}
    out = battles.copy()
    for side in ("a", "b"):
        col = f"answer_{side}"
        missing = out[col].isna()
        fill = [texts.get((m, str(q))) for m, q in zip(out.loc[missing, f"model_{side}"], out.loc[missing, "prompt_id"], strict=True)]
        out.loc[missing, col] = fill
    return out


def run(args: argparse.Namespace) -> int:
    from ratings.validate import validate
    from ratings.validate_render import to_html, to_table

    if args.bootstrap < 0:
        raise SourceError("--bootstrap must be 0 or more")
    if args.html is not None and not args.html.parent.is_dir():
        raise SourceError(f"--html {args.html}: folder {args.html.parent} does not exist")
    db = db_path(args)
    picks = {"include_named": args.include_named, "include_flagged": args.include_flagged}
    report = validate(load_side(args.reference, db, **picks), load_side(args.candidate, db, **picks),
                      bootstrap=args.bootstrap, seed=args.seed)
    d = report.to_dict()
    if args.html is not None:
        from votes.atomic import atomic_path

        with atomic_path(args.html) as tmp:
            tmp.write_text(to_html(d), encoding="utf-8")
    print(json.dumps(d, indent=2) if args.format == "json" else to_table(d))
    return 0
