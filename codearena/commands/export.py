"""`codearena export`: the leaderboard, the votes, or preference pairs, in formats other tools read."""

from __future__ import annotations

import argparse
from pathlib import Path

from codearena.commands._common import add_db, db_path
from codearena.commands.rate import add_rating_options, add_vote_filters

HELP = "export the leaderboard, the votes (Chatbot Arena schema) or DPO preference pairs"
DESCRIPTION = """Export what the arena collected.

  ratings      leaderboard as csv | json | md; JSON embeds method, votes, date and CI method, CSV and
               Markdown get them in a PATH.meta.json sidecar
  votes        battles in the Chatbot Arena schema as jsonl | csv | parquet; parquet writes a folder
               (PATH/battles.parquet + README.md dataset card) that datasets.load_dataset("parquet") reads
  preferences  decisive human votes as JSONL {prompt, chosen, rejected, ...} for TRL's DPO trainer;
               ties, both-bad votes, multi-turn votes (judged on the whole conversation, not one
               answer) and votes without stored answers are excluded and counted

Files are written whole or not at all: to a temporary file in the same folder, renamed over --out once
complete, so a full disk or an interrupted export never leaves a cut file, and --force keeps the old
export until the new one is complete. A device or pipe (/dev/stdout) is written directly. CSV cells that
start with =, +, - or @ (a formula to a spreadsheet) are written with a leading ' ; `codearena import` and
`rate` read them back unchanged.

Every export selects votes as `codearena rate` does: source human from a store (--source to change),
every source from a battles file; named-mode votes and votes flagged identity_leak are left out unless
--include-named / --include-flagged. `export ratings` takes rate's fit options, so it writes the table
`rate` prints with the same options, and records them in its metadata.

examples:
  codearena export ratings --format md --out leaderboard.md --bootstrap 100
  codearena export votes --format parquet --out votes_release/
  codearena export preferences --out prefs.jsonl"""

FORMATS = {"ratings": ("csv", "json", "md"), "votes": ("jsonl", "csv", "parquet"), "preferences": ("jsonl",)}
DEFAULT_FORMAT = {"ratings": "json", "votes": "jsonl", "preferences": "jsonl"}
# The format an --out suffix stands for, per export; "" is a path without a suffix (a folder for votes).
SUFFIX_FORMAT = {
    "ratings": {".csv": "csv", ".json": "json", ".md": "md"},
    "votes": {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet", "": "parquet"},
    "preferences": {".jsonl": "jsonl"},
}


class ExportError(ValueError):
    """An export that cannot be done as asked."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=list(FORMATS), metavar="WHAT", help="ratings | votes | preferences")
    add_db(parser)
    parser.add_argument("--source", default=None, metavar="SRC",
                        help="human | judge:NAME | judge: | import:NAME | all (default: human from a store, "
                        "all from a battles file, which is usually one dataset)")
    parser.add_argument("--format", default=None,
                        help="ratings: csv|json|md; votes: jsonl|csv|parquet; preferences: jsonl (default: from "
                        "the --out suffix; a votes folder or .parquet is parquet)")
    parser.add_argument("--out", required=True, metavar="PATH", help="output file (a folder for votes parquet)")
    parser.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    add_vote_filters(parser)
    ratings = parser.add_argument_group("ratings", "fit options, as in `codearena rate`")
    add_rating_options(ratings)  # type: ignore[arg-type]  # an argument group takes add_argument alike
    parser.add_argument("--license", default=None,
                        help="votes parquet: license line of the dataset card (default: cc-by-4.0 for the "
                        "arena's own votes, 'other' with each source's license listed when imports are included)")


def output_format(what: str, out: str, fmt: str | None) -> str:
    """The export format: --format, else inferred from the --out suffix, so `--out lb.csv` writes CSV.

    An explicit --format that contradicts a known suffix is an error (JSON in lb.csv helps no one).
    """
    from votes.atomic import is_special

    by_suffix = SUFFIX_FORMAT[what]
    folder = out.endswith(("/", "\\")) or Path(out).is_dir()
    suffix = "" if folder else Path(out).suffix.lower()
    # No suffix means a folder only for a path that is not already something else (/dev/full, a file).
    existing_file = not folder and suffix == "" and (Path(out).exists() or is_special(Path(out)))
    implied = None if existing_file else by_suffix.get(suffix)
    if fmt is not None:
        if fmt not in FORMATS[what]:
            raise ExportError(f"--format {fmt}: {what} exports as {' | '.join(FORMATS[what])}")
        if implied is not None and implied != fmt:
            named = "a folder" if suffix == "" else f"a {suffix} file"
            raise ExportError(f"--format {fmt} contradicts --out {out} ({named} means {implied}); "
                              "change one of them")
        return fmt
    if implied is not None:
        return implied
    if existing_file:
        raise ExportError(f"--out {out}: an existing file without a suffix; pass --format "
                          f"({' | '.join(f for f in FORMATS[what] if f != 'parquet')})")
    if suffix == "":
        return DEFAULT_FORMAT[what]
    known = ", ".join(s for s in by_suffix if s) + (" or a folder" if "" in by_suffix else "")
    raise ExportError(f"--out {out}: cannot tell the {what} format from {suffix!r} (expected {known}); "
                      "pass --format")


def run(args: argparse.Namespace) -> int:
    from votes.atomic import is_special

    fmt = output_format(args.what, args.out, args.format)
    out = Path(args.out)
    special = is_special(out)
    if special and (fmt == "parquet" or fmt in ("csv", "md") and args.what == "ratings"):
        what = "a folder" if fmt == "parquet" else f"a {out.name}.meta.json sidecar next to it"
        raise ExportError(f"--out {out}: a device or pipe, but {fmt} writes {what}; choose a file path or "
                          f"--format {'jsonl' if args.what == 'votes' else 'json'}")
    if out.exists() and not special and not args.force:
        raise ExportError(f"{out}: already exists (pass --force to overwrite)")
    if not out.parent.exists():
        raise ExportError(f"{out}: folder {out.parent} does not exist")
    if fmt == "parquet" and out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: parquet writes a folder, and {out} is a file")
    src = db_path(args)
    if args.what == "ratings":
        _ratings(src, args, fmt, out)
    elif args.what == "votes":
        _votes(src, args, fmt, out)
    else:
        _preferences(src, args, out)
    return 0


def _load(src: str, args: argparse.Namespace):
    """The votes an export uses, selected as `codearena rate` selects them (ratings.source)."""
    from ratings.source import load_battles

    return load_battles(src, source=args.source, include_named=args.include_named,
                        include_flagged=args.include_flagged)


def _ratings(src: str, args: argparse.Namespace, fmt: str, out: Path) -> None:
    from dataclasses import asdict

    from codearena.commands.rate import rating_settings
    from ratings.export import ratings_meta, write_leaderboard
    from ratings.groups import check_anchor
    from ratings.leaderboard import rate

    settings = rating_settings(args)
    loaded = _load(src, args)
    check_anchor(loaded.battles, args.anchor, args.min_battles)
    res = rate(loaded.battles, **settings)
    recorded = {**settings, "anchor": None if args.anchor is None else {"model": args.anchor[0],
                                                                         "rating": args.anchor[1]},
                **({"style": asdict(settings["style"])} if "style" in settings else {}),
                "include_named": args.include_named, "include_flagged": args.include_flagged}
    meta = ratings_meta(method=res.method, ci_method=res.ci_method, n_votes=res.n_battles,
                        source=loaded.source_filter, models=len(res.models), notes=[*loaded.notes, *res.notes],
                        nu=res.nu, settings=recorded)
    table = res.table
    write_leaderboard(out, table, meta, fmt)
    print(f"wrote {out}: {len(table)} models from {res.n_battles} votes ({res.method}, {res.ci_method})")


def _votes(src: str, args: argparse.Namespace, fmt: str, out: Path) -> None:
    from ratings.export import PARQUET_FILE, arena_records, dataset_card, write_votes

    loaded = _load(src, args)
    records = arena_records(loaded.battles)
    card = None
    if fmt == "parquet":
        card = dataset_card(records, data_file=PARQUET_FILE, source=loaded.source_filter, license_id=args.license)
    write_votes(out, records, fmt, card=card)
    left_out = "".join(f"; {n}" for n in loaded.notes)
    print(f"wrote {out}: {len(records)} battles{left_out}")


def _preferences(src: str, args: argparse.Namespace, out: Path) -> None:
    from ratings.export import preference_pairs

    loaded = _load(src, args)
    # The source is already selected (human from a store by default); named votes are out unless asked.
    prefs = preference_pairs(loaded.battles, human_only=False)
    # One phrasing for every count, the same in the summary and in the error.
    left_out = (f"left out: {prefs.ties_excluded} ties, {prefs.bothbad_excluded} both-bad, "
                f"{prefs.multi_turn_excluded} multi-turn, {prefs.missing_answers} without answer text"
                + "".join(f"; {n}" for n in loaded.notes))
    if len(prefs.pairs) == 0:
        raise ExportError(f"{src}: no preference pairs; {left_out}")
    from votes.atomic import atomic_path

    with atomic_path(out) as tmp:
        prefs.pairs.to_json(tmp, orient="records", lines=True, force_ascii=False)
    print(f"wrote {out}: {len(prefs.pairs)} pairs; {left_out}")
