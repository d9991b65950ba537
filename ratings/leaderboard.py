"""The leaderboard: one call from a battles DataFrame to a ranked table.

:func:`rate` is the entry point the CLI (rate, export), the app and the validation call: a
:class:`RatingResult` with the table and everything a careful reader needs beside it (tie parameter,
style coefficients, models left out, components, bootstrap samples, notes). :func:`leaderboard` is a
convenience wrapper for library users that returns the table alone, with those facts in ``table.attrs``.
The math lives in the small modules beside this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ratings import analytic, bootstrap, graph
from ratings.bt import anchor_shift, fit_bt, half_wins, to_elo, with_prior, with_prior_ties
from ratings.davidson import fit_davidson
from ratings.encode import Cells, Encoded, aggregate, cell_matrices, encode, subset, tallies
from ratings.style import fit_style_bt, style_columns, style_features

LEADERBOARD_COLUMNS = ["model", "rating", "ci_low", "ci_high", "rank", "rank_ub", "battles", "wins", "losses", "ties"]
TIES = ("half", "davidson")
CI_METHODS = ("bootstrap", "analytic", "none")
DEFAULT_PRIOR = 1.0
# Percentile CIs settle within a few thousand rounds; far more only holds [rounds x cells] counts in memory
# (10 million rounds: tens of GB) for no change in the interval.
MAX_BOOTSTRAP = 100_000
# Below this many battles a model's CI (analytic or bootstrap) is not trustworthy: the output says so.
FEW_BATTLES = 10


class NoBattlesLeftError(ValueError):
    """--min-battles left nothing to rate (a caller rating groups reports the group and goes on)."""


@dataclass
class RatingResult:
    """A leaderboard and what it rests on. ``table`` is sorted best first (within each component)."""

    table: pd.DataFrame
    method: str
    ci_method: str
    n_battles: int
    models: list[str]  # table order
    theta: np.ndarray  # log-strengths in table order (each component centred on its own)
    wins: np.ndarray  # [M, M] decisive wins [winner, loser], table order
    ties: np.ndarray  # [M, M] symmetric ties, table order
    component_of: np.ndarray  # [M] component index, table order
    nu: float | None = None
    style: pd.DataFrame | None = None
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["model", "battles"]))
    components: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: pd.DataFrame | None = None  # [rounds x models] bootstrap ratings (Elo scale)


@dataclass
class _ComponentFit:
    models: list[str]
    theta: np.ndarray
    rating: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    samples: np.ndarray | None
    nu: float | None
    style: pd.DataFrame | None
    notes: list[str]


def leaderboard(battles: pd.DataFrame, *, ties: str = "half", bootstrap: int = 0, seed: int = 0,
                anchor: tuple[str, float] | None = None, ci: str | None = None, min_battles: int = 0,
                style_control: bool = False, prior: float = DEFAULT_PRIOR) -> pd.DataFrame:
    """Bradley-Terry leaderboard on the Elo scale, best first; see :func:`rate` for the options.

    Columns: model, rating, ci_low, ci_high, rank, rank_ub, battles, wins, losses, ties (+ component when
    the comparison graph is not connected). ``table.attrs`` carries method, ci_method, n_battles, nu, notes.
    """
    res = rate(battles, ties=ties, bootstrap=bootstrap, seed=seed, anchor=anchor, ci=ci, min_battles=min_battles,
               style_control=style_control, prior=prior)
    table = res.table.copy()
    table.attrs.update({"method": res.method, "ci_method": res.ci_method, "n_battles": res.n_battles,
                        "nu": res.nu, "notes": list(res.notes)})
    return table


def bootstrap_ratings(battles: pd.DataFrame, rounds: int = 100, seed: int = 0, *, ties: str = "half",
                      anchor: tuple[str, float] | None = None) -> pd.DataFrame:
    """[rounds x models] Elo ratings, one row per bootstrap resample of the battles (for separability,
    agreement and Brier-style checks). Requires a connected comparison graph."""
    res = rate(battles, ties=ties, bootstrap=rounds, seed=seed, anchor=anchor, ci="bootstrap")
    if len(res.components) > 1:
        raise ValueError(f"the comparison graph has {len(res.components)} components; bootstrap samples across "
                         "components would compare unrelated scales")
    assert res.samples is not None
    return res.samples


def check_settings(*, bootstrap: int = 0, seed: int = 0, anchor: tuple[str, float] | None = None,
                   prior: float = DEFAULT_PRIOR, min_battles: int = 0) -> None:
    """Refuse fit settings that have no meaning (a NaN anchor, a negative prior) or no end (10 million
    bootstrap rounds), before any work, with the option's name."""
    if not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise ValueError(f"--bootstrap {bootstrap}: expected 0 to {MAX_BOOTSTRAP} rounds (CIs settle within a few "
                         "thousand)")
    if seed < 0:
        raise ValueError(f"--seed {seed}: expected a number >= 0")
    if anchor is not None and not np.isfinite(anchor[1]):
        raise ValueError(f"--anchor {anchor[0]}={anchor[1]}: the rating must be a finite number")
    if not (np.isfinite(prior) and prior >= 0):
        raise ValueError(f"--prior {prior:g}: expected a finite number >= 0 (virtual tied battles per pair)")
    if min_battles < 0:
        raise ValueError(f"--min-battles {min_battles}: expected a number >= 0")


def rate(battles: pd.DataFrame, *, ties: str = "half", bootstrap: int = 0, seed: int = 0,
         anchor: tuple[str, float] | None = None, ci: str | None = None, min_battles: int = 0,
         style_control: bool = False, prior: float = DEFAULT_PRIOR) -> RatingResult:
    """Fit a leaderboard.

    ties: "half" (a tie is half a win each way) or "davidson" (Davidson 1970, reports nu).
    ci: "bootstrap" (percentile, ``bootstrap`` rounds, seeded), "analytic" (sandwich / Fisher), "none";
        default bootstrap when ``bootstrap > 0`` else analytic.
    min_battles: models with fewer battles are left out (listed in ``excluded``) with all their battles.
    prior: virtual tied battles per compared pair, added only when the plain MLE does not exist.
    """
    if ties not in TIES:
        raise ValueError(f"unknown ties model {ties!r}; expected one of {', '.join(TIES)}")
    check_settings(bootstrap=bootstrap, seed=seed, anchor=anchor, prior=prior, min_battles=min_battles)
    ci = ci or ("bootstrap" if bootstrap > 0 else "analytic")
    if ci not in CI_METHODS:
        raise ValueError(f"unknown CI method {ci!r}; expected one of {', '.join(CI_METHODS)}")
    if ci == "bootstrap" and bootstrap <= 0:
        raise ValueError("bootstrap CIs need --bootstrap N with N > 0 rounds")
    if style_control and ties != "half":
        raise ValueError("style control is fitted with half ties; drop --ties davidson or --style-control")
    if len(battles) == 0:
        raise ValueError("no battles to rate")

    notes: list[str] = []
    enc = encode(battles)
    counts = tallies(enc)
    low = counts.battles < min_battles
    excluded = pd.DataFrame({"model": np.asarray(enc.models)[low], "battles": counts.battles[low]})
    if low.any():
        battles = subset(battles, set(np.asarray(enc.models)[~low]))
        notes.append(f"{int(low.sum())} model(s) under {min_battles} battles left out: "
                     + ", ".join(excluded["model"]))
        if len(battles) == 0:
            raise NoBattlesLeftError(f"no battles left after removing models with fewer than {min_battles} "
                                     "battles")
        enc = encode(battles)
    if ci != "none":
        kept = tallies(enc)
        few = [m for m, b in zip(enc.models, kept.battles, strict=True) if b < FEW_BATTLES]
        if few:
            # A handful of battles can give a zero-width interval (e.g. two ties): that is not certainty.
            notes.append(f"CIs from very few battles are unreliable: {', '.join(few)} "
                         f"{'has' if len(few) == 1 else 'have'} fewer than {FEW_BATTLES} battles")
    cells = aggregate(enc)
    w_all, t_all = cell_matrices(cells)
    comps = graph.components(w_all + w_all.T + t_all, enc.models)
    if len(comps) > 1:
        notes.append(f"the comparison graph has {len(comps)} disconnected components; each is rated on its own "
                     "and ratings in different components are NOT comparable: "
                     + " | ".join(", ".join(c) for c in comps))

    if anchor is not None and anchor[0] not in enc.models:
        raise ValueError(f"anchor model {anchor[0]!r} is not among the rated models ({', '.join(enc.models)})")
    fits: list[_ComponentFit] = []
    for k, comp in enumerate(comps):
        sub = battles if len(comps) == 1 else subset(battles, set(comp))
        comp_anchor = anchor if anchor is not None and anchor[0] in comp else None
        fit = _fit_component(sub, enc if len(comps) == 1 else encode(sub), cells if len(comps) == 1 else None,
                             ties=ties, ci=ci, rounds=bootstrap, seed=seed + k, anchor=comp_anchor,
                             style_control=style_control, prior=prior)
        fits.append(fit)
        notes.extend(fit.notes)

    return _assemble(enc, fits, comps, w_all, t_all, ties=ties, ci=ci, rounds=bootstrap, notes=notes,
                     excluded=excluded, style_control=style_control)


def _fit_component(battles: pd.DataFrame, enc: Encoded, cells: Cells | None, *, ties: str, ci: str, rounds: int,
                   seed: int, anchor: tuple[str, float] | None, style_control: bool, prior: float) -> _ComponentFit:
    cells = cells if cells is not None else aggregate(enc)
    wins, tie_m = cell_matrices(cells)
    notes: list[str] = []
    use_prior = 0.0
    if not graph.mle_exists(wins, tie_m):
        unbounded = graph.unbounded_models(wins, tie_m, enc.models)
        who = f" (never lost or never won: {', '.join(unbounded)})" if unbounded else ""
        problem = f"the maximum-likelihood ratings do not exist for {', '.join(enc.models)}{who}"
        if prior <= 0:
            raise ValueError(f"{problem}; pass a positive prior")
        use_prior = prior
        notes.append(f"{problem}; a prior of {prior:g} virtual tied battle(s) per compared pair keeps them finite")
    fit_wins = with_prior(wins, tie_m, use_prior) if use_prior else wins

    if style_control:
        method = _fit_style(battles, enc, prior=use_prior, ci=ci, rounds=rounds, seed=seed)
    elif ties == "davidson":
        # Davidson gets the prior as virtual ties (its own outcome), not as wins each way.
        fit_ties = with_prior_ties(wins, tie_m, use_prior) if use_prior else tie_m
        method = _fit_davidson(cells, wins, fit_ties, prior=use_prior, ci=ci, rounds=rounds, seed=seed)
    else:
        method = _fit_half(cells, wins, fit_wins, tie_m, prior=use_prior, ci=ci, rounds=rounds, seed=seed)
    theta, cov, samples_theta = method.theta, method.cov, method.samples

    # --anchor is a pure shift (as in Chatbot Arena): one constant, from the point estimate, moves the
    # ratings, the CI bounds and every bootstrap round alike, so CI widths do not depend on the anchor.
    unshifted = to_elo(theta)
    rating = anchor_shift(unshifted, enc.models, anchor)
    shift = float(rating[0] - unshifted[0]) if len(rating) else 0.0
    samples = None
    if samples_theta is not None:
        samples = to_elo(samples_theta) + shift
        lo, hi = bootstrap.percentile_ci(samples)
    elif cov is not None:
        lo_t, hi_t = analytic.normal_ci(theta, cov)
        lo, hi = to_elo(lo_t) + shift, to_elo(hi_t) + shift
    else:
        lo = hi = np.full(len(theta), np.nan)
    return _ComponentFit(models=enc.models, theta=theta, rating=rating, ci_low=lo, ci_high=hi, samples=samples,
                         nu=method.nu, style=method.style, notes=notes)


@dataclass
class _MethodFit:
    """One estimator's output on the log scale: point, and either a covariance or bootstrap samples."""

    theta: np.ndarray
    cov: np.ndarray | None = None
    samples: np.ndarray | None = None
    nu: float | None = None
    style: pd.DataFrame | None = None


def _fit_half(cells: Cells, wins: np.ndarray, fit_wins: np.ndarray, tie_m: np.ndarray, *, prior: float, ci: str,
              rounds: int, seed: int) -> _MethodFit:
    theta = fit_bt(half_wins(fit_wins, tie_m))
    if ci == "analytic":
        prior_wins = fit_wins - wins if prior else None
        return _MethodFit(theta, cov=analytic.sandwich_cov_half(cells, theta, prior_wins))
    if ci == "bootstrap":
        samples, _ = bootstrap.bootstrap_theta(cells, theta, rounds=rounds, seed=seed, prior=prior)
        return _MethodFit(theta, samples=samples)
    return _MethodFit(theta)


def _fit_davidson(cells: Cells, wins: np.ndarray, fit_ties: np.ndarray, *, prior: float, ci: str, rounds: int,
                  seed: int) -> _MethodFit:
    dfit = fit_davidson(wins, fit_ties)
    theta, nu = dfit.theta, float(dfit.nu)
    if ci == "analytic":
        return _MethodFit(theta, cov=analytic.fisher_cov_davidson(wins, fit_ties, theta, nu), nu=nu)
    if ci == "bootstrap":
        samples, _ = bootstrap.bootstrap_theta(cells, theta, rounds=rounds, seed=seed, ties="davidson", prior=prior,
                                               s_hat=float(np.log(nu)))
        return _MethodFit(theta, samples=samples, nu=nu)
    return _MethodFit(theta, nu=nu)


def _fit_style(battles: pd.DataFrame, enc: Encoded, *, prior: float, ci: str, rounds: int, seed: int) -> _MethodFit:
    x = style_features(style_columns(battles))
    sfit = fit_style_bt(enc, x, prior=prior)
    m = enc.n_models
    centre = np.eye(m) - 1.0 / m
    table = pd.DataFrame({"feature": list(sfit.features), "coef": sfit.coef,
                          "ci_low": sfit.coef - analytic.Z95 * sfit.se[m:],
                          "ci_high": sfit.coef + analytic.Z95 * sfit.se[m:]})
    if ci == "bootstrap":
        # Per-battle features cannot be aggregated into cells: each round reweights the battles
        # (multinomial counts) and refits; the fit itself is vectorised over battles.
        rng = np.random.default_rng(seed)
        n = len(enc)
        draws = rng.multinomial(n, np.full(n, 1.0 / n), size=rounds)
        samples = np.stack([fit_style_bt(enc, x, weights=d.astype(float), prior=prior).theta for d in draws])
        return _MethodFit(sfit.theta, samples=samples, style=table)
    cov = centre @ sfit.cov[:m, :m] @ centre if ci == "analytic" else None
    return _MethodFit(sfit.theta, cov=cov, style=table)


RANK_TOL = 1e-9  # ratings closer than this are equal (fits of symmetric data differ in the last bits)


def competition_rank(rating: np.ndarray, tol: float = RANK_TOL) -> np.ndarray:
    """1 + the number of models with a strictly higher rating: equal ratings share a rank (1, 1, 3)."""
    return 1 + (rating[None, :] > rating[:, None] + tol).sum(axis=1)


def rank_upper_bound(ci_low: np.ndarray, ci_high: np.ndarray) -> np.ndarray:
    """Chatbot Arena's rank: 1 + the number of models whose lower bound is above this model's upper bound."""
    return 1 + (ci_low[None, :] > ci_high[:, None]).sum(axis=1)


def _assemble(enc: Encoded, fits: list[_ComponentFit], comps: list[list[str]], w_all: np.ndarray,
              t_all: np.ndarray, *, ties: str, ci: str, rounds: int, notes: list[str], excluded: pd.DataFrame,
              style_control: bool) -> RatingResult:
    counts = tallies(enc)
    index = {m: i for i, m in enumerate(enc.models)}
    parts = []
    for k, fit in enumerate(fits):
        idx = np.array([index[m] for m in fit.models])
        part = pd.DataFrame({
            "model": fit.models, "rating": fit.rating, "ci_low": fit.ci_low, "ci_high": fit.ci_high,
            "battles": counts.battles[idx], "wins": counts.wins[idx], "losses": counts.losses[idx],
            "ties": counts.ties[idx], "component": k + 1, "_theta": fit.theta,
        }).sort_values(["rating", "model"], ascending=[False, True], ignore_index=True)
        part["rank"] = competition_rank(part["rating"].to_numpy())
        if ci == "none":
            part["rank_ub"] = part["rank"]
        else:
            part["rank_ub"] = rank_upper_bound(part["ci_low"].to_numpy(), part["ci_high"].to_numpy())
        parts.append(part)
    full = pd.concat(parts, ignore_index=True)
    order = np.array([index[m] for m in full["model"]])
    cols = LEADERBOARD_COLUMNS + (["component"] if len(comps) > 1 else [])
    table = full[cols].reset_index(drop=True)

    samples = None
    if all(f.samples is not None for f in fits):
        samples = pd.concat([pd.DataFrame(f.samples, columns=f.models) for f in fits], axis=1)[list(full["model"])]
    nus = [f.nu for f in fits if f.nu is not None]
    style = fits[0].style if style_control else None
    method = "bt-style-control" if style_control else ("davidson" if ties == "davidson" else "bt-half-ties")
    ci_desc = {"bootstrap": f"bootstrap-percentile-95 ({rounds} rounds)", "none": "none",
               "analytic": "analytic-95 (" + ("fisher" if ties == "davidson" and not style_control else "sandwich") + ")"}
    return RatingResult(
        table=table, method=method, ci_method=ci_desc[ci], n_battles=len(enc), models=list(full["model"]),
        theta=full["_theta"].to_numpy(), wins=w_all[np.ix_(order, order)], ties=t_all[np.ix_(order, order)],
        component_of=full["component"].to_numpy(), nu=nus[0] if nus else None,
        style=style, excluded=excluded, components=comps, notes=notes, samples=samples,
    )

