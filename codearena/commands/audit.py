"""`codearena audit`: can this leaderboard be trusted? Integrity rules, influence, position bias, ties."""

from __future__ import annotations

import argparse
import json
import sys

from codearena.commands.rate import add_audit_options, add_vote_filters, audit_options

HELP = "audit the votes: per-voter caps, anomalous voters, repeated prompts, influence, position bias, ties"
DESCRIPTION = """Audit the votes behind a leaderboard. Nothing is deleted: this reports what each rule would
take out (`codearena rate --apply-audit` rates without those votes), and what holds the ranking up.

  voter cap         at most K votes per voter per day count (--cap-per-voter K; FastChat's limit_user_votes)
  anomalous voters  a sequential (anytime-valid) likelihood-ratio test of each voter's votes against the
                    model fitted without that voter; Bonferroni over voters at --alpha
  repeated prompts  prompts asked far more than the rest (normalised text) are capped
  influence         the fewest votes whose removal changes rank 1 or an adjacent pair, confirmed by refitting
  position bias     the first-shown (model_a) answer's advantage, with its 95% CI
  ties models       whether the order changes between half-win, Davidson and Rao-Kupper ties
  tiers             models that cannot be told apart at simultaneous 95% confidence, and votes still needed

examples:
  codearena audit codearena.db
  codearena audit battles.jsonl --cap-per-voter 20 --format json"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source_path", metavar="SOURCE",
                        help="vote store (SQLite file or postgresql://USER@HOST/DB) or battles file")
    parser.add_argument("--source", default=None, metavar="SRC",
                        help="which votes: human | judge:NAME | judge: | import:NAME | all (as in rate)")
    add_vote_filters(parser)
    add_audit_options(parser)
    parser.add_argument("--no-influence", action="store_true", help="skip the influence audit (the slowest part)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompt cap's sample (default 0)")
    parser.add_argument("--format", choices=["table", "json"], default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    from ratings.audit import audit
    from ratings.source import load_battles

    opts = audit_options(args)
    loaded = load_battles(args.source_path, source=args.source, include_named=args.include_named,
                          include_flagged=args.include_flagged)
    report = audit(loaded.battles, opts, influence=not args.no_influence)
    data = report.to_dict()
    data["notes"] = [*loaded.notes, *data["notes"]]
    if args.format == "json":
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print(f"{data['battles']} votes audited")
    for rule in data["rules"]:
        print(f"  {rule['rule']}: would remove {rule['removed']} vote(s)" +
              "".join(f"; {n}" for n in rule["notes"]))
        for row in rule["flagged"][:10]:
            print("    " + ", ".join(f"{k}={v}" for k, v in row.items()))
    total = next((r["removed"] for r in data["removed"] if r["rule"] == "total"), 0)
    print(f"  all rules together: {total} vote(s); `codearena rate --apply-audit` rates without them")
    if "influence" in data:
        print(data["influence"]["rank1"])
        for p in data["influence"]["pairs"]:
            print(f"  {p['upper']} > {p['lower']}: holds unless {p['votes_to_flip']} vote(s) "
                  f"({100 * (p['share'] or 0):.2f}%) are dropped")
    if "position_bias" in data:
        print(data["position_bias"]["summary"])
    if "ties_models" in data:
        t = data["ties_models"]
        print("ties models (half, Davidson, Rao-Kupper): " + ("the order changes for " + ", ".join(t["changed"])
                                                             if t["order_changes"] else "the same order"))
    if "tiers" in data:
        tiers = data["tiers"]
        print(f"{tiers['n_tiers']} tier(s) ({tiers['method']}, simultaneous {100 * tiers['level']:.0f}%):")
        for p in tiers["pairs"]:
            need = p.get("votes_needed")
            state = "separated" if p["separated"] else (f"~{int(need):,} more votes to separate" if need else
                                                        "not separated")
            print(f"  {p['upper']} vs {p['lower']}: {state}")
    for n in data["notes"]:
        print(f"note: {n}")
    return 0
