"""The dense graph searches against scipy's sparse routines on random comparison graphs."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from ratings import graph


def test_components_and_mle_existence_match_scipy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(400):
        m = int(rng.integers(1, 12))
        density = rng.random()
        wins = (rng.random((m, m)) < 0.4 * density) * rng.integers(1, 5, (m, m))
        np.fill_diagonal(wins, 0)
        ties = np.triu(rng.random((m, m)) < 0.1 * density, 1).astype(int)
        ties = ties + ties.T
        n, labels = connected_components(csr_matrix((wins + wins.T + ties) > 0), directed=False)
        names = [f"m{i}" for i in range(m)]
        expected = sorted([[names[i] for i in np.flatnonzero(labels == k)] for k in range(n)],
                          key=lambda g: (-len(g), g))
        strong = connected_components(csr_matrix((wins > 0) | (ties > 0)), directed=True, connection="strong")[0]
        assert graph.components(wins + wins.T + ties, names) == expected
        assert graph.mle_exists(wins, ties) == (strong == 1)
