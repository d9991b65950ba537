"""Which ratings the data can support at all.

Two facts decide it. Models in different components of the comparison graph were never compared, directly
or through others, so no rating links them: each component is rated on its own. Inside a component the
maximum-likelihood fit exists only when the "beat or tied" graph is strongly connected; a model (or group)
that never lost, or never won, would get an infinite rating without a prior.
"""

from __future__ import annotations

import numpy as np

# Up to this many models the graph searches run on the dense matrix in numpy (microseconds for 100 models);
# beyond, scipy's sparse graph routines (whose import alone costs ~0.1 s).
DENSE_MODELS = 2_000


def _reachable(adj: np.ndarray, start: int) -> np.ndarray:
    """Nodes reachable from ``start`` along adj[i, j] (i -> j), by breadth-first frontiers."""
    seen = np.zeros(adj.shape[0], dtype=bool)
    seen[start] = True
    frontier = seen.copy()
    while frontier.any():
        new = adj[frontier].any(axis=0) & ~seen
        seen |= new
        frontier = new
    return seen


def components(played: np.ndarray, models: list[str]) -> list[list[str]]:
    """Connected components of the comparison graph (``played[i, j] > 0``), largest first."""
    m = played.shape[0]
    if m > DENSE_MODELS:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        n, labels = connected_components(csr_matrix(played > 0), directed=False)
    else:
        adj = (played > 0) | (played > 0).T
        labels = np.full(m, -1)
        n = 0
        for i in range(m):
            if labels[i] < 0:
                labels[_reachable(adj, i)] = n
                n += 1
    groups = [[models[i] for i in np.flatnonzero(labels == k)] for k in range(n)]
    return sorted(groups, key=lambda g: (-len(g), g))


def mle_exists(wins: np.ndarray, ties: np.ndarray) -> bool:
    """True when every model is reachable from every other through "beat or tied" edges (Zermelo/Ford)."""
    beat = (wins > 0) | (ties > 0)
    if beat.shape[0] > DENSE_MODELS:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        n, _ = connected_components(csr_matrix(beat), directed=True, connection="strong")
        return n == 1
    # Strongly connected iff model 0 reaches every model and every model reaches model 0.
    return bool(_reachable(beat, 0).all() and _reachable(beat.T, 0).all())


def unbounded_models(wins: np.ndarray, ties: np.ndarray, models: list[str]) -> list[str]:
    """Models that never lost nor tied (rating would go to +inf) or never won nor tied (-inf)."""
    won = wins.sum(axis=1)
    lost = wins.sum(axis=0)
    tied = ties.sum(axis=1)
    played = won + lost + tied > 0
    return [models[i] for i in np.flatnonzero(played & (tied == 0) & ((lost == 0) | (won == 0)))]
