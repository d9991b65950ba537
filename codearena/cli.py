"""The `codearena` command. Each subcommand is a module in ``codearena.commands`` with HELP, configure(),
run(); the work itself lives in the rooms (serving, votes, ratings, arena_ui), so the CLI and the Python
API share one implementation.

Data flows one way, and so does this list: prompts -> answers -> (runs) -> votes -> ratings ->
leaderboard/export.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from codearena import __version__
from serving.backends.base import BackendError  # light: dataclasses only, no client libraries

# (command, module under codearena.commands); order is the order of the data flow.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("serve", "serve"),
    ("models", "models"),
    ("prompts", "prompts"),
    ("generate", "generate"),
    ("sandbox", "sandbox"),
    ("judge", "judge"),
    ("duel", "duel"),
    ("import", "import_"),
    ("rate", "rate"),
    ("audit", "audit"),
    ("validate", "validate"),
    ("export", "export"),
    ("store", "store"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codearena",
        description="Human-preference evaluation of code LLMs: crowd votes in the browser, local model duels "
        "judged by an LLM, Bradley-Terry ratings validated against LLM-judge rankings.",
        epilog="Data flows: prompts -> answers (generate) -> runs (sandbox) -> votes (serve, duel, import) -> "
        "ratings (rate, audit, validate) -> export. Run 'codearena COMMAND --help' for each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"codearena {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, module in COMMANDS:
        mod = importlib.import_module(f"codearena.commands.{module}")
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `codearena rate ... | head`: the reader left; that is not an error of ours. Point stdout at devnull
        # so the interpreter's own flush at exit does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError, BackendError) as exc:
        # Our errors subclass ValueError with a message meant for the user; show it without a traceback, as
        # a model that cannot be used (BackendError: no key, no server, no llama-cpp) is. Anything else
        # (KeyError, TypeError, ...) is a bug of ours and keeps its traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
