"""A validation report as text: a terminal table, Markdown, SVG plots, one self-contained HTML page.

Plots are hand-written SVG: no plotting dependency (kaleido, matplotlib) is needed to render docs or a
report, and the files diff cleanly in git.
"""

from __future__ import annotations

import html
from typing import Any

# Says what the number is: "separability, reference (95% CI)" read as a CI of the separability.
SEPARABILITY = "separability (share of pairs with non-overlapping 95% CIs)"


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summary_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) lines shared by the table, Markdown and HTML renderings."""
    rows: list[tuple[str, str]] = []
    va = d["vote_agreement"]
    if va:
        rows += [
            ("pairs voted on by both", _f(va["pairs_matched"])),
            ("agreement w/ tie", f"{_f(va['agreement_with_tie'])} ({va['comparisons_with_tie']} comparisons)"),
            ("agreement w/o tie", f"{_f(va['agreement_without_tie'])} ({va['comparisons_without_tie']} comparisons)"),
            ("Cohen's kappa (a/tie/b)", _f(va["cohen_kappa"])),
            ("Cohen's kappa w/o tie", _f(va["cohen_kappa_without_tie"])),
        ]
    ra = d["ranking_agreement"]
    rows += [
        ("models ranked by both", str(len(d["models"]))),
        ("Spearman rho", _f(ra["spearman"])),
        ("Kendall tau", _f(ra["kendall_tau"])),
        (f"{SEPARABILITY}, reference", _f(d["separability"].get("reference"))),
        (f"{SEPARABILITY}, candidate", _f(d["separability"].get("candidate"))),
        ("agreement with 95% CI", _f(d["confidence_agreement"])),
        ("pair-rank Brier score", _f(d["brier_score"])),
    ]
    for role, pc in (d["judge_biases"].get("position_consistency") or {}).items():
        rows.append((f"position consistency, {role}", "n/a (no pair judged in both orders)" if not pc else
                     f"{_f(pc['consistent'])} of {pc['pairs']} swapped pairs (biased to first "
                     f"{_f(pc['biased_to_first'])}, to second {_f(pc['biased_to_second'])})"))
    for role, lw in (d["judge_biases"].get("longer_answer_win_rate") or {}).items():
        rows.append((f"longer answer wins, {role}", "n/a (no answer texts)" if not lw else
                     f"{_f(lw['longer_wins'])} of {lw['votes']} decisive votes"))
    if "self_preference" in d["judge_biases"]:
        sp = d["judge_biases"]["self_preference"]
        rows.append(("self-preference", "n/a (no battle with a model of the judge's family)" if not sp else
                     f"{sp['family']} family: judge win rate {_f(sp['judge_win_rate'])} vs reference "
                     f"{_f(sp['reference_win_rate'])}"))
    return rows


def leaderboard_rows(d: dict[str, Any]) -> list[list[str]]:
    ref = {r["model"]: r for r in d["leaderboards"]["reference"]}
    cand = {r["model"]: r for r in d["leaderboards"]["candidate"]}
    out = []
    for r in d["leaderboards"]["reference"]:
        c = cand.get(r["model"])
        out.append([r["model"], str(r["rank"]), _ci(r), str(c["rank"]) if c else "-", _ci(c) if c else "-"])
    out += [[m, "-", "-", str(c["rank"]), _ci(c)] for m, c in cand.items() if m not in ref]
    return out


def _ci(r: dict[str, Any]) -> str:
    if r.get("ci_low") is None:
        return f"{r['rating']:.0f}"
    return f"{r['rating']:.0f} [{r['ci_low']:.0f}, {r['ci_high']:.0f}]"


def to_table(d: dict[str, Any]) -> str:
    """Plain-text report for a terminal."""
    lines = [f"reference: {d['reference']}", f"candidate: {d['candidate']}", ""]
    width = max(len(k) for k, _ in summary_rows(d))
    lines += [f"{k.ljust(width)}  {v}" for k, v in summary_rows(d)]
    va = d["vote_agreement"]
    if va:
        lines += ["", "confusion (rows reference, columns candidate; a = alphabetically first model wins):",
                  "            " + "".join(f"{lab:>8}" for lab in va["labels"])]
        lines += [f"  {lab:<10}" + "".join(f"{n:>8}" for n in row)
                  for lab, row in zip(va["labels"], va["confusion"], strict=True)]
    header = ["model", "ref rank", "ref rating [95% CI]", "cand rank", "cand rating [95% CI]"]
    rows = leaderboard_rows(d)
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    lines += ["", "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines += [f"note: {n}" for n in d["notes"]]
    return "\n".join(lines)


def versus_table(d: dict[str, Any]) -> str:
    """Plain-text report of ``codearena validate --versus`` (ratings.versus.CandidateComparison.to_dict)."""
    first, second = d["first"], d["second"]
    a1, a2 = d["agreement"][first], d["agreement"][second]
    rows = [
        ("agreement w/ tie", a1["agreement_with_tie"], a2["agreement_with_tie"], "comparisons_with_tie"),
        ("agreement w/o tie", a1["agreement_without_tie"], a2["agreement_without_tie"], "comparisons_without_tie"),
        ("Cohen's kappa (a/tie/b)", a1["cohen_kappa"], a2["cohen_kappa"], None),
    ]
    w0, w1, w2 = 24, max(len(first), 8), max(len(second), 8)
    lines = [f"reference: {d['reference']}",
             f"paired battles (same prompt and model pair, voted on by the reference and both): "
             f"{d['paired_battles']}", "",
             f"{'':<{w0}}  {first:>{w1}}  {second:>{w2}}"]
    for label, v1, v2, count in rows:
        line = f"{label:<{w0}}  {_f(v1):>{w1}}  {_f(v2):>{w2}}"
        if count:
            line += f"  ({a1[count]} and {a2[count]} comparisons)"
        lines.append(line)
    more = d["pairs_where_more_agreeing"]
    p = d["sign_test_p_value"]
    lines += ["", f"battles where each agrees more: {first} {more[first]}, {second} {more[second]}, "
                  f"the same {more['same']}; sign test p = {_f(p)}"]
    winner = d["winner"]
    if winner is None:
        lines.append(f"neither agrees more with {d['reference']}: the same agreement "
                     f"({_f(a1['agreement_with_tie'])} w/ tie) on {d['paired_battles']} paired battles")
    else:
        loser = first if winner == second else second
        w_agree, l_agree = d["agreement"][winner]["agreement_with_tie"], d["agreement"][loser]["agreement_with_tie"]
        verdict = f"{winner} agrees more with {d['reference']}: {_f(w_agree)} vs {_f(l_agree)} w/ tie on " \
                  f"{d['paired_battles']} paired battles"
        if p is None or p >= 0.05:
            verdict += " (not significant at the 5% level: more battles would tell)"
        lines.append(verdict)
    return "\n".join(lines)


def to_markdown(d: dict[str, Any], *, rank_svg: str | None = None, confusion_svg: str | None = None) -> str:
    """Markdown section; the SVG arguments are image paths relative to the Markdown file."""
    out = [f"Reference: `{d['reference']}`; candidate: `{d['candidate']}`; bootstrap {d['bootstrap']} "
           f"replicates, seed {d['seed']}.", "", "| metric | value |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in summary_rows(d)]
    out += ["", "| model | reference rank | reference rating [95% CI] | candidate rank | candidate rating [95% CI] |",
            "|---|---|---|---|---|"]
    out += ["| " + " | ".join(r) + " |" for r in leaderboard_rows(d)]
    if rank_svg:
        out += ["", f"![ratings with 95% intervals, reference vs candidate]({rank_svg})"]
    if confusion_svg and d["vote_agreement"]:
        out += ["", f"![confusion matrix of per-vote verdicts]({confusion_svg})"]
    out += [f"\nNote: {n}" for n in d["notes"]]
    return "\n".join(out)


def rank_svg(d: dict[str, Any], *, width: int = 760) -> str:
    """Two dot-and-whisker panels, reference left and candidate right, one row per model (reference order).

    Each panel has its own axis: a benchmark score (0-100) and an Elo-scale rating are compared by order, not
    by value, so a shared axis would mislead."""
    models = [r["model"] for r in d["leaderboards"]["reference"]]
    models += [r["model"] for r in d["leaderboards"]["candidate"] if r["model"] not in models]
    names_w, row_h, top = 150, 30, 46
    panel_w = (width - names_w - 30) / 2
    height = top + row_h * len(models) + 36
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             '<text x="8" y="16" font-weight="bold">rating and 95% interval (each panel on its own scale)</text>']
    for i, m in enumerate(models):
        y = top + row_h * i + row_h / 2
        parts.append(f'<text x="{names_w - 8}" y="{y + 4}" text-anchor="end">{html.escape(m)}</text>')
    for k, (role, color) in enumerate((("reference", "#1f77b4"), ("candidate", "#d62728"))):
        rows = {r["model"]: r for r in d["leaderboards"][role]}
        x0 = names_w + k * (panel_w + 20)
        parts.append(f'<text x="{x0 + panel_w / 2:.1f}" y="36" text-anchor="middle" fill="{color}">'
                     f'{role}: {html.escape(d[role])}</text>')
        vals = [v for r in rows.values() for v in (r["rating"], r.get("ci_low"), r.get("ci_high")) if v is not None]
        lo, hi = min(vals), max(vals)
        pad = (hi - lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad

        def x(v: float, x0: float = x0, lo: float = lo, hi: float = hi) -> float:
            return x0 + (v - lo) / (hi - lo) * panel_w

        for i, m in enumerate(models):
            r = rows.get(m)
            if r is None:
                continue
            y = top + row_h * i + row_h / 2
            if r.get("ci_low") is not None:
                parts.append(f'<line x1="{x(r["ci_low"]):.1f}" x2="{x(r["ci_high"]):.1f}" y1="{y}" y2="{y}" '
                             f'stroke="{color}" stroke-width="2"/>')
            parts.append(f'<circle cx="{x(r["rating"]):.1f}" cy="{y}" r="4" fill="{color}"/>')
        axis_y = top + row_h * len(models) + 6
        parts.append(f'<line x1="{x0:.1f}" x2="{x0 + panel_w:.1f}" y1="{axis_y}" y2="{axis_y}" stroke="#444"/>')
        for t in range(3):
            v = lo + (hi - lo) * (0.1 + 0.4 * t)
            parts.append(f'<text x="{x(v):.1f}" y="{axis_y + 16}" text-anchor="middle">{v:.0f}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def confusion_svg(d: dict[str, Any], *, cell: int = 70) -> str:
    """Heat map of the per-vote confusion matrix (rows reference, columns candidate)."""
    va = d["vote_agreement"]
    labels, conf = va["labels"], va["confusion"]
    names = {"a": "first wins", "tie": "tie", "b": "second wins"}
    peak = max(max(row) for row in conf) or 1
    left, top = 110, 60
    w, h = left + cell * 3 + 20, top + cell * 3 + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             f'font-family="sans-serif" font-size="12">', f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{left}" y="16" font-weight="bold">per-vote verdicts</text>',
             f'<text x="{left + cell * 1.5}" y="34" text-anchor="middle">candidate</text>',
             f'<text x="14" y="{top + cell * 1.5}" transform="rotate(-90 14 {top + cell * 1.5})" '
             f'text-anchor="middle">reference</text>']
    for j, lab in enumerate(labels):
        parts.append(f'<text x="{left + cell * j + cell / 2}" y="{top - 6}" text-anchor="middle">{names[lab]}</text>')
        parts.append(f'<text x="{left - 6}" y="{top + cell * j + cell / 2 + 4}" text-anchor="end">{names[lab]}</text>')
    for i, row in enumerate(conf):
        for j, n in enumerate(row):
            shade = int(255 - 200 * n / peak)
            fill = f"rgb({shade},{shade},255)"
            ink = "white" if shade < 130 else "black"
            parts.append(f'<rect x="{left + cell * j}" y="{top + cell * i}" width="{cell}" height="{cell}" '
                         f'fill="{fill}" stroke="white"/>')
            parts.append(f'<text x="{left + cell * j + cell / 2}" y="{top + cell * i + cell / 2 + 4}" '
                         f'text-anchor="middle" fill="{ink}">{n}</text>')
    parts.append(f'<text x="8" y="{top + cell * 3 + 24}" font-size="11">first = the alphabetically first model of '
                 f'the pair, whatever its position</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def to_html(d: dict[str, Any]) -> str:
    """One self-contained HTML page: summary table, leaderboards, both plots inline."""
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in summary_rows(d))
    board = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in leaderboard_rows(d))
    notes = "".join(f"<p>Note: {html.escape(n)}</p>" for n in d["notes"])
    conf = confusion_svg(d) if d["vote_agreement"] else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>CodeArena validation</title>"
            f"<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}td,th{{padding:2px 10px;"
            f"border-bottom:1px solid #ddd;text-align:left}}</style></head><body>"
            f"<h1>{html.escape(d['candidate'])} vs {html.escape(d['reference'])}</h1>"
            f"<table>{rows}</table><h2>Leaderboards</h2><table><tr><th>model</th><th>reference rank</th>"
            f"<th>reference rating [95% CI]</th><th>candidate rank</th><th>candidate rating [95% CI]</th></tr>"
            f"{board}</table>{rank_svg(d)}{conf}{notes}</body></html>")
