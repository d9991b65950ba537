"""Self-contained HTML plots of a leaderboard. plotly is optional (the [plots] extra): imported lazily."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ratings.leaderboard import RatingResult
from ratings.matrices import battle_counts, win_fraction


class PlotsUnavailable(ValueError):
    """plotly is not installed."""


def _plotly():
    try:
        import plotly.graph_objects as go
    except ImportError as exc:
        raise PlotsUnavailable("plots need plotly: pip install 'codearena[plots]'") from exc
    return go


def figures(res: RatingResult) -> list:
    """Ratings with CI bars, win-fraction heatmap, battle-count heatmap."""
    go = _plotly()
    t = res.table
    ratings = go.Figure(go.Scatter(
        x=t["model"], y=t["rating"], mode="markers",
        error_y={"type": "data", "symmetric": False, "array": (t["ci_high"] - t["rating"]).to_numpy(),
                 "arrayminus": (t["rating"] - t["ci_low"]).to_numpy()},
    ))
    ratings.update_layout(title=f"Ratings ({res.method}, CI: {res.ci_method}, {res.n_battles} battles)",
                          xaxis_title="model", yaxis_title="rating (Elo scale)")
    frac = win_fraction(res.wins, res.models)
    wins = go.Figure(go.Heatmap(z=frac.to_numpy(), x=res.models, y=res.models, colorscale="RdBu", zmin=0, zmax=1,
                                text=np.round(frac.to_numpy(), 2), texttemplate="%{text}"))
    wins.update_layout(title="Fraction of row model wins over column model (non-tied battles)",
                       xaxis_title="model B", yaxis_title="model A", yaxis_autorange="reversed")
    counts = battle_counts(res.wins, res.ties, res.models)
    count_fig = go.Figure(go.Heatmap(z=counts.to_numpy(), x=res.models, y=res.models, colorscale="Viridis",
                                     text=counts.to_numpy().astype(int), texttemplate="%{text}"))
    count_fig.update_layout(title="Battle count per pair", xaxis_title="model B", yaxis_title="model A",
                            yaxis_autorange="reversed")
    return [ratings, wins, count_fig]


def write_html(res: RatingResult, path: str | Path) -> Path:
    """One HTML file with plotly.js inlined (works offline)."""
    figs = figures(res)
    parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    from votes.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:  # whole or not at all, like every output file
        tmp.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>CodeArena ratings</title></head>"
                       "<body>" + "\n".join(parts) + "</body></html>", encoding="utf-8")
    return path
