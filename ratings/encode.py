"""Battles -> integer arrays -> aggregated pair counts.

Every fit works on counts per (pair, outcome) cell, never on one row per vote: a million battles among a
hundred models collapse to at most 3 * 4,950 cells, and resampling battles becomes a multinomial draw over
those cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Outcome codes of one battle, from model_a's side.
A_WINS, B_WINS, TIE, BOTHBAD = 0, 1, 2, 3
WINNER_CODES: dict[str, int] = {"model_a": A_WINS, "model_b": B_WINS, "tie": TIE, "tie (bothbad)": BOTHBAD}

# Outcome codes of one cell, from the lower model id's side (a cell is an unordered pair).
LO_WINS, HI_WINS, CELL_TIE = 0, 1, 2


@dataclass(frozen=True)
class Encoded:
    """One row per battle as integers; ``models[k]`` is the name of id ``k`` (sorted by name)."""

    models: list[str]
    a: np.ndarray  # int64 [n]
    b: np.ndarray  # int64 [n]
    outcome: np.ndarray  # int8 [n], WINNER_CODES values

    @property
    def n_models(self) -> int:
        return len(self.models)

    def __len__(self) -> int:
        return len(self.a)


@dataclass(frozen=True)
class Cells:
    """Distinct (lo, hi, outcome) cells with their battle counts; lo < hi are model ids."""

    n_models: int
    lo: np.ndarray
    hi: np.ndarray
    outcome: np.ndarray  # LO_WINS | HI_WINS | CELL_TIE ("tie (bothbad)" counts as a tie)
    count: np.ndarray  # float64, so resampled or weighted counts fit the same type

    @property
    def total(self) -> float:
        return float(self.count.sum())


@dataclass(frozen=True)
class Tallies:
    """Per-model raw counts, what a reader checks a leaderboard against."""

    battles: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray


def encode(battles: pd.DataFrame) -> Encoded:
    """Factorize model names (both columns share one id space, sorted by name) and map winner labels."""
    # Factorizing each column and merging the two small vocabularies is ~2x faster than factorizing the
    # concatenation, and a million rows is the normal size of an arena dump.
    codes_a, uniq_a = pd.factorize(battles["model_a"].astype(str))
    codes_b, uniq_b = pd.factorize(battles["model_b"].astype(str))
    models = sorted(set(uniq_a.tolist()) | set(uniq_b.tolist()))
    vocab = np.asarray(models, dtype=object)
    map_a = np.searchsorted(vocab, np.asarray(uniq_a, dtype=object))
    map_b = np.searchsorted(vocab, np.asarray(uniq_b, dtype=object))
    codes_w, uniq_w = pd.factorize(battles["winner"].astype(str))
    unknown = [w for w in uniq_w if w not in WINNER_CODES]
    if unknown:
        i = int(np.flatnonzero(np.asarray(uniq_w, dtype=object)[codes_w] == unknown[0])[0])
        raise ValueError(f"row {i}: unknown winner label {unknown[0]!r}; expected one of {', '.join(WINNER_CODES)}")
    map_w = np.array([WINNER_CODES[w] for w in uniq_w], dtype=np.int8)
    return Encoded(models=models, a=map_a[codes_a].astype(np.int64), b=map_b[codes_b].astype(np.int64),
                   outcome=map_w[codes_w])


def _cell_keys(enc: Encoded) -> np.ndarray:
    """Per battle, the flat key (lo * M + hi) * 3 + cell outcome of its (unordered pair, outcome) cell."""
    m = enc.n_models
    swap = enc.a > enc.b
    lo = np.where(swap, enc.b, enc.a)
    hi = np.where(swap, enc.a, enc.b)
    decisive = enc.outcome <= B_WINS
    # A decisive outcome flips with the orientation; both kinds of tie map to CELL_TIE.
    cell_out = np.where(decisive, enc.outcome ^ swap.astype(np.int8), CELL_TIE).astype(np.int64)
    return (lo * m + hi) * 3 + cell_out


def _cells_from_counts(counts: np.ndarray, m: int) -> tuple[Cells, np.ndarray]:
    nz = np.flatnonzero(counts)
    pair, out = np.divmod(nz, 3)
    lo_ids, hi_ids = np.divmod(pair, m)
    return Cells(n_models=m, lo=lo_ids, hi=hi_ids, outcome=out, count=counts[nz].astype(np.float64)), nz


def aggregate(enc: Encoded, weights: np.ndarray | None = None) -> Cells:
    """Count battles per unordered pair and outcome with one bincount (no per-vote Python)."""
    m = enc.n_models
    counts = np.bincount(_cell_keys(enc), weights=weights, minlength=m * m * 3)
    return _cells_from_counts(counts, m)[0]


def battle_cells(enc: Encoded) -> tuple[Cells, np.ndarray]:
    """:func:`aggregate` plus, for each battle, the index of its cell: what per-battle statistics
    (clusters, influence, voters) need to go from cells back to battles and forth."""
    m = enc.n_models
    keys = _cell_keys(enc)
    cells, nz = _cells_from_counts(np.bincount(keys, minlength=m * m * 3), m)
    lookup = np.zeros(m * m * 3, dtype=np.int64)
    lookup[nz] = np.arange(len(nz))
    return cells, lookup[keys]


def tallies(enc: Encoded) -> Tallies:
    m = enc.n_models
    o = enc.outcome
    battles = np.bincount(enc.a, minlength=m) + np.bincount(enc.b, minlength=m)
    wins = np.bincount(enc.a, weights=o == A_WINS, minlength=m) + np.bincount(enc.b, weights=o == B_WINS, minlength=m)
    losses = np.bincount(enc.a, weights=o == B_WINS, minlength=m) + np.bincount(enc.b, weights=o == A_WINS, minlength=m)
    return Tallies(battles=battles.astype(np.int64), wins=wins.astype(np.int64), losses=losses.astype(np.int64),
                   ties=(battles - wins - losses).astype(np.int64))


def cell_matrices(cells: Cells, counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dense decisive-win matrix W[winner, loser] and symmetric tie matrix T, for one or many count vectors.

    ``counts`` may be [C] or [R, C] (R bootstrap rounds); the result gains the leading R axis. All rounds
    go through one bincount keyed by (round, matrix cell).
    """
    m = cells.n_models
    c = cells.count if counts is None else counts
    c2 = np.atleast_2d(c)
    r = c2.shape[0]
    lo, hi, out = cells.lo, cells.hi, cells.outcome
    dec = out != CELL_TIE
    win_flat = np.where(out == LO_WINS, lo * m + hi, hi * m + lo)
    offsets = (np.arange(r) * m * m)[:, None]
    w = np.bincount((offsets + win_flat[dec]).ravel(), weights=c2[:, dec].ravel(), minlength=r * m * m)
    tie_flat = lo[~dec] * m + hi[~dec]
    t = np.bincount((offsets + tie_flat).ravel(), weights=c2[:, ~dec].ravel(), minlength=r * m * m)
    w = w.reshape(r, m, m)
    t = t.reshape(r, m, m)
    t = t + t.swapaxes(-1, -2)
    if np.ndim(c) == 1:
        return w[0], t[0]
    return w, t


def subset(battles: pd.DataFrame, models: set[str]) -> pd.DataFrame:
    """Battles whose two models are both in ``models``."""
    keep = battles["model_a"].isin(models) & battles["model_b"].isin(models)
    return battles.loc[keep.to_numpy()].reset_index(drop=True)
