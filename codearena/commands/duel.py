"""`codearena duel`: generate what is missing, judge every pair, store the verdicts as battles."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from codearena.commands._common import (
    add_db,
    add_models_option,
    check_output_file,
    check_output_folder,
    db_path,
)
from codearena.commands.prompts import add_prompt_filters

if TYPE_CHECKING:
    from serving.duel import AnswerReport, PairResult
    from serving.judge import Judgment

DEFAULT_JUDGE = "qwen2.5-coder-0.5b"

HELP = "duel models on a prompt set, judged by an LLM (CodeArena protocol); verdicts become battles"
DESCRIPTION = f"""Duel models on a prompt set: generate the answers that are missing (cached in
ANSWERS_DIR/MODEL.jsonl and the store), let a judge model compare each pair in two games with the answers'
positions swapped, and store every verdict as a battle with source judge:JUDGE (anonymous: the judge never
sees model names). Prints win/tie/loss, the CodeArena score (2*wins + ties) / (2*N) and per-category rows.
A pair the judge gives no verdict for (even after one follow-up) is an error, not a tie: it is counted,
not stored, and the command exits 1, as does a run that stores no battle at all. The judge and every model
with answers still to generate are checked first (API key, server): an unusable one stops the duel (exit 2)
before anything is written. Running the same duel again judges only what is new.

Models come from models.toml (--models, $CODEARENA_MODELS) or the built-in local pair
(smollm2-135m, qwen2.5-coder-0.5b); the default judge is {DEFAULT_JUDGE}.

examples:
  codearena duel smollm2-135m qwen2.5-coder-0.5b --limit 4 --max-tokens 256
  codearena duel --baseline gpt-4o my-model other-model --prompts ./CodeArena.jsonl --judge gpt-4o-judge
"""


def add_judge_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--judge", default=DEFAULT_JUDGE, metavar="MODEL",
                        help=f"judge model, a name from models.toml (default: {DEFAULT_JUDGE})")
    parser.add_argument("--judge-max-tokens", type=int, default=None, metavar="N",
                        help="max tokens of each judge reply (default: the judge model's max_tokens)")
    add_models_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_names", nargs="+", metavar="MODEL",
                        help="models to compare (every pair), or with --baseline each against the baseline")
    parser.add_argument("--baseline", default=None, metavar="B", help="compare every MODEL with B only")
    parser.add_argument("--prompts", default=None, metavar="SRC",
                        help="builtin (default), hub, hf:OWNER/NAME[/FILE] or a prompts file")
    add_prompt_filters(parser)
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="at most N prompts")
    add_judge_options(parser)
    parser.add_argument("--max-tokens", type=int, default=None, metavar="N",
                        help="max tokens of each generated answer (default: each model's max_tokens)")
    parser.add_argument("--answers-dir", default="model_answer", metavar="DIR",
                        help="where answers are cached, one MODEL.jsonl each (default: ./model_answer)")
    parser.add_argument("--out", default=None, metavar="FILE", help="also write every judgment to this JSONL")
    add_db(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from serving.duel import check_usable, duel_pairs, run_duel_sync, write_judgments
    from serving.models import get_model, load_models
    from serving.prompts import load_prompts
    from votes.store import VoteStore

    # Everything a user can get wrong is checked before a model loads or a file is written.
    specs = load_models(args.models)
    duel_pairs(args.model_names, args.baseline)
    for name in [*args.model_names, *([args.baseline] if args.baseline else []), args.judge]:
        get_model(specs, name)
    _check_positive(args, ("limit", "max_tokens", "judge_max_tokens"))
    check_output_folder(args.answers_dir, "--answers-dir")
    if args.out:
        check_output_file(args.out, "--out")
    prompts = load_prompts(args.prompts, category=args.category, language=args.language,
                           difficulty=args.difficulty, limit=args.limit, seed=args.seed, levels=args.levels)
    if not prompts:
        from codearena.commands.prompts import no_match_message

        raise ValueError(no_match_message(args.prompts, args.category, args.levels))
    db = db_path(args)
    # Unusable models (no API key, no server) stop the duel here, before the store is created; answers
    # already in an existing store count as cached, so that store is read (never created) for the check.
    existing = VoteStore(db) if Path(db).is_file() else None
    try:
        check_usable(specs, args.model_names, prompts, judge=args.judge, answers_dir=args.answers_dir,
                     store=existing, baseline=args.baseline)
    finally:
        if existing is not None:
            existing.close()
    if args.judge in args.model_names or args.judge == args.baseline:
        print(f"note: {args.judge} judges its own answers; LLM judges tend to favour themselves",
              file=sys.stderr)
    store = VoteStore(db)
    results, judgments, reports = run_duel_sync(
        specs, args.model_names, prompts, judge=args.judge, store=store, answers_dir=args.answers_dir,
        baseline=args.baseline, max_tokens=args.max_tokens, judge_max_tokens=args.judge_max_tokens,
        progress=not args.quiet)
    if args.out:
        write_judgments(args.out, judgments)
    _print_answers(reports)
    stored = stored_count(judgments)
    print_results(results, args.judge, db=str(store.path) if stored else None)
    if not stored:
        return report_nothing_stored(judgments)
    return report_errors(judgments)


def _check_positive(args: argparse.Namespace, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def _print_answers(reports: Sequence[AnswerReport]) -> None:
    for r in reports:
        line = f"answers {r.model}: {r.cached} cached, {r.generated} generated"
        if r.failures:
            line += f", {len(r.failures)} failed (first: {r.failures[0][0]}: {r.failures[0][1]})"
        print(line)


def print_results(results: Sequence[PairResult], judge: str, *, db: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    for r in results:
        table = Table(title=f"{r.model_a} vs {r.model_b}, judged by {judge}")
        for col in ("category", "n", f"{r.model_a} wins", "ties", f"{r.model_b} wins", "errors",
                    f"score {r.model_a}"):
            table.add_column(col, justify="left" if col == "category" else "right")
        rows = [("all", r.overall), *r.by_category.items()] if len(r.by_category) > 1 else [("all", r.overall)]
        for name, s in rows:
            score = "-" if s.score is None else f"{s.score:.3f}"
            table.add_row(name, str(s.n), str(s.wins), str(s.ties), str(s.losses), str(s.errors), score)
        console.print(table)
    if db:
        print(f"battles stored in {db} with source judge:{judge}")


def stored_count(judgments: Sequence[Judgment]) -> int:
    """Judgments that are (or already were) battles in the store: those with a verdict."""
    return sum(1 for j in judgments if not j.error)


def report_nothing_stored(judgments: Sequence[Judgment]) -> int:
    """A run that stored no battle failed, whatever the reason (every answer or every verdict failed)."""
    why = (f"all {len(judgments)} judgments have no verdict" if judgments
           else "no question has answers from both models (see the failed answers above)")
    print(f"error: no battle stored: {why}", file=sys.stderr)
    report_errors(judgments)
    return 1


def report_errors(judgments: Sequence[Judgment]) -> int:
    errors = [j for j in judgments if j.error]
    if not errors:
        return 0
    print(f"error: {len(errors)} of {len(judgments)} judgments have no verdict (recorded as errors, not ties); "
          f"first: question {errors[0].question_id} ({errors[0].model_a} vs {errors[0].model_b}): "
          f"{errors[0].error}", file=sys.stderr)
    return 1
