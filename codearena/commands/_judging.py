"""What `codearena duel` and `codearena judge` print and how they exit: the tables, the error lines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serving.answer_runs import ExecuteSettings
    from serving.duel import AnswerReport, PairResult
    from serving.judge import Judgment


def check_positive(args: argparse.Namespace, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def execute_settings(args: argparse.Namespace) -> ExecuteSettings | None:
    """--execute and its limits as the duel takes them; None without --execute (whose options then make
    no sense: said, not ignored)."""
    if not args.execute:
        given = [f"--{n.replace('_', '-')}" for n in ("run_timeout", "run_concurrency")
                 if getattr(args, n) is not None]
        if given:
            raise ValueError(f"{' and '.join(given)} only make sense with --execute")
        return None
    from serving.answer_runs import ExecuteSettings
    from votes.runs import RunLimits

    limits = RunLimits()
    if args.run_timeout is not None:
        if not 0 < args.run_timeout <= 600:
            raise ValueError(f"--run-timeout must be more than 0 and at most 600 seconds, got {args.run_timeout:g}")
        limits = RunLimits(wall_s=args.run_timeout, cpu_s=args.run_timeout)
    return ExecuteSettings(limits=limits, concurrency=args.run_concurrency)


def print_answers(reports: Sequence[AnswerReport]) -> None:
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
