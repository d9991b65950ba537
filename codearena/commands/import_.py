"""`codearena import FORMAT PATH`: the field's vote datasets and answer files into the vote store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codearena.commands._common import add_db, db_path

HELP = "import vote datasets (Chatbot Arena, MT-bench, PandaLM, Arena-Hard judgments) and model answers"
DESCRIPTION = """Import votes or answers into the vote store. Idempotent: importing the same file twice adds nothing.

Formats:
  arena-battles        Chatbot Arena battle files (JSONL, JSON list, CSV or Parquet: model_a, model_b,
                       winner, ...); reads back what `codearena export votes` writes, keeping each row's
                       source, category, language and tstamp (as the vote time)
  mt-bench-human       MT-bench human judgments (question_id, judge, model_a, model_b, winner)
  pandalm              PandaLM test set (majority of annotator1..3); with --judge-file F --judge-name NAME
                       the judge's verdicts on the same pairs become judge:NAME battles (joined on idx)
  codearena-judgments  CodeArena judge outputs (`codearena duel`/`judge` JSONL): one battle per judged pair,
                       the same one `duel --db` stores (re-importing adds nothing; judgments with an error
                       are rejected); Arena-Hard model_judgment files: one battle per game (A>>B .. B>>A,
                       game 2 has positions swapped); source judge:<judge named in each row>
  answers              FastChat / Arena-Hard model_answer JSONL files (a file or a model_answer/ folder)

Provenance: imported human votes are stored with source import:<dataset> (dataset = the format name, or
--dataset); say who voted with --as-source human or --as-source judge:NAME. PATH may be a folder: every
.jsonl/.json file under it is imported (arena-battles: .csv/.parquet too). Battle ids do not depend on the
source: rows already stored under another source are not imported again under the new one (exit status 1).
A file in which no row can be read as FORMAT (another format) exits 1; every file is read before the store
is opened, so a failed import creates no DB. A malformed file (bad JSON or UTF-8, a turn of Infinity, a
tstamp of 1e20) is an error naming its line (exit 2); a row that cannot be a vote (an unknown winner, a
model name with control characters) is rejected and counted.

The import is all or nothing: every file's battles are stored in one transaction, so an error, a full disk
or a kill -9 in the middle leaves the store as it was (other writers, such as a running arena, wait for it).

Example:
  codearena import pandalm testset-v1.json --judge-file gpt-3.5-turbo-testset-v1.json --judge-name gpt-3.5-turbo
"""


def configure(parser: argparse.ArgumentParser) -> None:
    from votes.importers import ARENA_HARD_BASELINE, FORMATS  # light: stdlib + votes.record

    parser.add_argument("format", metavar="FORMAT", help=f"one of: {', '.join(FORMATS)}")
    parser.add_argument("path", metavar="PATH", type=Path,
                        help="file (JSONL or JSON list; arena-battles also CSV or Parquet) or folder of files")
    add_db(parser)
    parser.add_argument("--dataset", default=None,
                        help="dataset name used in battle ids and the source import:<dataset> (default: FORMAT)")
    parser.add_argument("--as-source", default=None, metavar="SOURCE",
                        help="who voted: 'human' or 'judge:NAME' (default: import:<dataset> for human datasets)")
    parser.add_argument("--judge-file", type=Path, default=None, help="pandalm: judge verdict file joined on idx")
    parser.add_argument("--judge-name", default=None, help="pandalm: the judge's name (source judge:NAME)")
    parser.add_argument("--baseline", default=ARENA_HARD_BASELINE,
                        help=f"codearena-judgments: model in position A of game 1 when rows do not name it "
                             f"(default: {ARENA_HARD_BASELINE}, Arena-Hard v0.1's baseline)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from votes.importers import ImportOptions, check_options, expand_paths, import_path
    from votes.store import VoteStore, open_store

    opts = ImportOptions(dataset=args.dataset or args.format, as_source=args.as_source, judge_file=args.judge_file,
                         judge_name=args.judge_name, baseline=args.baseline)
    # Before the store is created: a typo must not leave an empty DB behind.
    check_options(args.format, opts)
    expand_paths(args.path, args.format)
    opened: list[VoteStore] = []

    def open_once() -> VoteStore:
        # Called by import_path only once every file has parsed and some row is to be added.
        opened.append(open_store(db_path(args)))
        return opened[0]

    try:
        report = import_path(open_once, args.format, args.path, opts,
                             progress=lambda rows, name: tqdm(rows, desc=name, unit="row", leave=False,
                                                              disable=len(rows) < 10_000 or not sys.stderr.isatty()))
    finally:
        for store in opened:
            store.close()
    print(report.summary())
    if report.nothing_readable:
        print(f"codearena import: {report.nothing_readable_message()}", file=sys.stderr)
        return 1
    if report.conflicts:
        # Not silent: the user asked for another source and did not get it for these rows.
        for message in report.conflict_messages():
            print(f"codearena import: {message}", file=sys.stderr)
        return 1
    return 0
