"""`codearena validate`: does a judge (or a benchmark) rank models the way human voters do?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from codearena.commands._common import add_db, db_path

HELP = "compare two rankings (human votes vs an LLM judge): agreement, kappa, separability, Brier, biases"
DESCRIPTION = """Validate a candidate ranking against a reference ranking (usually human votes).

REFERENCE and CANDIDATE are each one of:
  a vote source in the store (--db): human, judge:NAME, judge: (every judge), import:NAME (e.g.
  import:pandalm) or all
  a battles file (.jsonl/.json/.csv/.parquet with model_a, model_b, winner): every source in it (a file is
  usually one dataset), or the Chatbot Arena battle schema that `codearena export votes` writes
  a leaderboard file (.csv/.json with model and rating or score; optional ci_low/ci_high, or, in JSON,
  a "bootstrap" list of sampled ratings per model)

Named-mode votes and votes flagged identity_leak are left out on both sides, as `codearena rate` leaves
them out, unless --include-named / --include-flagged.

Reported: per-vote agreement with and without ties and Cohen's kappa on the pairs both voted on (Zheng et
al. 2023), Spearman and Kendall tau between the two Bradley-Terry leaderboards, separability with 95% CI,
agreement with 95% CI and the pair-rank Brier score (Li et al. 2024, Arena-Hard), and judge biases where
the data allows (position consistency, longer-answer win rate, self-preference). See docs/validation.md.

--versus C2 compares two candidates instead (usually one judge without and with code execution, see
`codearena duel --execute`): on the battles the reference and both candidates voted on (same prompt and
model pair), each one's agreement with the reference, and which agrees more, with an exact sign test on
the battles where they differ. REFERENCE, CANDIDATE and C2 must all be votes.

Examples:
  codearena validate --reference import:pandalm --candidate judge:gpt-3.5-turbo --format json
  codearena validate --reference human --candidate judge:gpt-4o --versus judge:gpt-4o+exec
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference", required=True, metavar="R",
                        help="ground truth: source, battles or leaderboard file")
    parser.add_argument("--candidate", required=True, metavar="C", help="ranking to validate: source or file")
    parser.add_argument("--versus", default=None, metavar="C2",
                        help="a second candidate (e.g. judge:NAME+exec): report which of C and C2 agrees more "
                             "with the reference on the battles all three voted on")
    add_db(parser)
    parser.add_argument("--include-named", action="store_true",
                        help="also use named-mode votes (left out by default: the voter saw the names)")
    parser.add_argument("--include-flagged", action="store_true",
                        help="also use votes flagged identity_leak (left out by default: not blind)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap replicates for the 95%% intervals (default 1000; 0 disables CIs)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    parser.add_argument("--html", type=Path, default=None, metavar="F", help="also write a self-contained HTML report")


def run(args: argparse.Namespace) -> int:
    from ratings.sides import SourceError, load_side
    from ratings.validate import validate
    from ratings.validate_render import to_html, to_table

    if args.bootstrap < 0:
        raise SourceError("--bootstrap must be 0 or more")
    if args.html is not None and not args.html.parent.is_dir():
        raise SourceError(f"--html {args.html}: folder {args.html.parent} does not exist")
    db = db_path(args)
    picks = {"include_named": args.include_named, "include_flagged": args.include_flagged}
    if args.versus is not None:
        return _versus(args, db, picks)
    report = validate(load_side(args.reference, db, **picks), load_side(args.candidate, db, **picks),
                      bootstrap=args.bootstrap, seed=args.seed)
    d = report.to_dict()
    if args.html is not None:
        from votes.atomic import atomic_path

        with atomic_path(args.html) as tmp:
            tmp.write_text(to_html(d), encoding="utf-8")
    print(json.dumps(d, indent=2) if args.format == "json" else to_table(d))
    return 0


def _versus(args: argparse.Namespace, db: str, picks: dict[str, bool]) -> int:
    from ratings.sides import SourceError, load_side
    from ratings.validate_render import versus_table
    from ratings.versus import compare_candidates

    if args.html is not None:
        raise SourceError("--html writes the full report of one candidate; it does not go with --versus")
    if args.versus == args.candidate:
        raise SourceError(f"--versus {args.versus} is the candidate itself: name another source")
    sides = [load_side(spec, db, **picks) for spec in (args.reference, args.candidate, args.versus)]
    for option, side in zip(("--reference", "--candidate", "--versus"), sides, strict=True):
        if side.battles is None:
            raise SourceError(f"{option} {side.name}: a leaderboard; --versus compares votes, battle by battle")
    report = compare_candidates(*(s.battles for s in sides), names=(sides[0].name, sides[1].name, sides[2].name))
    d = report.to_dict()
    d["notes"] = [n for s in sides for n in s.notes]
    print(json.dumps(d, indent=2) if args.format == "json" else versus_table(d)
          + "".join(f"\nnote: {n}" for n in d["notes"]))
    return 0
