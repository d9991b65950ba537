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

from ratings import analytic, bootstrap, cluster, graph
from ratings.bt import ELO_SCALE, anchor_shift, fit_bt, half_wins, to_elo, with_prior, with_prior_ties
from ratings.davidson import fit_davidson
from ratings.encode import Cells, Encoded, aggregate, battle_cells, cell_matrices, encode, subset, tallies
from ratings.style import (
    StyleOptions,
    fit_style_bt,
    pair_weights,
    style_cluster_cov,
    style_columns,
    style_features,
)

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
    # [M, M] covariance of ``theta`` (log scale, table order) when the CI is analytic; NaN between components.
    # Times ratings.bt.ELO_SCALE ** 2 it is the covariance of the Elo ratings.
    cov: np.ndarray | None = None
    clustering: cluster.ClusterSummary | None = None  # set when rate(cluster=...) clustered the intervals


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
    cov: np.ndarray | None = None
    clustering: cluster.ClusterSummary | None = None


def leaderboard(battles: pd.DataFrame, *, ties: str = "half", bootstrap: int = 0, seed: int = 0,
                anchor: tuple[str, float] | None = None, ci: str | None = None, min_battles: int = 0,
                style_control: bool = False, prior: float = DEFAULT_PRIOR, style: StyleOptions | None = None,
                cluster_by: str | None = None) -> pd.DataFrame:
    """Bradley-Terry leaderboard on the Elo scale, best first; see :func:`rate` for the options.

    Columns: model, rating, ci_low, ci_high, rank, rank_ub, battles, wins, losses, ties (+ component when
    the comparison graph is not connected). ``table.attrs`` carries method, ci_method, n_battles, nu, notes.
    """
    res = rate(battles, ties=ties, bootstrap=bootstrap, seed=seed, anchor=anchor, ci=ci, min_battles=min_battles,
               style_control=style_control, prior=prior, style=style, cluster_by=cluster_by)
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
         style_control: bool = False, prior: float = DEFAULT_PRIOR, style: StyleOptions | None = None,
         cluster_by: str | None = None, weights: np.ndarray | None = None) -> RatingResult:
    """Fit a leaderboard.

    ties: "half" (a tie is half a win each way) or "davidson" (Davidson 1970, reports nu).
    ci: "bootstrap" (percentile, ``bootstrap`` rounds, seeded), "analytic" (sandwich / Fisher), "none";
        default bootstrap when ``bootstrap > 0`` else analytic.
    min_battles: models with fewer battles are left out (listed in ``excluded``) with all their battles.
    prior: virtual tied battles per compared pair, added only when the plain MLE does not exist.
    style: features, penalty and reweighting of style control (default: StyleOptions(), the unpenalised fit
        of every feature; ratings.style.LMARENA_STYLE for LMArena's settings).
    cluster_by: "prompt" | "voter" clusters the intervals (ratings.cluster: cluster-robust sandwich for
        analytic CIs, whole-cluster resampling for bootstrap ones); None or "none" treats votes as
        independent. ratings.cluster.default_cluster(battles) is the CLI's default. With fewer than
        cluster.MIN_CLUSTERS clusters the bootstrap falls back to the sandwich with t quantiles, and the
        notes say so. ``clustering`` in the result carries the design effect per model.
    weights: one per battle, e.g. inverse-propensity weights 1/P(pair) that undo a sampler favouring some
        pairs (normalised to mean 1; half ties, no style control). Analytic CIs are the weighted sandwich
        (its meat sums w^2); bootstrap CIs resample battles (Poisson) and keep their weights.
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
    auto_notes: list[str] = []
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(battles),) or not np.isfinite(w).all() or (w <= 0).any():
            raise ValueError(f"weights must be {len(battles)} finite positive numbers, one per battle")
        if ties != "half" or style_control:
            raise ValueError("weighted (reweighted) ratings are fitted with half ties and no style control")
        if cluster_by not in (None, "none", "auto"):
            raise ValueError("weighted ratings do not cluster their CIs; drop --cluster or the reweighting")
        if cluster_by == "auto":
            cluster_by = "none"
            auto_notes.append("reweighted: CIs treat votes as independent (not clustered)")
        battles = battles.assign(**{WEIGHT_COLUMN: w / w.mean()})
    if cluster_by == "auto":  # the CLI's default: prompt clusters when the votes carry prompt ids
        cluster_by = cluster.default_cluster(battles)
        if cluster_by != "none" and ci == "analytic" and ties == "davidson" and not style_control:
            cluster_by = "none"
            auto_notes.append("Davidson's analytic CIs treat votes as independent; --bootstrap N clusters "
                              "them by prompt")
    cluster_by = None if cluster_by in (None, "none") else cluster_by
    groups_all = None
    if cluster_by is not None:
        groups_all = cluster.cluster_ids(battles, cluster_by)  # no such ids: a clear error before any fitting
        if ci == "analytic" and ties == "davidson" and not style_control:
            raise ValueError("clustered analytic intervals are for half ties; with --ties davidson cluster the "
                             "bootstrap (--bootstrap N)")

    notes: list[str] = auto_notes
    enc = encode(battles)
    counts = tallies(enc)
    low = counts.battles < min_battles
    excluded = pd.DataFrame({"model": np.asarray(enc.models)[low], "battles": counts.battles[low]})
    if low.any():
        groups_all = None  # battles change: ids are taken again from what is left
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
    cells = aggregate(enc, _weights(battles))
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
                             style_control=style_control, prior=prior, style=style or StyleOptions(),
                             cluster_by=cluster_by, groups=groups_all if len(comps) == 1 else None)
        fits.append(fit)
        notes.extend(fit.notes)

    return _assemble(enc, fits, comps, w_all, t_all, ties=ties, ci=ci, rounds=bootstrap, notes=notes,
                     excluded=excluded, style_control=style_control)


def _fit_component(battles: pd.DataFrame, enc: Encoded, cells: Cells | None, *, ties: str, ci: str, rounds: int,
                   seed: int, anchor: tuple[str, float] | None, style_control: bool, prior: float,
                   style: StyleOptions, cluster_by: str | None,
                   groups: cluster.Clusters | None = None) -> _ComponentFit:
    if cluster_by is None or ci == "none":
        groups = None
    elif groups is None:
        groups = cluster.cluster_ids(battles, cluster_by)
    cell_of = None
    if groups is not None:
        cells, cell_of = battle_cells(enc)
    weighted = _weights(battles)
    cells = cells if cells is not None else aggregate(enc, weighted)
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

    clustered = _Clustered(groups, cell_of, ci, rounds) if groups is not None else None
    if clustered is not None and not clustered.trustworthy:
        notes.append(cluster.few_clusters_note(groups, "bootstrap" if ci == "bootstrap" else "sandwich"))
    if style_control:
        method = _fit_style(battles, enc, prior=use_prior, ci=ci, rounds=rounds, seed=seed, options=style,
                            clustered=clustered)
    elif ties == "davidson":
        # Davidson gets the prior as virtual ties (its own outcome), not as wins each way.
        fit_ties = with_prior_ties(wins, tie_m, use_prior) if use_prior else tie_m
        method = _fit_davidson(cells, wins, fit_ties, prior=use_prior, ci=ci, rounds=rounds, seed=seed,
                               clustered=clustered)
    elif weighted is not None:
        method = _fit_weighted(enc, cells, weighted, wins, fit_wins, tie_m, prior=use_prior, ci=ci, rounds=rounds,
                               seed=seed)
    else:
        method = _fit_half(cells, wins, fit_wins, tie_m, prior=use_prior, ci=ci, rounds=rounds, seed=seed,
                           clustered=clustered, enc=enc)
    theta, cov, samples_theta = method.theta, method.cov, method.samples
    summary = None
    if clustered is not None:
        summary = _cluster_summary(enc, cells, theta, wins, fit_wins, tie_m, use_prior, groups, clustered, method)

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
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        lo, hi = to_elo(theta - method.critical * se) + shift, to_elo(theta + method.critical * se) + shift
    else:
        lo = hi = np.full(len(theta), np.nan)
    return _ComponentFit(models=enc.models, theta=theta, rating=rating, ci_low=lo, ci_high=hi, samples=samples,
                         nu=method.nu, style=method.style, notes=notes, cov=cov, clustering=summary)


@dataclass
class _MethodFit:
    """One estimator's output on the log scale: point, and either a covariance or bootstrap samples."""

    theta: np.ndarray
    cov: np.ndarray | None = None
    samples: np.ndarray | None = None
    nu: float | None = None
    style: pd.DataFrame | None = None
    critical: float = analytic.Z95  # the quantile of the analytic interval (t with few clusters)


@dataclass
class _Clustered:
    """How a component's intervals are clustered: the ids, and which estimator the few-clusters rule left."""

    groups: cluster.Clusters
    cell_of: np.ndarray
    ci: str
    rounds: int

    @property
    def trustworthy(self) -> bool:
        return self.groups.n_clusters >= cluster.MIN_CLUSTERS

    @property
    def use_bootstrap(self) -> bool:
        return self.ci == "bootstrap" and self.trustworthy

    @property
    def critical(self) -> float:
        return cluster.critical_value(self.groups.n_clusters)


def _fit_half(cells: Cells, wins: np.ndarray, fit_wins: np.ndarray, tie_m: np.ndarray, *, prior: float, ci: str,
              rounds: int, seed: int, clustered: _Clustered | None = None, enc: Encoded | None = None) -> _MethodFit:
    theta = fit_bt(half_wins(fit_wins, tie_m))
    prior_wins = fit_wins - wins if prior else None
    if clustered is not None and ci != "none":
        if clustered.use_bootstrap:
            g = clustered.groups
            samples, _ = cluster.cluster_bootstrap_theta(cells, clustered.cell_of, g.codes, g.n_clusters, theta,
                                                         rounds=rounds, seed=seed, prior=prior)
            return _MethodFit(theta, samples=samples)
        assert enc is not None
        cov = cluster.cluster_sandwich_cov(enc, theta, clustered.groups.codes, clustered.groups.n_clusters,
                                           prior_wins=prior_wins)
        return _MethodFit(theta, cov=cov, critical=clustered.critical)
    if ci == "analytic":
        return _MethodFit(theta, cov=analytic.sandwich_cov_half(cells, theta, prior_wins))
    if ci == "bootstrap":
        samples, _ = bootstrap.bootstrap_theta(cells, theta, rounds=rounds, seed=seed, prior=prior)
        return _MethodFit(theta, samples=samples)
    return _MethodFit(theta)


WEIGHT_COLUMN = "_weight"  # rate(weights=...) rides along with the battles through subsets


def _weights(battles: pd.DataFrame) -> np.ndarray | None:
    return battles[WEIGHT_COLUMN].to_numpy(dtype=float) if WEIGHT_COLUMN in battles.columns else None


def _fit_weighted(enc: Encoded, cells: Cells, w: np.ndarray, wins: np.ndarray, fit_wins: np.ndarray,
                  tie_m: np.ndarray, *, prior: float, ci: str, rounds: int, seed: int) -> _MethodFit:
    """Half-ties BT on weighted counts. The sandwich's meat needs sum(w^2) per cell, not sum(w): a vote of
    weight 3 is one noisy vote counted three times, not three votes."""
    from dataclasses import replace as dc_replace

    theta = fit_bt(half_wins(fit_wins, tie_m))
    prior_wins = fit_wins - wins if prior else None
    if ci == "analytic":
        meat = aggregate(enc, w * w)
        cov = analytic.sandwich_cov_weighted(cells, dc_replace(cells, count=meat.count), theta, prior_wins)
        return _MethodFit(theta, cov=cov)
    if ci == "bootstrap":
        cells_b, cell_of = battle_cells(enc)
        rng = np.random.default_rng(seed)
        counts = np.stack([np.bincount(cell_of, weights=w * rng.poisson(1.0, len(w)), minlength=len(cells_b.count))
                           for _ in range(rounds)])
        samples, _ = bootstrap.fit_rounds(cells_b, counts, theta, prior=prior)
        return _MethodFit(theta, samples=samples)
    return _MethodFit(theta)


def _fit_davidson(cells: Cells, wins: np.ndarray, fit_ties: np.ndarray, *, prior: float, ci: str, rounds: int,
                  seed: int, clustered: _Clustered | None = None) -> _MethodFit:
    dfit = fit_davidson(wins, fit_ties)
    theta, nu = dfit.theta, float(dfit.nu)
    if clustered is not None and ci == "bootstrap":
        g = clustered.groups
        if not clustered.trustworthy:
            raise cluster.ClusterError(f"only {g.n_clusters} {g.by} clusters: the cluster bootstrap is not "
                                       "trustworthy and Davidson has no cluster-robust sandwich here; use --ties half "
                                       "(which falls back to the sandwich) or --cluster none")
        samples, _ = cluster.cluster_bootstrap_theta(cells, clustered.cell_of, g.codes, g.n_clusters, theta,
                                                     rounds=rounds, seed=seed, ties="davidson", prior=prior,
                                                     s_hat=float(np.log(nu)))
        return _MethodFit(theta, samples=samples, nu=nu)
    if ci == "analytic":
        return _MethodFit(theta, cov=analytic.fisher_cov_davidson(wins, fit_ties, theta, nu), nu=nu)
    if ci == "bootstrap":
        samples, _ = bootstrap.bootstrap_theta(cells, theta, rounds=rounds, seed=seed, ties="davidson", prior=prior,
                                               s_hat=float(np.log(nu)))
        return _MethodFit(theta, samples=samples, nu=nu)
    return _MethodFit(theta, nu=nu)


def _fit_style(battles: pd.DataFrame, enc: Encoded, *, prior: float, ci: str, rounds: int, seed: int,
               options: StyleOptions, clustered: _Clustered | None = None) -> _MethodFit:
    feats = options.features
    x = style_features(style_columns(battles, feats), feats, add_one=options.add_one)
    sw = pair_weights(enc, options.min_pair_count) if options.reweight == "pair" else None
    sfit = fit_style_bt(enc, x, prior=prior, sample_weights=sw, reg=options.reg, features=feats)
    m = enc.n_models
    centre = np.eye(m) - 1.0 / m
    crit = analytic.Z95
    cov_full = sfit.cov
    if clustered is not None and (ci == "analytic" or (ci == "bootstrap" and not clustered.use_bootstrap)):
        g = clustered.groups
        cov_full = style_cluster_cov(enc, x, sfit, g.codes, g.n_clusters, sample_weights=sw, reg=options.reg)
        crit = clustered.critical
    se = np.sqrt(np.maximum(np.diag(cov_full), 0.0))
    table = pd.DataFrame({"feature": list(sfit.features), "coef": sfit.coef, "se": se[m:],
                          "ci_low": sfit.coef - crit * se[m:], "ci_high": sfit.coef + crit * se[m:]})
    if ci == "bootstrap" and (clustered is None or clustered.use_bootstrap):
        # Per-battle features cannot be aggregated into cells: each round reweights the battles
        # (multinomial counts; whole clusters when clustered) and refits; the fit is vectorised over battles.
        rng = np.random.default_rng(seed)
        if clustered is not None:
            c = clustered.groups.n_clusters
            draws = rng.multinomial(c, np.full(c, 1.0 / c), size=rounds)[:, clustered.groups.codes]
        else:
            n = len(enc)
            draws = rng.multinomial(n, np.full(n, 1.0 / n), size=rounds)
        samples = np.stack([fit_style_bt(enc, x, weights=d.astype(float), sample_weights=sw, reg=options.reg,
                                         prior=prior, features=feats).theta for d in draws])
        return _MethodFit(sfit.theta, samples=samples, style=table)
    cov = centre @ cov_full[:m, :m] @ centre if ci in ("analytic", "bootstrap") else None
    return _MethodFit(sfit.theta, cov=cov, style=table, critical=crit)


def _cluster_summary(enc: Encoded, cells: Cells, theta: np.ndarray, wins: np.ndarray, fit_wins: np.ndarray,
                     tie_m: np.ndarray, prior: float, groups: cluster.Clusters, clustered: _Clustered,
                     method: _MethodFit) -> cluster.ClusterSummary:
    """Design effect per model from the half-ties sandwich pair (clustered / independent width), whatever
    the estimator of the intervals: one definition for every method."""
    prior_wins = fit_wins - wins if prior else None
    half = method.nu is None and method.style is None
    th = theta if half else fit_bt(half_wins(fit_wins, tie_m))
    if half and not clustered.use_bootstrap and method.cov is not None:
        cov_c = method.cov  # the intervals' own covariance: the same estimator, already computed
    else:
        cov_c = cluster.cluster_sandwich_cov(enc, th, groups.codes, groups.n_clusters, prior_wins=prior_wins)
    cov_i = analytic.sandwich_cov_half(cells, th, prior_wins)
    se_c = np.sqrt(np.maximum(np.diag(cov_c), 0.0))
    se_i = np.sqrt(np.maximum(np.diag(cov_i), 0.0))
    deff = np.divide(se_c, se_i, out=np.full(len(se_c), np.nan), where=se_i > 0)
    used = "bootstrap" if clustered.use_bootstrap else "sandwich"
    return cluster.ClusterSummary(by=groups.by, column=groups.column, n_clusters=groups.n_clusters,
                                  missing=groups.missing, method=used, trustworthy=clustered.trustworthy,
                                  critical=method.critical if not clustered.use_bootstrap else float("nan"),
                                  design_effect=pd.DataFrame({"model": enc.models, "design_effect": deff,
                                                              "se": se_c * ELO_SCALE,
                                                              "se_independent": se_i * ELO_SCALE}))


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
               "analytic": "analytic-95 (" + ("fisher" if ties == "davidson" and not style_control
                                              else "sandwich") + ")"}
    clustering = _merge_clustering([f.clustering for f in fits], list(full["model"]))
    ci_method = ci_desc[ci]
    if clustering is not None:
        where = f"by {clustering.by}, {clustering.n_clusters} clusters"
        if clustering.method == "bootstrap":
            ci_method = f"cluster-bootstrap-percentile-95 ({rounds} rounds, {where})"
        elif clustering.trustworthy:
            ci_method = f"analytic-95 (cluster-robust sandwich, {where})"
        else:
            ci_method = (f"analytic-95 (cluster-robust sandwich, Student t on {clustering.n_clusters - 1} df, {where}: "
                         "too few clusters to trust)")
    cov = None
    if all(f.cov is not None for f in fits):
        pos = {m: i for i, m in enumerate(full["model"])}
        cov = np.full((len(pos), len(pos)), np.nan)
        for f in fits:
            ix = np.array([pos[m] for m in f.models])
            cov[np.ix_(ix, ix)] = f.cov
    return RatingResult(
        table=table, method=method, ci_method=ci_method, n_battles=len(enc), models=list(full["model"]),
        theta=full["_theta"].to_numpy(), wins=w_all[np.ix_(order, order)], ties=t_all[np.ix_(order, order)],
        component_of=full["component"].to_numpy(), nu=nus[0] if nus else None,
        style=style, excluded=excluded, components=comps, notes=notes, samples=samples, cov=cov,
        clustering=clustering,
    )


def _merge_clustering(parts: list[cluster.ClusterSummary | None], order: list[str]) -> cluster.ClusterSummary | None:
    """One summary over the components: the weakest component decides (fewest clusters, any fallback)."""
    got = [p for p in parts if p is not None]
    if not got:
        return None
    weakest = min(got, key=lambda p: p.n_clusters)
    deff = pd.concat([p.design_effect for p in got], ignore_index=True).set_index("model").loc[order].reset_index()
    return cluster.ClusterSummary(by=weakest.by, column=weakest.column, n_clusters=weakest.n_clusters,
                                  missing=sum(p.missing for p in got),
                                  method="bootstrap" if all(p.method == "bootstrap" for p in got) else "sandwich",
                                  trustworthy=all(p.trustworthy for p in got), critical=weakest.critical,
                                  design_effect=deff)

