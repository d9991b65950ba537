"""`codearena prompts`: list, filter and sample prompts from the built-in sample, the hub or a file."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serving.prompts import Prompt

HELP = "list, filter and sample prompts (built-in sample, CodeArena hub/file, Arena-Hard, MT-bench)"
DESCRIPTION = """List, filter and reproducibly sample prompts.

SRC is 'builtin' (default: a packaged sample of coding prompts in the CodeArena schema), 'hub' (the
Hugging Face dataset CSJianYang/CodeArena via $HF_ENDPOINT, cached under $HF_HOME), 'hf:OWNER/NAME[/FILE]',
or a file: CodeArena JSONL/Parquet, Arena-Hard or MT-bench question.jsonl (detected by its fields).

examples:
  codearena prompts --stats
  codearena prompts --language python --limit 5 --seed 1
  codearena prompts ./CodeArena.jsonl --levels ./tasktype_to_levels.json --category "Security" --format jsonl
"""


def add_prompt_filters(parser: argparse.ArgumentParser) -> None:
    """The filter options, shared with `duel` and `judge` so they select prompts the same way."""
    parser.add_argument("--category", help="keep prompts whose category or subcategory is C or has C as whole word(s), "
                             "case-insensitive ('coding' matches 'Python Coding Challenges')")
    parser.add_argument("--language", help="keep prompts in programming language L (python, js, c++, ...)")
    parser.add_argument("--difficulty", help="keep prompts of difficulty D (CodeArena: easy, medium, hard)")
    parser.add_argument("--seed", type=int, default=None, help="shuffle with this seed before --limit")
    parser.add_argument("--levels", metavar="FILE",
                        help="CodeArena tasktype_to_levels.json: map fine task types to (category, subcategory)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", nargs="?", default=None, metavar="SRC",
                        help="builtin (default), hub, hf:OWNER/NAME[/FILE], or a JSONL/Parquet path")
    add_prompt_filters(parser)
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="at most N prompts")
    parser.add_argument("--format", choices=("table", "json", "jsonl"), default="table",
                        help="output format (default: table)")
    parser.add_argument("--stats", action="store_true", help="print counts by category and language instead")


def run(args: argparse.Namespace) -> int:
    from serving.prompts import load_prompts

    prompts = load_prompts(args.src, category=args.category, language=args.language,
                           difficulty=args.difficulty, limit=args.limit, seed=args.seed, levels=args.levels)
    if not prompts:
        print(no_match_message(args.src, args.category, args.levels), file=sys.stderr)
        return 1
    if args.stats:
        _print_stats(prompts)
    elif args.format == "jsonl":
        for p in prompts:
            print(json.dumps(p.to_dict(), ensure_ascii=False))
    elif args.format == "json":
        print(json.dumps([p.to_dict() for p in prompts], ensure_ascii=False, indent=2))
    else:
        _print_table(prompts)
    return 0


def no_match_message(src: str | None, category: str | None, levels: str | None, top: int = 15) -> str:
    """Why nothing matched, with the categories the source does have (a user cannot guess Arena-Hard's
    250 cluster names): the most common ``top`` of them, as `--stats` counts them."""
    from serving.prompts import filter_prompts, load_prompts

    message = "no prompts match these filters"
    if not category:
        return message
    everything = load_prompts(src, levels=levels)
    if filter_prompts(everything, category=category):
        return f"{message} (--category {category!r} alone matches some: the other filters exclude them)"
    counts = Counter(p.category for p in everything if p.category)
    if not counts:
        return f"{message}; the prompts have no categories"
    shown = ", ".join(f"{name} ({n})" for name, n in counts.most_common(top))
    more = f" and {len(counts) - top} more (see --stats)" if len(counts) > top else ""
    return f"{message}: no category matches {category!r}; the most common categories are: {shown}{more}"


def _print_table(prompts: list[Prompt]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(prompts)} prompts")
    table.add_column("id", no_wrap=True)
    for column in ("category", "language", "difficulty", "prompt"):
        table.add_column(column, overflow="fold")
    for p in prompts:
        first_line = p.text.strip().splitlines()[0] if p.text.strip() else ""
        table.add_row(p.id, p.category or "-", p.language or "-", p.difficulty or "-", first_line[:80])
    Console(width=max(Console().width, 120)).print(table)


def _print_stats(prompts: list[Prompt]) -> None:
    print(f"{len(prompts)} prompts")
    for title, counts in (
        ("category", Counter(p.category or "(none)" for p in prompts)),
        ("language", Counter(p.language or "(none)" for p in prompts)),
        ("difficulty", Counter(p.difficulty or "(none)" for p in prompts)),
    ):
        print(f"\nby {title}:")
        width = max(len(k) for k in counts)
        for key, n in counts.most_common():
            print(f"  {key:<{width}}  {n:>4}")
