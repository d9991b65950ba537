"""Seeded synthetic battles with known true ratings: for tests of the estimators and for the benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Synthetic:
    battles: pd.DataFrame  # model_a, model_b, winner
    true_theta: dict[str, float]  # natural log-strengths, mean zero
    nu: float | None  # Davidson tie parameter when ties were generated that way


def synthetic_battles(n: int, n_models: int, *, seed: int = 0, spread: float = 1.0, tie_rate: float = 0.15,
                      davidson_nu: float | None = None, uneven: bool = True) -> Synthetic:
    """``n`` battles among ``n_models`` models with normal(0, spread) log-strengths.

    Pairs are drawn with uneven frequencies (a popular model plays more, as on a real arena). Ties are a
    fixed ``tie_rate`` (decisive outcomes follow BT), or follow Davidson's model when ``davidson_nu`` is set.
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, n_models)
    theta -= theta.mean()
    popularity = rng.gamma(2.0, 1.0, n_models) if uneven else np.ones(n_models)
    p = popularity / popularity.sum()
    a = rng.choice(n_models, size=n, p=p)
    b = rng.choice(n_models, size=n, p=p)
    clash = a == b
    while clash.any():
        b[clash] = rng.choice(n_models, size=int(clash.sum()), p=p)
        clash = a == b
    d = theta[a] - theta[b]
    if davidson_nu is not None:
        z = np.exp(d / 2) + np.exp(-d / 2) + davidson_nu
        p_a, p_tie = np.exp(d / 2) / z, davidson_nu / z
    else:
        p_tie = np.full(n, tie_rate)
        p_a = (1.0 - p_tie) / (1.0 + np.exp(-d))
    u = rng.random(n)
    labels = np.array(["model_a", "tie", "model_b"])
    winner = labels[np.where(u < p_a, 0, np.where(u < p_a + p_tie, 1, 2))]
    width = len(str(n_models - 1))
    names = np.array([f"model-{i:0{width}d}" for i in range(n_models)])
    battles = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})
    return Synthetic(battles=battles, true_theta=dict(zip(names.tolist(), theta.tolist(), strict=True)),
                     nu=davidson_nu)
