"""`codearena store copy SRC DST`: copy a vote store between SQLite and PostgreSQL, verified."""

from __future__ import annotations

import argparse
import sys

HELP = "copy a vote store between SQLite and PostgreSQL (either way), verified by counts and checksums"
DESCRIPTION = """Work on whole vote stores.

  codearena store copy SRC DST

copies every battle and stored answer of SRC into DST (created if needed), in one transaction, then checks
that DST holds each of SRC's rows with the same content (counts, and a checksum over every column that does
not depend on row order). A row whose id DST already holds is left as it is, so running the copy again adds
nothing. SRC and DST are each an SQLite file or a postgresql://USER@HOST/DBNAME URL; SRC is opened
read-only.

examples:
  codearena store copy codearena.db postgresql://arena@db.internal/arena     # scale out
  codearena store copy postgresql://arena@db.internal/arena backup.db        # a backup, or scale back in"""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    copy = sub.add_parser("copy", help="copy SRC into DST and verify", description=DESCRIPTION,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    copy.add_argument("src", metavar="SRC", help="the store to copy (SQLite file or postgresql:// URL)")
    copy.add_argument("dst", metavar="DST", help="where to copy it (created if needed)")
    copy.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from votes.copy import copy_store
    from votes.store import is_postgres_url

    if not is_postgres_url(args.src):
        from pathlib import Path

        if not Path(args.src).is_file():
            raise ValueError(f"{args.src}: no such store file")
    bar: list[tqdm] = []

    def progress(rows: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, unit="row", desc="copy", disable=args.quiet or not sys.stderr.isatty()))
        bar[0].update(rows)

    try:
        report = copy_store(args.src, args.dst, progress=progress)
    finally:
        if bar:
            bar[0].close()
    print(report.summary())
    return 0
