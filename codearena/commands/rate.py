"""`codearena rate`: Bradley-Terry ratings with confidence intervals from a vote store or a battles file."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ratings.leaderboard import RatingResult

Results = list[tuple[str | None, "RatingResult"]]

HELP = "Bradley-Terry leaderboard (Elo scale, CIs, ties models, style control) from votes"
DESCRIPTION = """Rate models from battles: a vote store (an SQLite file or a postgresql:// URL) or a battles
file (JSONL, JSON, CSV, Parquet) in the Chatbot Arena schema (model_a, model_b, winner in
model_a|model_b|tie|tie (bothbad)).

Ratings are Bradley-Terry maximum likelihood on the Elo scale (1000 + 400 * log10-odds). rank_ub is
Chatbot Arena's rank: 1 + the number of models whose CI lies entirely above this one's; rank is 1 + the
number of models rated strictly higher (equal ratings share a rank). Models with fewer than 10 battles get
a note: their CIs are unreliable.

examples:
  codearena rate codearena.db --bootstrap 100 --seed 0
  codearena rate battles.jsonl --ties davidson --format json
  codearena rate codearena.db --style-control --anchor gpt-4=1200 --plot ratings.html
  codearena rate battles.parquet --by language --min-battles 50"""


def _anchor(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    try:
        if not sep or not name or not math.isfinite(float(value)):
            raise ValueError
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MODEL=ELO with a finite ELO (e.g. gpt-4=1200), got {text!r}") \
            from None


def add_vote_filters(parser: argparse.ArgumentParser) -> None:
    """--include-named / --include-flagged: the same vote selection wherever votes become numbers."""
    parser.add_argument("--include-named", action="store_true",
                        help="also use named-mode votes (left out by default: the voter saw the names)")
    parser.add_argument("--include-flagged", action="store_true",
                        help="also use votes flagged identity_leak (left out by default: an answer revealed "
                        "its model, so the vote was not blind)")


def add_rating_options(parser: argparse.ArgumentParser) -> None:
    """The fit options of a leaderboard, shared by `rate` and `export ratings` so an export can reproduce
    the table `rate` prints."""
    parser.add_argument("--ties", choices=["half", "davidson"], default="half",
                        help="half: a tie is half a win each way (Chatbot Arena); davidson: Davidson's ties "
                        "model, reports its tie parameter nu (default: half)")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="bootstrap rounds for the CIs (default 0: analytic CIs)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--ci", choices=["analytic", "bootstrap", "none"], default=None,
                        help="CI method (default: bootstrap if --bootstrap N > 0, else analytic)")
    parser.add_argument("--anchor", type=_anchor, default=None, metavar="MODEL=ELO",
                        help="shift ratings and CI bounds so MODEL gets exactly ELO (CI widths unchanged)")
    parser.add_argument("--min-battles", type=int, default=0, metavar="K",
                        help="leave out models with fewer than K battles (listed apart)")
    parser.add_argument("--prior", type=float, default=1.0, metavar="P",
                        help="virtual tied battles per compared pair, used only when a model never lost or "
                        "never won (default 1)")
    parser.add_argument("--cluster", choices=["auto", "prompt", "voter", "none"], default="auto",
                        help="votes that share a prompt (or a voter) are not independent: cluster-robust "
                        "CIs (clustered sandwich, or whole clusters resampled by --bootstrap). auto (default): "
                        "prompt when the votes carry prompt ids, else none; under 20 clusters it falls back "
                        "and says so")
    parser.add_argument("--style-features", default=None, metavar="F,F",
                        help="with --style-control: the style features to control for (default: all; "
                        "length, headers, lists, bold, code_blocks, code_lines)")
    parser.add_argument("--style-reg", type=float, default=None, metavar="R",
                        help="with --style-control: L2 penalty on the style coefficients (LMArena: 1.0; "
                        "default 0, the unpenalised fit)")
    parser.add_argument("--style-reweight", choices=["none", "pair"], default=None,
                        help="with --style-control: pair weights each battle 1/max(n_pair, 50), as LMArena")
    parser.add_argument("--lmarena-style", action="store_true",
                        help="--style-control at LMArena's published settings (their 4 features, reg 1.0, "
                        "pair reweighting); implies --style-control")


def rating_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The options of add_rating_options as rate() keyword arguments, checked before any vote is read."""
    from ratings.leaderboard import check_settings

    if args.bootstrap < 0:
        raise ValueError("--bootstrap must be >= 0")
    check_settings(bootstrap=args.bootstrap, seed=args.seed, anchor=args.anchor, prior=args.prior,
                   min_battles=args.min_battles)
    out = dict(ties=args.ties, bootstrap=args.bootstrap, seed=args.seed, anchor=args.anchor, ci=args.ci,
               min_battles=args.min_battles, prior=args.prior, cluster_by=args.cluster)
    style = style_options(args)
    if style is not None:
        out["style"] = style
    return out


def style_options(args: argparse.Namespace) -> Any:
    """--style-* / --lmarena-style as ratings.style.StyleOptions (None: the default fit)."""
    from dataclasses import replace

    from ratings.style import LMARENA_STYLE, StyleOptions

    asked = (args.style_features, args.style_reg, args.style_reweight)
    if not args.lmarena_style and all(v is None for v in asked):
        return None
    if not (getattr(args, "style_control", False) or args.lmarena_style):
        raise ValueError("--style-features/--style-reg/--style-reweight apply with --style-control")
    base = LMARENA_STYLE if args.lmarena_style else StyleOptions()
    changes: dict[str, Any] = {}
    if args.style_features is not None:
        changes["features"] = tuple(f.strip() for f in args.style_features.split(",") if f.strip())
    if args.style_reg is not None:
        changes["reg"] = args.style_reg
    if args.style_reweight is not None:
        changes["reweight"] = args.style_reweight
    return replace(base, **changes)


def add_audit_options(parser: Any) -> None:
    """The integrity rules' options, shared by `audit` and `rate --apply-audit`."""
    parser.add_argument("--cap-per-voter", type=int, default=None, metavar="K",
                        help="count at most K votes per voter per day (FastChat's limit_user_votes; default: "
                        "no cap)")
    parser.add_argument("--cap-per", choices=["day", "all"], default="day", help="the cap's period (default day)")
    parser.add_argument("--alpha", type=float, default=0.05, metavar="A",
                        help="family-wise level of the anomalous-voter test (default 0.05)")
    parser.add_argument("--no-anomalous", action="store_true", help="do not test voters")
    parser.add_argument("--dedup-factor", type=float, default=10.0, metavar="F",
                        help="cap prompts asked more than F x the median prompt's battles (default 10)")
    parser.add_argument("--no-dedup", action="store_true", help="do not cap repeated prompts")


def audit_options(args: argparse.Namespace) -> Any:
    from ratings.audit import AuditOptions

    return AuditOptions(cap_per_voter=args.cap_per_voter, cap_per=args.cap_per,
                        anomalous_alpha=None if args.no_anomalous else args.alpha,
                        dedup_factor=None if args.no_dedup else args.dedup_factor, seed=getattr(args, "seed", 0))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source_path", metavar="SOURCE",
                        help="vote store (SQLite file or postgresql://USER@HOST/DB) or battles file")
    parser.add_argument("--source", default=None, metavar="SRC",
                        help="which votes: human | judge:NAME | judge: (all judges) | import:NAME | all "
                        "(store default: human; file default: all, since a file is usually one dataset; "
                        "filtered on its 'source' column)")
    add_vote_filters(parser)
    add_rating_options(parser)
    parser.add_argument("--style-control", action="store_true",
                        help="control for answer style (length, headers, lists, bold, code blocks, code lines); "
                        "needs answer_a/answer_b")
    parser.add_argument("--by", choices=["category", "language"], default=None,
                        help="one leaderboard per category or language")
    parser.add_argument("--online-elo", action="store_true",
                        help="add an online Elo column (K=4, battle order) for comparison")
    parser.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output format")
    add_audit_options(parser.add_argument_group(
        "audit", "with --apply-audit, rate without the votes these rules flag (`codearena audit` shows them)"))
    parser.add_argument("--reweight", choices=["none", "propensity"], default="none",
                        help="propensity: weight each vote by 1 / the probability the arena sampled its pair "
                        "with (undoes --weight and active sampling; half ties, analytic or bootstrap CIs)")
    parser.add_argument("--apply-audit", action="store_true",
                        help="leave out the votes the audit rules flag (per-voter cap, anomalous voters, "
                        "repeated prompts); the output says how many each rule removed")
    parser.add_argument("--plot", default=None, metavar="FILE.html",
                        help="write ratings-with-CI, win-fraction and battle-count plots (needs plotly)")


def run(args: argparse.Namespace) -> int:
    from votes.prefetch import read_in_background

    if args.plot and not args.plot.lower().endswith((".html", ".htm")):
        raise ValueError(f"--plot {args.plot}: expected an .html file name")
    if args.plot and args.by:
        raise ValueError("--plot draws one leaderboard; drop --by")
    # Before the imports below: the file is parsed while they run.
    pending = read_in_background(args.source_path)
    from ratings.groups import rate_groups
    from ratings.source import load_battles

    kwargs = {**rating_settings(args), "style_control": args.style_control or args.lmarena_style}
    audit_opts = audit_options(args) if args.apply_audit else None
    from ratings.source import rating_columns

    # Only the columns this rating reads: a store's bulk is answer texts, which only style control needs.
    columns = rating_columns(answers=kwargs["style_control"],
                             prompts=audit_opts is not None and audit_opts.dedup_factor is not None)
    loaded = load_battles(args.source_path, source=args.source, include_named=args.include_named,
                          include_flagged=args.include_flagged, columns=columns, pending=pending)
    notes: list[str] = []
    if loaded.dropped_named:
        notes.append(f"{loaded.dropped_named} named-mode vote(s) left out (--include-named to keep them)")
    if loaded.dropped_flagged:
        notes.append(f"{loaded.dropped_flagged} vote(s) flagged identity_leak left out "
                     "(--include-flagged to keep them)")
    battles = loaded.battles
    if audit_opts is not None:
        from ratings.audit import apply_rules

        applied, _ = apply_rules(battles, audit_opts)
        battles = applied.battles
        notes += [f"audit: {r.rule} removed {r.removed} vote(s)" for r in applied.removed.itertuples()]
    weight_column = None
    if args.reweight == "propensity":
        from ratings.source import PROPENSITY_WEIGHT, with_propensity_weights

        battles, weight_column = with_propensity_weights(battles), PROPENSITY_WEIGHT
    try:
        grouped = rate_groups(battles, args.by, online_elo=args.online_elo, weight_column=weight_column, **kwargs)
    except ValueError as exc:
        if str(exc).startswith("--by "):
            raise ValueError(f"{args.source_path}: {exc}") from None
        raise
    notes += grouped.notes + grouped.errors
    from ratings.tiers import leaderboard_tiers, with_tiers

    for _, res in grouped.results:
        # Tiers instead of implying 1..N: models a simultaneous 95% test cannot tell apart share a tier.
        res.table = with_tiers(res, leaderboard_tiers(res, seed=args.seed))
    if args.plot:
        from ratings.plots import write_html

        write_html(grouped.results[0][1], args.plot)
        notes.append(f"plots written to {args.plot}")
    latency = _latency(args.source_path, loaded.battles) if args.format == "json" else {}
    _print(grouped.results, args, notes, latency)
    return 0


def _latency(source_path: str, battles: Any) -> dict[str, dict[str, Any]]:
    """model -> its median latency fields for the JSON rows; empty when nothing in the source is timed."""
    from ratings.source import load_latency

    table = load_latency(source_path, battles)
    return {str(r.model): {"timed_answers": int(r.answers), "median_ttft_s": _num(r.ttft_s),
                           "median_total_s": _num(r.total_s), "median_tokens_per_s": _num(r.tokens_per_s)}
            for r in table.itertuples(index=False)}


def _num(value: Any) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


# The latency fields every JSON row gets once any answer in the source is timed (null where a model has none).
_NO_LATENCY = {"timed_answers": 0, "median_ttft_s": None, "median_total_s": None, "median_tokens_per_s": None}


def _rows(name: str | None, res: RatingResult,
          latency: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    rows = res.table.to_dict(orient="records")
    for r in rows:
        if latency:
            r.update(latency.get(str(r["model"]), _NO_LATENCY))
        for k, v in list(r.items()):
            if isinstance(v, float) and math.isnan(v):
                r[k] = None
            elif hasattr(v, "item"):
                r[k] = v.item()
        if name is not None:
            r.update({"group": name, "group_battles": res.n_battles})
        # The fit's facts on every row, so a JSON consumer keeps them and the output stays a list of objects.
        r.update({"method": res.method, "ci_method": res.ci_method})
        if res.nu is not None:
            r["nu"] = res.nu
        if res.style is not None:
            r["style_coefficients"] = _records(res.style)
        if res.clustering is not None:
            r["cluster_by"] = res.clustering.by
            r["clusters"] = res.clustering.n_clusters
            effect = res.clustering.design_effect.set_index("model")["design_effect"]
            if r["model"] in effect.index:
                r["design_effect"] = _num(effect.loc[r["model"]])
    return rows


def _records(df: Any) -> list[dict[str, Any]]:
    return [{k: (_num(v) if isinstance(v, float) else v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in df.to_dict(orient="records")]


def _extras(name: str | None, res: RatingResult) -> list[str]:
    head = f"[{name}] " if name is not None else ""
    out = [f"{head}{res.n_battles} battles, method {res.method}, CI {res.ci_method}"]
    if res.nu is not None:
        out.append(f"{head}Davidson tie parameter nu = {res.nu:.4f} (equal models tie with p = "
                   f"{res.nu / (2 + res.nu):.3f})")
    if res.clustering is not None:
        c = res.clustering
        effect = c.design_effect["design_effect"]
        out.append(f"{head}CIs clustered by {c.by} ({c.n_clusters} clusters, {c.method}"
                   f"{'' if c.trustworthy else ', too few clusters to trust the bootstrap'}): design effect "
                   f"{effect.min():.2f}-{effect.max():.2f} (clustered / independent CI width; --cluster none to "
                   "treat votes as independent)")
    if res.style is not None:
        coefs = ", ".join(f"{r.feature} {r.coef:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
                          for r in res.style.itertuples())
        out.append(f"{head}style coefficients (log-odds per SD): {coefs}")
    if len(res.excluded):
        out.append(f"{head}under --min-battles: " + ", ".join(f"{m} ({b})" for m, b in
                                                               zip(res.excluded["model"], res.excluded["battles"],
                                                                   strict=True)))
    out.extend(f"{head}note: {n}" for n in res.notes)
    return out


def _print(results: Results, args: argparse.Namespace, notes: list[str],
           latency: dict[str, dict[str, Any]] | None = None) -> None:
    extras = [line for name, res in results for line in _extras(name, res)] + [f"note: {n}" for n in notes]
    if args.format == "json":
        rows = [r for name, res in results for r in _rows(name, res, latency)]
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        for line in extras:
            print(line, file=sys.stderr)
        return
    if args.format == "csv":
        import pandas as pd

        frames = []
        for name, res in results:
            t = res.table.copy()
            if name is not None:
                t.insert(0, "group", name)
            frames.append(t)
        from ratings.export import spreadsheet_safe

        spreadsheet_safe(pd.concat(frames, ignore_index=True)).to_csv(sys.stdout, index=False, float_format="%.2f")
        for line in extras:
            print(line, file=sys.stderr)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Piped output has no terminal width; a narrow default would truncate the numbers.
    console = Console(width=None if sys.stdout.isatty() else 160)
    for name, res in results:
        title = f"{args.by} = {name} ({res.n_battles} battles)" if name is not None else \
            f"CodeArena leaderboard ({res.n_battles} battles)"
        table = Table(title=Text(title))
        cols = list(res.table.columns)
        for c in cols:
            table.add_column(c, justify="left" if c == "model" else "right")
        for row in res.table.itertuples(index=False):
            cells = []
            for v in row:
                if isinstance(v, float):
                    cells.append("-" if math.isnan(v) else f"{v:.1f}")
                else:
                    cells.append(Text(str(v)))  # Text, not markup: a model named "[red]x" prints as it is
            table.add_row(*cells)
        console.print(table)
        for line in _extras(name, res):
            console.print(line, highlight=False, markup=False)
    for n in notes:
        console.print(f"note: {n}", highlight=False, markup=False)
