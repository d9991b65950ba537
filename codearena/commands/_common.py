"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from votes.location import DEFAULT_DB, default_db_path


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, metavar="DB",
                        help=f"vote store: an SQLite file, or postgresql://USER@HOST/DBNAME for a PostgreSQL "
                        f"store several replicas share (default: $CODEARENA_DB or ./{DEFAULT_DB})")


def db_path(args: argparse.Namespace) -> str:
    return args.db or default_db_path()


def add_models_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=None, metavar="FILE",
                        help="models.toml (default: $CODEARENA_MODELS, else the built-in local models)")


def check_output_folder(path: str | os.PathLike[str], option: str) -> None:
    """A folder a command will write into (creating it if needed), checked before anything is opened or
    created: a command that fails later must not leave an empty store or folder behind."""
    folder = Path(path)
    if folder.exists():
        if not folder.is_dir():
            raise ValueError(f"{option} {folder}: not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"{option} {folder}: the folder is not writable")
        return
    parent = folder.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {folder}: cannot be created, {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {folder}: cannot be created, {parent} is not writable")


def check_output_file(path: str | os.PathLike[str], option: str) -> None:
    """A file a command will write at the end: its folder must exist and it must not be a folder."""
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{option} {out}: is a folder; name the file to write")
    if not out.parent.is_dir():
        raise ValueError(f"{option} {out}: folder {out.parent} does not exist")
