"""`codearena judge`: judge two existing answer files against each other (CodeArena protocol)."""

from __future__ import annotations

import argparse
from pathlib import Path

from codearena.commands._common import add_db, db_path
from codearena.commands._judging import (
    check_positive,
    execute_settings,
    print_results,
    report_errors,
    report_nothing_stored,
    stored_count,
)
from codearena.commands.duel import DEFAULT_JUDGE, add_judge_options
from codearena.commands.prompts import add_prompt_filters

HELP = "judge two answer files with an LLM judge: two games with positions swapped, CodeArena scoring"
DESCRIPTION = f"""Judge the answers of two models (FastChat/Arena-Hard model_answer JSONL files) to the same
prompts. For each question both answered, the judge compares them twice with positions swapped; each game
ends in [[A>>B]], [[A>B]], [[A=B]], [[B>A]] or [[B>>A]] (one follow-up asks for a missing label), and the
games combine as CodeArena does (strong = 2, weak = 1, summed; opposite verdicts cancel into a tie).

Writes Arena-Hard-like judgment records (question_id, model_a, model_b, judge, games[score, judgment,
user_prompt], winner) to --out, and stores each verdict as a battle (source judge:JUDGE) in the vote store
(--db, default $CODEARENA_DB or ./codearena.db), as `codearena duel` does; --no-store writes --out only.
A judgment with no verdict is an error, not a tie: recorded in --out, never stored, exit status 1.
The default judge is {DEFAULT_JUDGE} (a built-in local model; its follow-up is grammar-constrained).
With --execute each answer's code runs in the sandbox first and the judge sees both outputs; the runs are
kept in each record ("runs") and battle (judge_detail), under source judge:JUDGE+exec.

example:
  codearena judge --answers-a model_answer/a.jsonl --answers-b model_answer/b.jsonl --prompts builtin
  codearena judge --answers-a model_answer/a.jsonl --answers-b model_answer/b.jsonl --execute
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--answers-a", required=True, metavar="A.jsonl", help="model_answer file of model A")
    parser.add_argument("--answers-b", required=True, metavar="B.jsonl", help="model_answer file of model B")
    parser.add_argument("--prompts", default=None, metavar="SRC",
                        help="the prompts answered: builtin (default), hub, hf:OWNER/NAME[/FILE] or a file")
    add_prompt_filters(parser)
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="at most N prompts")
    add_judge_options(parser)
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="judgments JSONL (default: judgment-A-vs-B-by-JUDGE.jsonl next to A.jsonl)")
    add_db(parser)
    parser.add_argument("--no-store", action="store_true",
                        help="write the judgments file only; store no battles (and reuse no stored verdicts)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from serving.duel import judge_files, plan_file_judging, write_judgments
    from serving.models import get_model, load_models
    from serving.prompts import load_prompts
    from votes.store import open_store

    judge_spec = get_model(load_models(args.models), args.judge)
    check_positive(args, ("limit", "judge_max_tokens", "run_concurrency"))
    execute = execute_settings(args)
    if args.no_store and args.db:
        raise ValueError("--no-store and --db contradict each other: drop one")
    prompts = load_prompts(args.prompts, category=args.category, language=args.language,
                           difficulty=args.difficulty, seed=args.seed, levels=args.levels)
    plan = plan_file_judging(judge_spec, args.answers_a, args.answers_b, prompts, limit=args.limit,
                             execute=execute)
    out = Path(args.out) if args.out else Path(args.answers_a).parent / (
        f"judgment-{plan.model_a}-vs-{plan.model_b}-by-{plan.rater}.jsonl".replace("/", "__"))
    if not out.parent.is_dir():
        raise ValueError(f"output folder {out.parent} does not exist")
    # The store the --db help promises (as duel uses it), unless asked not to store; opened only now that
    # everything is checked.
    store = None if args.no_store else open_store(db_path(args))
    result, judgments = asyncio.run(judge_files(plan, store=store, judge_max_tokens=args.judge_max_tokens,
                                                progress=not args.quiet))
    write_judgments(out, judgments)
    print(f"{len(judgments)} judgments written to {out}")
    stored = stored_count(judgments) if store is not None else 0
    print_results([result], plan.rater, db=store.location if stored else None)
    if store is not None and not stored:
        return report_nothing_stored(judgments)
    return report_errors(judgments)
