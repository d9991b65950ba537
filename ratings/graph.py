"""Which ratings the data can support at all.

Two facts decide it. Models in different components of the comparison graph were never compared, directly
or through others, so no rating links them: each component is rated on its own. Inside a component the
maximum-likelihood fit exists only when the "beat or tied" graph is strongly connected; a model (or group)
that never lost, or never won, would get an infinite rating without a prior.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components


def components(played: np.ndarray, models: list[str]) -> list[list[str]]:
    """Connected components of the comparison graph (``played[i, j] > 0``), largest first."""
    n, labels = connected_components(csr_matrix(played > 0), directed=False)
    groups = [[models[i] for i in np.flatnonzero(labels == k)] for k in range(n)]
    return sorted(groups, key=lambda g: (-len(g), g))


def mle_exists(wins: np.ndarray, ties: np.ndarray) -> bool:
    """True when every model is reachable from every other through "beat or tied" edges (Zermelo/Ford)."""
    beat = (wins > 0) | (ties > 0)
    n, _ = connected_components(csr_matrix(beat), directed=True, connection="strong")
    return n == 1


def unbounded_models(wins: np.ndarray, ties: np.ndarray, models: list[str]) -> list[str]:
    """Models that never lost nor tied (rating would go to +inf) or never won nor tied (-inf)."""
    won = wins.sum(axis=1)
    lost = wins.sum(axis=0)
    tied = ties.sum(axis=1)
    played = won + lost + tied > 0
    return [models[i] for i in np.flatnonzero(played & (tied == 0) & ((lost == 0) | (won == 0)))]
