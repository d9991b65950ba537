"""`codearena duel`: generate what is missing, judge every pair, store the verdicts as battles."""

from __future__ import annotations

import argparse
import sys

from codearena.commands._common import (
    add_db,
    add_models_option,
    check_output_file,
    check_output_folder,
    db_path,
)
from codearena.commands._judging import (
    check_positive,
    execute_settings,
    print_answers,
    print_results,
    report_errors,
    report_nothing_stored,
    stored_count,
)
from codearena.commands.prompts import add_prompt_filters

DEFAULT_JUDGE = "qwen2.5-coder-0.5b"
RUN_TIMEOUT_DEFAULT = 5.0  # votes.runs.RunLimits' default, spelt here so --help needs no import

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

With --execute, each answer's code runs in the sandbox first and the judge sees what came of it (see
"execution-aware judging" below).

examples:
  codearena duel smollm2-135m qwen2.5-coder-0.5b --limit 4 --max-tokens 256
  codearena duel smollm2-135m qwen2.5-coder-0.5b --limit 4 --execute
  codearena duel --baseline gpt-4o my-model other-model --prompts ./CodeArena.jsonl --judge gpt-4o-judge
"""


def add_judge_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--judge", default=DEFAULT_JUDGE, metavar="MODEL",
                        help=f"judge model, a name from models.toml (default: {DEFAULT_JUDGE})")
    parser.add_argument("--judge-max-tokens", type=int, default=None, metavar="N",
                        help="max tokens of each judge reply (default: the judge model's max_tokens)")
    add_models_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_execute_options(parser)


def add_execute_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("execution-aware judging", """\
--execute runs each answer's code in the sandbox first (as `codearena sandbox run` does: no network,
limits on time, memory, processes and output) and shows the judge both outputs after the answers. That
judge is another rater: its battles have source judge:JUDGE+exec and ids of their own, so
`codearena validate --reference human --candidate judge:JUDGE --versus judge:JUDGE+exec` can compare
the two. Without a sandbox here it stops (exit 2) before anything runs.""")
    group.add_argument("--execute", action="store_true",
                       help="run the answers' code first and let the judge see the outputs")
    group.add_argument("--run-timeout", type=float, default=None, metavar="S",
                       help=f"wall-clock and CPU seconds per run (default {RUN_TIMEOUT_DEFAULT:g})")
    group.add_argument("--run-concurrency", type=int, default=None, metavar="N",
                       help="runs at once (default: $CODEARENA_RUN_CONCURRENCY, else half the cores)")


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
    import asyncio

    from serving.duel import duel_pairs, plan_duel, run_duel, write_judgments
    from serving.models import get_model, load_models
    from serving.prompts import load_prompts
    from votes.store import open_store, store_exists

    # Everything a user can get wrong is checked before a model loads or a file is written.
    specs = load_models(args.models)
    duel_pairs(args.model_names, args.baseline)
    for name in [*args.model_names, *([args.baseline] if args.baseline else []), args.judge]:
        get_model(specs, name)
    check_positive(args, ("limit", "max_tokens", "judge_max_tokens", "run_concurrency"))
    execute = execute_settings(args)
    check_output_folder(args.answers_dir, "--answers-dir")
    if args.out:
        check_output_file(args.out, "--out")
    prompts = load_prompts(args.prompts, category=args.category, language=args.language,
                           difficulty=args.difficulty, limit=args.limit, seed=args.seed, levels=args.levels)
    if not prompts:
        from codearena.commands.prompts import no_match_message

        raise ValueError(no_match_message(args.prompts, args.category, args.levels))
    db = db_path(args)
    # One store, opened once: an existing one now (its answers count as cached, so a re-run needs no key for
    # those models); a new one only once the plan holds, so unusable models stop the duel before it exists.
    store = open_store(db) if store_exists(db) else None
    plan = plan_duel(specs, args.model_names, prompts, judge=args.judge, answers_dir=args.answers_dir,
                     store=store, baseline=args.baseline, execute=execute)
    if args.judge in args.model_names or args.judge == args.baseline:
        print(f"note: {args.judge} judges its own answers; LLM judges tend to favour themselves",
              file=sys.stderr)
    if store is None:
        store = open_store(db)
    results, judgments, reports = asyncio.run(run_duel(
        plan, prompts, store=store, answers_dir=args.answers_dir, max_tokens=args.max_tokens,
        judge_max_tokens=args.judge_max_tokens, progress=not args.quiet))
    if args.out:
        write_judgments(args.out, judgments)
    print_answers(reports)
    stored = stored_count(judgments)
    print_results(results, plan.rater, db=store.location if stored else None)
    if not stored:
        return report_nothing_stored(judgments)
    return report_errors(judgments)
