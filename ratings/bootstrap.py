"""Bootstrap confidence intervals, all rounds at once.

Resampling N battles with replacement is, on aggregated counts, one multinomial draw of N over the distinct
(pair, outcome) cells, with the observed cell frequencies as probabilities. Each round's counts become
[R, M, M] win/tie arrays and one batched Newton solve fits every round, warm-started at the point estimate.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ratings.bt import half_wins, newton_half, with_prior, with_prior_ties
from ratings.davidson import newton_davidson
from ratings.encode import Cells, cell_matrices

CI_LEVEL = 0.95
CHUNK_ELEMENTS = 2_000_000


ROUNDS_PER_BLOCK = 25


def _usable_cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's limit), not all the machine has."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # no affinity call on this platform
        return os.cpu_count() or 1


def resample_counts(cells: Cells, rounds: int, seed: int) -> np.ndarray:
    """[rounds, cells] battle counts, each row a with-replacement resample of all battles.

    The draws are the slowest step of a bootstrap (~0.13 s for 100 rounds over 15,000 cells) and numpy
    draws them without the GIL, so blocks of ROUNDS_PER_BLOCK rounds, each from its own child of ``seed``,
    are drawn on threads. The blocks do not depend on the number of CPUs: the same seed gives the same
    rounds on any machine.
    """
    n = int(round(cells.total))
    p = cells.count / cells.count.sum()
    sizes = [min(ROUNDS_PER_BLOCK, rounds - start) for start in range(0, rounds, ROUNDS_PER_BLOCK)]
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    out = np.empty((rounds, len(p)), dtype=np.float64)

    def draw(block: int) -> None:
        start = block * ROUNDS_PER_BLOCK
        out[start : start + sizes[block]] = np.random.default_rng(seeds[block]).multinomial(n, p, size=sizes[block])

    workers = min(len(sizes), _usable_cpus())
    if workers <= 1:
        for block in range(len(sizes)):
            draw(block)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(draw, range(len(sizes))))
    return out


def bootstrap_theta(cells: Cells, theta_hat: np.ndarray, *, rounds: int, seed: int, ties: str = "half",
                    prior: float = 0.0, s_hat: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Log-strengths for each bootstrap round: [rounds, M] (and log-nu per round for Davidson)."""
    return fit_rounds(cells, resample_counts(cells, rounds, seed), theta_hat, ties=ties, prior=prior, s_hat=s_hat)


def fit_rounds(cells: Cells, counts: np.ndarray, theta_hat: np.ndarray, *, ties: str = "half", prior: float = 0.0,
               s_hat: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Fit every row of ``counts`` ([R, cells] resampled or reweighted cell counts) in one batched solve.

    Any resampling scheme that ends in cell counts (battles, whole clusters) shares this. Rounds are solved
    in chunks that keep each [chunk, M, M] array near 2 M elements (16 MB).
    """
    rounds = len(counts)
    chunk = max(1, CHUNK_ELEMENTS // (cells.n_models * cells.n_models))
    thetas, logs = [], []
    for start in range(0, rounds, chunk):
        w, t = cell_matrices(cells, counts[start : start + chunk])
        r = len(w)
        if prior > 0:
            # As in the point fit: Davidson takes the prior as virtual ties, half ties as split wins.
            w, t = (w, with_prior_ties(w, t, prior)) if ties == "davidson" else (with_prior(w, t, prior), t)
        theta0 = np.broadcast_to(theta_hat, (r, len(theta_hat)))
        if ties == "davidson":
            th, s = newton_davidson(w, t, theta0, np.full(r, s_hat))
            thetas.append(th)
            logs.append(s)
        else:
            thetas.append(newton_half(half_wins(w, t), theta0))
    theta = np.concatenate(thetas)
    return theta, (np.concatenate(logs) if logs else None)


def percentile_ci(samples: np.ndarray, level: float = CI_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Per-column equal-tailed interval of bootstrap samples [rounds, M]."""
    lo = (1.0 - level) / 2.0
    return np.quantile(samples, lo, axis=0), np.quantile(samples, 1.0 - lo, axis=0)
