"""Options shared by several subcommands."""

from __future__ import annotations

import argparse

from votes.store import default_db_path


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, metavar="DB",
                        help=f"vote store SQLite file (default: $CODEARENA_DB or ./{default_db_path()})")


def db_path(args: argparse.Namespace) -> str:
    return args.db or default_db_path()
