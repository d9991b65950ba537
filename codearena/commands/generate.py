"""`codearena generate`: one model's answers to a prompt set, as a model_answer JSONL (resumable)."""

from __future__ import annotations

import argparse
import sys

from codearena.commands._common import add_db, add_models_option, db_path

HELP = "generate one model's answers to a prompt set (model_answer JSONL, resumable)"
DESCRIPTION = (
    "Answer every prompt of --prompts with MODEL and append the answers to --out in the FastChat /\n"
    "Arena-Hard model_answer format (question_id, answer_id, model_id, choices[0].turns[]{content,\n"
    "token_len}, tstamp). Re-running skips prompts already answered in --out; each answer is flushed as\n"
    "it completes. Exit status 1 when some prompts failed (re-run to retry them).\n\n"
    "example: codearena generate smollm2-135m --prompts builtin --out answers/smollm2.jsonl --limit 5"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model name from the models file (see 'codearena models')")
    parser.add_argument("--prompts", default="builtin", metavar="SRC",
                        help="prompts: 'builtin', 'hub', or a CodeArena / Arena-Hard / MT-bench file "
                             "(default: builtin)")
    parser.add_argument("--out", required=True, metavar="FILE", help="model_answer JSONL to append to")
    add_models_option(parser)
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N prompts")
    parser.add_argument("--max-tokens", type=int, default=None, metavar="N",
                        help="override the model's max_tokens for this run")
    add_db(parser)
    parser.add_argument("--store", action="store_true",
                        help="also store the answers in the vote store (--db), for the arena to show")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from serving.backends import make_backend
    from serving.backends.base import BackendError
    from serving.generate import GenerateError, generate_answers
    from serving.models import get_model, load_models
    from serving.prompts import load_prompts

    if args.limit is not None and args.limit < 1:
        raise GenerateError(f"--limit must be at least 1, got {args.limit}")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise GenerateError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    spec = get_model(load_models(args.models), args.model)
    out = Path(args.out)
    if out.is_dir():
        raise GenerateError(f"--out {out} is a folder; name the JSONL file to write (e.g. {out}/{spec.name}.jsonl)")
    prompts = load_prompts(args.prompts, limit=args.limit)
    try:
        backend = make_backend(spec)
    except BackendError as exc:
        raise GenerateError(str(exc)) from exc
    ok, reason = backend.availability()
    if not ok:
        raise GenerateError(f"model {spec.name!r} is not usable: {reason}")
    params = replace(spec.params, max_tokens=args.max_tokens) if args.max_tokens else None
    # Only now that the run can start: a fresh folder is the usual case (`--out answers/qwen.jsonl`), and a
    # failed check above must not leave empty folders behind.
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenerateError(f"cannot create the output folder {out.parent}: {exc.strerror or exc}") from exc
    store = None
    if args.store:
        from serving.answers import read_answers
        from votes.store import open_store

        if out.is_file():
            read_answers(out)  # a broken --out file stops the run before the store is created

        store = open_store(db_path(args))
    try:
        report = generate_answers(backend, prompts, out, params=params, store=store,
                                  progress=not args.no_progress)
    except BackendError as exc:
        raise GenerateError(str(exc)) from exc
    # Backends that do not count tokens (replay) report none rather than a misleading 0 tok/s.
    speed = (f"; {report.tokens} tokens in {report.seconds:.1f} s ({report.tokens_per_s:.1f} tok/s)"
             if report.tokens else f" in {report.seconds:.1f} s")
    print(f"{report.model}: {report.generated} answered, {report.skipped} already in {out}, "
          f"{len(report.failures)} failed{speed}")
    for pid, cause in report.failures[:5]:
        print(f"failed: prompt {pid}: {cause}", file=sys.stderr)
    if len(report.failures) > 5:
        print(f"... and {len(report.failures) - 5} more failures", file=sys.stderr)
    return 1 if report.failures else 0
