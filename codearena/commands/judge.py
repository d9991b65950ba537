"""`codearena judge`: judge two existing answer files against each other (CodeArena protocol)."""

from __future__ import annotations

import argparse
from pathlib import Path

from codearena.commands._common import add_db, db_path
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

example:
  codearena judge --answers-a model_answer/a.jsonl --answers-b model_answer/b.jsonl --prompts builtin
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


def _model_of(path: str) -> tuple[str, dict[str, str]]:
    from serving.answers import iter_answers

    models: set[str] = set()
    answers: dict[str, str] = {}
    for rec in iter_answers(path):
        models.add(rec.model_id)
        answers[rec.question_id] = rec.turns[0]
    if not answers:
        raise ValueError(f"{path}: no answers in the file")
    if len(models) != 1 or "" in models:
        raise ValueError(f"{path}: expected the answers of one model (one model_id), found "
                         f"{sorted(m or '(none)' for m in models)}")
    return models.pop(), answers


def run(args: argparse.Namespace) -> int:
    import asyncio

    from codearena.commands.duel import (
        _check_positive,
        print_results,
        report_errors,
        report_nothing_stored,
        stored_count,
    )
    from serving.backends import make_backend
    from serving.duel import judge_settings, judge_tasks, pair_result, pair_tasks, write_judgments
    from serving.models import get_model, load_models
    from serving.prompts import load_prompts
    from votes.store import VoteStore

    specs = load_models(args.models)
    judge_spec = get_model(specs, args.judge)
    _check_positive(args, ("limit", "judge_max_tokens"))
    model_a, answers_a = _model_of(args.answers_a)
    model_b, answers_b = _model_of(args.answers_b)
    if model_a == model_b:
        raise ValueError(f"{args.answers_a} and {args.answers_b} are both answers of {model_a!r}")
    prompts = load_prompts(args.prompts, category=args.category, language=args.language,
                           difficulty=args.difficulty, seed=args.seed, levels=args.levels)
    tasks = pair_tasks(prompts, model_a, answers_a, model_b, answers_b)
    if args.limit is not None:
        tasks = tasks[:args.limit]
    if not tasks:
        raise ValueError(f"no question is answered in both {args.answers_a} and {args.answers_b} among the "
                         f"selected prompts ({len(prompts)}); are these answers to --prompts {args.prompts or 'builtin'}?")
    out = Path(args.out) if args.out else (
        Path(args.answers_a).parent / f"judgment-{model_a}-vs-{model_b}-by-{args.judge}.jsonl".replace("/", "__"))
    if not out.parent.is_dir():
        raise ValueError(f"output folder {out.parent} does not exist")
    if args.no_store and args.db:
        raise ValueError("--no-store and --db contradict each other: drop one")
    backend = make_backend(judge_spec)
    # A judge without its API key or server would turn every task into an error: refuse before the store
    # is created or anything is written.
    ok, reason = backend.availability()
    if not ok:
        raise ValueError(f"judge {judge_spec.name!r} is not usable: {reason}")
    # The store the --db help promises (as duel uses it), unless asked not to store.
    store = None if args.no_store else VoteStore(db_path(args))

    async def main() -> list:
        try:
            judgments, _ = await judge_tasks(backend, tasks, store=store,
                                             settings=judge_settings(judge_spec, args.judge_max_tokens),
                                             progress=not args.quiet)
            return judgments
        finally:
            await backend.aclose()

    judgments = asyncio.run(main())
    write_judgments(out, judgments)
    print(f"{len(judgments)} judgments written to {out}")
    stored = stored_count(judgments) if store is not None else 0
    print_results([pair_result(model_a, model_b, judgments)], args.judge,
                  db=str(store.path) if stored else None)
    if store is not None and not stored:
        return report_nothing_stored(judgments)
    return report_errors(judgments)
