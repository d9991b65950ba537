"""Influence audit: the fewest votes whose removal changes rank 1, or the order of an adjacent pair.

Huang et al. 2025 ("Dropping Just a Handful of Preferences Can Change Top Large Language Model Rankings",
arXiv:2508.11847) found that dropping 0.003% of Chatbot Arena's votes flips its top model. The method is
Broderick, Giordano & Meager's approximate maximum influence perturbation (AMIP, 2020, arXiv:2011.14999):

1. Linearise. Dropping vote k moves the half-ties BT log-strengths by about -A^-1 s_k (A the information,
   s_k = (y_k - p_k)(e_a - e_b) the vote's score), so it moves the gap phi = theta_i - theta_j by
   delta_k = -(u_a - u_b)(y_k - p_k) with u = A^-1 (e_i - e_j). Votes in one (pair, outcome) cell share
   delta_k, so the greedy "most gap-closing votes first" order is a sort of the cells.
2. Confirm. Refit without the first N votes of that order for many N at once (one batched Newton solve)
   and take the smallest N whose refit really reverses the pair; the linearisation only proposes.

The reported N is an upper bound on the true minimum (a smarter set may need fewer votes), and it is
confirmed: the refit without those votes has the pair in the other order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ratings import analytic, graph
from ratings.bt import ELO_SCALE, fit_bt, half_wins, newton_half, sigmoid, with_prior
from ratings.encode import CELL_TIE, LO_WINS, Cells, battle_cells, cell_matrices, encode

PROBES = 24  # prefix lengths refitted per batched solve
TOP_CHALLENGERS = 3  # rank-1 challengers confirmed by refits (the ones the linearisation finds cheapest)
DEFAULT_PRIOR = 1.0  # as ratings.leaderboard.DEFAULT_PRIOR (not imported: leaderboard imports the world)


@dataclass
class PairFlip:
    """The fewest votes (found) whose removal puts ``lower`` above ``upper``."""

    upper: str
    lower: str
    gap: float  # Elo, upper - lower on all votes
    n_votes: int | None  # None: no removal of up to all the gap-closing votes reverses the pair
    share: float  # n_votes / all votes
    battles: np.ndarray  # row indices (into the battles given) of the votes to drop, most gap-closing first
    approx_votes: float  # what the linearisation alone predicted
    confirmed: bool  # a refit without ``battles`` has lower above upper
    refit_gap: float  # Elo, upper - lower after dropping them

    def sentence(self, what: str | None = None) -> str:
        label = what or f"{self.upper} above {self.lower}"
        if self.n_votes is None:
            return f"{label} holds even if every vote that narrows the gap is dropped"
        return (f"{label} holds unless these {self.n_votes} votes ({100 * self.share:.3g}% of all) are dropped")


@dataclass
class InfluenceReport:
    top: PairFlip | None  # rank 1 (the cheapest challenger)
    pairs: list[PairFlip]  # every adjacent pair, in leaderboard order
    n_battles: int
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"upper": p.upper, "lower": p.lower, "gap": p.gap, "votes_to_flip": p.n_votes,
                              "share": p.share, "approx_votes": p.approx_votes, "confirmed": p.confirmed,
                              "refit_gap": p.refit_gap} for p in self.pairs])


def _residual(cells: Cells, theta: np.ndarray) -> np.ndarray:
    """Per cell y - p from the lower id's side."""
    y = np.where(cells.outcome == LO_WINS, 1.0, np.where(cells.outcome == CELL_TIE, 0.5, 0.0))
    return y - sigmoid(theta[cells.lo] - theta[cells.hi])


def _fit(cells: Cells, counts: np.ndarray, theta0: np.ndarray, prior: float) -> np.ndarray:
    """Half-ties BT refits of [R, cells] counts, warm-started at theta0, each as rate() would fit it: a
    round whose plain MLE does not exist (dropping votes left a model unbeaten) gets the prior."""
    w, t = cell_matrices(cells, counts)
    if prior > 0:
        w = with_prior(w, t, prior)
    else:
        # Only a round that emptied a cell can have lost the MLE's existence: check just those.
        emptied = ((counts <= 0) & (cells.count > 0)).any(axis=1)
        need = np.zeros(len(counts), dtype=bool)
        for r in np.flatnonzero(emptied):
            need[r] = not graph.mle_exists(w[r], t[r])
        if need.any():
            w = np.where(need[:, None, None], with_prior(w, t, DEFAULT_PRIOR), w)
    return newton_half(half_wins(w, t), np.broadcast_to(theta0, (len(counts), len(theta0))), max_iter=100,
                       tol=1e-8)


def _greedy_order(cells: Cells, theta: np.ndarray, a_inv: np.ndarray, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Cells sorted by how much dropping one of their votes closes theta_i - theta_j (most first), and that
    per-vote change; only cells whose votes close the gap are kept."""
    u = a_inv[:, i] - a_inv[:, j]
    delta = -(u[cells.lo] - u[cells.hi]) * _residual(cells, theta)
    closing = np.flatnonzero(delta < 0)
    order = closing[np.argsort(delta[closing], kind="stable")]
    return order, delta[order]


def _prefix_counts(cells: Cells, order: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """[len(lengths), cells] counts with the first ``lengths[r]`` votes of the greedy order removed."""
    cum = np.cumsum(cells.count[order])
    before = np.concatenate([[0.0], cum[:-1]])
    removed = np.clip(lengths[:, None] - before[None, :], 0.0, cells.count[order][None, :])
    counts = np.broadcast_to(cells.count, (len(lengths), len(cells.count))).copy()
    counts[:, order] -= removed
    return counts


def _smallest_flip(cells: Cells, theta: np.ndarray, order: np.ndarray, i: int, j: int, prior: float,
                   start: float) -> tuple[int | None, np.ndarray | None]:
    """Smallest prefix length of ``order`` whose refit puts j above i, and that refit.

    Batched probing, PROBES prefix lengths per solve: first a window around the linear prediction (usually
    within a few percent of the answer), widened geometrically until a flip is bracketed, then the bracket
    is filled in until the first flipping length is pinned down.
    """
    total = int(cells.count[order].sum())
    if total == 0:
        return None, None
    lo, hi, best = 0, None, None  # lo: a prefix known not to flip (0 votes never flips); hi: the first that does
    guess = min(max(start, 1.0), float(total))
    a, b = max(1.0, 0.8 * guess), min(float(total), 1.25 * guess + 1.0)
    for _ in range(200):
        if hi is None:
            lengths = np.unique(np.clip(np.round(np.geomspace(a, max(a, b), PROBES)), lo + 1, total))
        else:
            lengths = np.unique(np.round(np.linspace(lo + 1, hi - 1, min(PROBES, hi - lo - 1))))
        lengths = lengths.astype(np.int64)
        fits = _fit(cells, _prefix_counts(cells, order, lengths.astype(float)), theta, prior)
        flips = fits[:, j] > fits[:, i]
        if flips.any():
            k = int(np.argmax(flips))
            hi, best = int(lengths[k]), fits[k]
            if k > 0:
                lo = int(lengths[k - 1])
        elif hi is None:
            lo = int(lengths[-1])
            if lo >= total:
                return None, None
            a, b = lo + 1.0, min(float(total), 4.0 * lo + 1.0)
        else:
            lo = int(lengths[-1])
        if hi is not None and hi - lo <= 1:
            return hi, best
    return hi, best  # pragma: no cover - every pass narrows the bracket or widens the window


@dataclass(frozen=True)
class _CellRows:
    """Battle rows grouped by cell: rows[starts[c]:starts[c + 1]] are cell c's battles, in row order."""

    rows: np.ndarray
    starts: np.ndarray

    @classmethod
    def build(cls, cell_of: np.ndarray, n_cells: int) -> _CellRows:
        rows = np.argsort(cell_of, kind="stable")
        return cls(rows=rows, starts=np.searchsorted(cell_of[rows], np.arange(n_cells + 1)))

    def first(self, order: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
        """Row indices of the first n votes of the cell order, in that order (within a cell, earliest row first)."""
        need = np.clip(n - np.concatenate([[0.0], np.cumsum(counts[order])[:-1]]), 0, counts[order])
        take = [self.rows[self.starts[c] : self.starts[c] + int(k)] for c, k in zip(order, need, strict=True) if k > 0]
        return np.concatenate(take) if take else np.zeros(0, dtype=np.int64)


def _pair_flip(cells: Cells, cell_rows: _CellRows, theta: np.ndarray, a_inv: np.ndarray, models: list[str], i: int,
               j: int, prior: float, n_total: int, elo: float) -> PairFlip:
    order, delta = _greedy_order(cells, theta, a_inv, i, j)
    gap = float(theta[i] - theta[j])
    # Linear prediction: votes (whole cells first) until the summed change covers the gap.
    closed = np.cumsum(-delta * cells.count[order])
    k = int(np.searchsorted(closed, gap))
    if k < len(order):
        before = closed[k - 1] if k > 0 else 0.0
        approx = float(cells.count[order][:k].sum() + (gap - before) / -delta[k])
    else:
        approx = float("inf")
    start = approx if np.isfinite(approx) else float(cells.count[order].sum())
    n, fit = _smallest_flip(cells, theta, order, i, j, prior, start)
    if n is None:
        return PairFlip(upper=models[i], lower=models[j], gap=gap * elo, n_votes=None, share=float("nan"),
                        battles=np.zeros(0, dtype=np.int64), approx_votes=approx, confirmed=False,
                        refit_gap=float("nan"))
    return PairFlip(upper=models[i], lower=models[j], gap=gap * elo, n_votes=n, share=n / n_total,
                    battles=cell_rows.first(order, cells.count, n), approx_votes=approx, confirmed=True,
                    refit_gap=float(fit[i] - fit[j]) * elo)


def influence_audit(battles: pd.DataFrame, *, pairs: bool = True, prior: float = 1.0) -> InfluenceReport:
    """Rank 1 and (``pairs``) every adjacent pair: the fewest votes found whose removal reverses it.

    Half-ties BT on one connected comparison graph; ``prior`` virtual ties per compared pair are used only
    when the plain MLE does not exist (and then in every refit too).
    """
    enc = encode(battles)
    if enc.n_models < 2:
        raise ValueError("an influence audit needs at least two models")
    cells, cell_of = battle_cells(enc)
    cell_rows = _CellRows.build(cell_of, len(cells.count))
    wins, ties = cell_matrices(cells)
    if len(graph.components(wins + wins.T + ties, enc.models)) > 1:
        raise ValueError("the comparison graph is not connected; audit each component on its own")
    use_prior = 0.0 if graph.mle_exists(wins, ties) else prior
    notes: list[str] = []
    if use_prior:
        notes.append(f"a prior of {prior:g} virtual tied battle(s) per compared pair keeps the ratings finite")
    theta = fit_bt(half_wins(with_prior(wins, ties, use_prior) if use_prior else wins, ties))
    n_pair = wins + wins.T + ties
    if use_prior:
        n_pair = n_pair + (n_pair > 0) * use_prior
    p = sigmoid(theta[:, None] - theta[None, :])
    a_inv = analytic._pinv_centred(analytic._laplacian(n_pair * p * (1.0 - p)))
    order = np.lexsort((np.asarray(enc.models, dtype=object), -theta))
    n = len(enc)
    top_i = int(order[0])
    # Rank 1 falls to whichever challenger is cheapest: rank them by the linear prediction, confirm a few.
    approx = []
    for j in order[1:]:
        o, d = _greedy_order(cells, theta, a_inv, top_i, int(j))
        closed = np.cumsum(-d * cells.count[o])
        k = int(np.searchsorted(closed, theta[top_i] - theta[j]))
        approx.append((float(cells.count[o][: k + 1].sum()) if k < len(o) else float("inf"), int(j)))
    challengers = [j for _, j in sorted(approx)[:TOP_CHALLENGERS]]
    flips = [_pair_flip(cells, cell_rows, theta, a_inv, enc.models, top_i, j, use_prior, n, ELO_SCALE)
             for j in challengers]
    found = [f for f in flips if f.n_votes is not None]
    top = min(found, key=lambda f: f.n_votes) if found else (flips[0] if flips else None)
    adjacent = []
    if pairs:
        adjacent = [_pair_flip(cells, cell_rows, theta, a_inv, enc.models, int(order[r]), int(order[r + 1]),
                               use_prior, n, ELO_SCALE) for r in range(len(order) - 1)]
    notes.append("votes found by the linear influence order and confirmed by refits: an upper bound on the "
                 "fewest votes that would do it")
    return InfluenceReport(top=top, pairs=adjacent, n_battles=n, notes=notes)


def rank1_sentence(report: InfluenceReport) -> str:
    """"rank 1 holds unless these N votes (x% of all) are dropped" (naming the challenger that would win)."""
    if report.top is None:
        return "rank 1 cannot change: there is one model"
    t = report.top
    if t.n_votes is None:
        return f"rank 1 ({t.upper}) holds even if every vote that narrows its lead is dropped"
    return (f"rank 1 ({t.upper}) holds unless these {t.n_votes} votes ({100 * t.share:.3g}% of all) are dropped "
            f"(then {t.lower} leads)")
