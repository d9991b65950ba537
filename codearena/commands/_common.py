"""Options shared by several subcommands."""

from __future__ import annotations

import argparse

# Not imported from votes.store: that pulls sqlite_utils and pandas into every `codearena --help`.
DEFAULT_DB = "codearena.db"


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, metavar="DB",
                        help=f"vote store SQLite file (default: $CODEARENA_DB or ./{DEFAULT_DB})")


def db_path(args: argparse.Namespace) -> str:
    from votes.store import default_db_path

    return args.db or default_db_path()


def add_models_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=None, metavar="FILE",
                        help="models.toml (default: $CODEARENA_MODELS, else the built-in local models)")
