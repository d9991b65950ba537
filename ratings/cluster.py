"""Uncertainty that admits dependence: votes that share a prompt (or a voter) are not independent.

An arena with a few hundred prompts collects many votes per prompt, and a prompt that favours one model
favours it in every one of its battles; a voter's taste repeats across that voter's votes. Treating such
votes as independent understates the noise. Two estimators of the covariance of half-ties Bradley-Terry
log-strengths admit it, both grouping battles into clusters (a prompt id or a voter id):

- the cluster-robust sandwich (Liang & Zeger 1986; the CR1 estimator of Cameron & Miller 2015, "A
  Practitioner's Guide to Cluster-Robust Inference", J. Human Resources 50(2)): A^-1 B A^-1 with A the
  information and the "meat" summed per cluster, B = C/(C-1) * sum_c g_c g_c^T, g_c = sum over the
  cluster's battles of (y - p)(e_a - e_b). With one battle per cluster it is the plain sandwich;
- the cluster bootstrap (the "pairs cluster bootstrap" of Cameron, Gelbach & Miller 2008, REStat 90(3)):
  draw C clusters with replacement and refit. On aggregated counts a round is "cluster multiplicities
  [C] @ cluster-by-cell counts [C, cells]", so every round still is one batched Newton solve on cell
  counts (see ratings.bootstrap.fit_rounds).

The design effect of a model is its clustered CI width over its independent CI width, both from the
sandwich (Kish's deff is the square of it). With fewer than MIN_CLUSTERS clusters neither estimator can be
trusted (Cameron, Gelbach & Miller 2008): the bootstrap falls back to the CR1 sandwich with Student-t
quantiles on C - 1 degrees of freedom, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from ratings import analytic, graph
from ratings.bootstrap import CI_LEVEL, fit_rounds, percentile_ci
from ratings.bt import ELO_SCALE, fit_bt, half_wins, sigmoid, to_elo, with_prior
from ratings.encode import A_WINS, B_WINS, Cells, Encoded, battle_cells, cell_matrices, encode

CLUSTER_BY = ("prompt", "voter", "none")
# Where each kind of cluster id lives: our store's column first, then the Chatbot Arena / MT-bench name.
CLUSTER_COLUMNS: dict[str, tuple[str, ...]] = {"prompt": ("prompt_id", "question_id"), "voter": ("voter", "judge")}
MIN_CLUSTERS = 20
DENSE_LIMIT = 20_000_000  # cluster-by-model or cluster-by-cell tables up to this size are built dense


class ClusterError(ValueError):
    """A clustering that the battles cannot support (no such ids in the data, unknown kind, one cluster)."""


@dataclass(frozen=True)
class Clusters:
    """Per battle, the integer id of its cluster (0..n_clusters-1)."""

    by: str  # "prompt" | "voter"
    column: str  # the column the ids came from
    codes: np.ndarray  # int64 [n]
    n_clusters: int
    missing: int  # battles without an id: each one is a cluster of its own


@dataclass(frozen=True)
class ClusterSummary:
    """What rate(cluster_by=...) clustered and what it cost: the design effect per model."""

    by: str
    column: str
    n_clusters: int
    missing: int
    method: str  # "bootstrap" | "sandwich" (the few-clusters fallback, or analytic CIs)
    trustworthy: bool
    critical: float  # the sandwich interval's quantile (NaN for the bootstrap)
    design_effect: pd.DataFrame  # model, design_effect (clustered / independent width), se, se_independent (Elo)


@dataclass
class ClusteredCI:
    """Clustered intervals beside the independent ones. ``table`` is best first."""

    table: pd.DataFrame  # model, rating, ci_low, ci_high, se, ci_low_independent, ci_high_independent, design_effect
    by: str
    column: str
    n_clusters: int
    n_battles: int
    method: str  # what produced ci_low/ci_high: "sandwich" | "bootstrap"
    requested: str  # what was asked for
    trustworthy: bool  # False with fewer than MIN_CLUSTERS clusters
    critical: float  # the quantile the sandwich interval used (normal, or Student t on C - 1 df)
    cov: np.ndarray  # [M, M] clustered sandwich covariance of the log-strengths, table order
    samples: pd.DataFrame | None = None  # [rounds x models] cluster-bootstrap ratings (Elo), table order
    notes: list[str] = field(default_factory=list)


def default_cluster(battles: pd.DataFrame) -> str:
    """"prompt" when the battles carry prompt ids, else "none": the safe default for --cluster."""
    for col in CLUSTER_COLUMNS["prompt"]:
        if col in battles.columns and battles[col].notna().any():
            return "prompt"
    return "none"


def cluster_ids(battles: pd.DataFrame, by: str) -> Clusters:
    """The clusters of ``by`` ("prompt" | "voter"), from the first of its columns that has any id.

    Raises :class:`ClusterError` when no such column carries an id, naming the columns looked for.
    """
    if by not in CLUSTER_COLUMNS:
        raise ClusterError(f"unknown cluster kind {by!r}; expected one of {', '.join(CLUSTER_BY)}")
    for col in CLUSTER_COLUMNS[by]:
        if col not in battles.columns:
            continue
        values = battles[col]
        present = values.notna().to_numpy()
        if not present.any():
            continue
        codes, uniq = pd.factorize(values.astype(str).where(present, None), use_na_sentinel=True)
        codes = codes.astype(np.int64)
        n_ids = len(uniq)
        missing = codes < 0
        # A battle without an id shares nothing known with any other: a singleton cluster.
        codes[missing] = n_ids + np.arange(int(missing.sum()))
        return Clusters(by=by, column=col, codes=codes, n_clusters=n_ids + int(missing.sum()),
                        missing=int(missing.sum()))
    looked = " or ".join(repr(c) for c in CLUSTER_COLUMNS[by])
    raise ClusterError(f"--cluster {by} needs {by} ids, but the battles have no {looked} column with a value; "
                       "use --cluster none")


def battle_residuals(enc: Encoded, theta: np.ndarray) -> np.ndarray:
    """Per battle, y - p from model_a's side: the half-ties BT score is this times (e_a - e_b)."""
    y = np.where(enc.outcome == A_WINS, 1.0, np.where(enc.outcome == B_WINS, 0.0, 0.5))
    return y - sigmoid(theta[enc.a] - theta[enc.b])


def cluster_score_sums(enc: Encoded, theta: np.ndarray, codes: np.ndarray, n_clusters: int):
    """[C, M] per-cluster score sums g_c (a battle adds r to model_a and -r to model_b): a dense array for a
    few hundred prompts, a sparse matrix for many voters."""
    r = battle_residuals(enc, theta)
    m = enc.n_models
    if n_clusters * m <= DENSE_LIMIT:
        flat = (np.bincount(codes * m + enc.a, weights=r, minlength=n_clusters * m)
                - np.bincount(codes * m + enc.b, weights=r, minlength=n_clusters * m))
        return flat.reshape(n_clusters, m)
    from scipy.sparse import coo_matrix

    rows = np.concatenate([codes, codes])
    cols = np.concatenate([enc.a, enc.b])
    return coo_matrix((np.concatenate([r, -r]), (rows, cols)), shape=(n_clusters, enc.n_models)).tocsr()


def cluster_sandwich_cov(enc: Encoded, theta: np.ndarray, codes: np.ndarray, n_clusters: int, *,
                         prior_wins: np.ndarray | None = None, small_sample: bool = True) -> np.ndarray:
    """[M, M] cluster-robust (CR1) sandwich covariance of mean-zero half-ties BT log-strengths.

    ``codes``: per battle cluster id in 0..n_clusters-1. ``prior_wins``: as in
    :func:`ratings.analytic.sandwich_cov_half`, virtual battles that add information and no noise.
    ``small_sample`` multiplies the meat by C / (C - 1) (CR1).
    """
    m = enc.n_models
    p = sigmoid(theta[enc.a] - theta[enc.b])
    info_w = np.bincount(enc.a * m + enc.b, weights=p * (1.0 - p), minlength=m * m).reshape(m, m)
    info_w = info_w + info_w.T
    if prior_wins is not None:
        n_prior = prior_wins + prior_wins.T
        pp = sigmoid(theta[:, None] - theta[None, :])
        info_w = info_w + n_prior * pp * (1.0 - pp)
    a_inv = analytic._pinv_centred(analytic._laplacian(info_w))
    g = cluster_score_sums(enc, theta, codes, n_clusters)
    meat = g.T @ g
    meat = np.asarray(meat.todense()) if hasattr(meat, "todense") else meat
    if small_sample and n_clusters > 1:
        meat *= n_clusters / (n_clusters - 1.0)
    return a_inv @ meat @ a_inv


def cluster_cell_counts(cell_of: np.ndarray, codes: np.ndarray, n_clusters: int, n_cells: int):
    """[C, cells] battle counts of each cluster in each cell (dense when small, else sparse)."""
    if n_clusters * n_cells <= DENSE_LIMIT:
        return np.bincount(codes * n_cells + cell_of, minlength=n_clusters * n_cells).reshape(
            n_clusters, n_cells).astype(np.float64)
    from scipy.sparse import coo_matrix

    ones = np.ones(len(cell_of))
    return coo_matrix((ones, (codes, cell_of)), shape=(n_clusters, n_cells)).tocsr()


def resample_cluster_counts(per_cluster, rounds: int, seed: int) -> np.ndarray:
    """[rounds, cells] cell counts, each row the battles of C clusters drawn with replacement."""
    rng = np.random.default_rng(seed)
    c = per_cluster.shape[0]
    mult = rng.multinomial(c, np.full(c, 1.0 / c), size=rounds).astype(np.float64)  # [R, C]
    if isinstance(per_cluster, np.ndarray):
        return mult @ per_cluster
    return np.asarray((per_cluster.T @ mult.T).T)


def cluster_bootstrap_theta(cells: Cells, cell_of: np.ndarray, codes: np.ndarray, n_clusters: int,
                            theta_hat: np.ndarray, *, rounds: int, seed: int, ties: str = "half",
                            prior: float = 0.0, s_hat: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """[rounds, M] log-strengths from whole-cluster resamples (and log-nu per round for Davidson).

    A round can leave a model without battles or unbeaten; ``prior`` (virtual ties) keeps such rounds
    finite, as in the battle bootstrap.
    """
    per_cluster = cluster_cell_counts(cell_of, codes, n_clusters, len(cells.count))
    counts = resample_cluster_counts(per_cluster, rounds, seed)
    return fit_rounds(cells, counts, theta_hat, ties=ties, prior=prior, s_hat=s_hat)


def critical_value(n_clusters: int, level: float = CI_LEVEL) -> float:
    """Normal quantile with MIN_CLUSTERS clusters or more, else Student t on C - 1 degrees of freedom."""
    if n_clusters >= MIN_CLUSTERS:
        return float(NormalDist().inv_cdf(0.5 + level / 2.0))
    from scipy import stats  # only on the few-clusters path: scipy.stats costs ~0.4 s to import

    return float(stats.t.ppf(0.5 + level / 2.0, max(n_clusters - 1, 1)))


def few_clusters_note(clusters: Clusters, method: str) -> str:
    what = "the cluster bootstrap is" if method == "bootstrap" else "cluster-robust intervals are"
    fallback = (" falling back to the cluster-robust sandwich with Student-t quantiles on "
                f"{clusters.n_clusters - 1} degrees of freedom" if method == "bootstrap" else
                f" using Student-t quantiles on {clusters.n_clusters - 1} degrees of freedom")
    return (f"WARNING: only {clusters.n_clusters} {clusters.by} clusters (fewer than {MIN_CLUSTERS}): {what} not "
            f"trustworthy;{fallback}")


def clustered_ci(battles: pd.DataFrame, *, by: str = "prompt", method: str = "sandwich", rounds: int = 100,
                 seed: int = 0, prior: float = 1.0) -> ClusteredCI:
    """Half-ties BT ratings with cluster-robust 95% intervals beside the independent ones.

    by: "prompt" | "voter" (see :data:`CLUSTER_COLUMNS`). method: "sandwich" | "bootstrap" (``rounds``
    whole-cluster resamples, seeded). ``prior`` virtual tied battles per compared pair are added only when the
    plain MLE does not exist (as in :func:`ratings.leaderboard.rate`). Needs a connected comparison graph.
    """
    if method not in ("sandwich", "bootstrap"):
        raise ValueError(f"unknown clustered CI method {method!r}; expected sandwich or bootstrap")
    if method == "bootstrap" and rounds <= 0:
        raise ValueError("the cluster bootstrap needs rounds > 0")
    if len(battles) == 0:
        raise ValueError("no battles to rate")
    clusters = cluster_ids(battles, by)
    enc = encode(battles)
    cells, cell_of = battle_cells(enc)
    wins, ties = cell_matrices(cells)
    comps = graph.components(wins + wins.T + ties, enc.models)
    if len(comps) > 1:
        raise ValueError(f"the comparison graph has {len(comps)} components; rate each on its own")
    notes: list[str] = []
    use_prior = 0.0 if graph.mle_exists(wins, ties) else prior
    if not graph.mle_exists(wins, ties):
        if prior <= 0:
            raise ValueError("the maximum-likelihood ratings do not exist; pass a positive prior")
        notes.append(f"a prior of {prior:g} virtual tied battle(s) per compared pair keeps the ratings finite")
    fit_wins = with_prior(wins, ties, use_prior) if use_prior else wins
    theta = fit_bt(half_wins(fit_wins, ties))
    prior_wins = fit_wins - wins if use_prior else None

    if clusters.n_clusters < 2:
        raise ClusterError(f"all battles share one {by} cluster: clustered intervals need at least 2")
    cov_ind = analytic.sandwich_cov_half(cells, theta, prior_wins)
    cov = cluster_sandwich_cov(enc, theta, clusters.codes, clusters.n_clusters, prior_wins=prior_wins)
    if clusters.missing:
        notes.append(f"{clusters.missing} battle(s) without a {by} id count as clusters of their own")
    trustworthy = clusters.n_clusters >= MIN_CLUSTERS
    crit = critical_value(clusters.n_clusters)
    used = method
    samples = None
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    se_ind = np.sqrt(np.maximum(np.diag(cov_ind), 0.0))
    lo_t, hi_t = theta - crit * se, theta + crit * se
    if not trustworthy:
        notes.append(few_clusters_note(clusters, method))
        used = "sandwich"
    elif method == "bootstrap":
        samples_t, _ = cluster_bootstrap_theta(cells, cell_of, clusters.codes, clusters.n_clusters, theta,
                                               rounds=rounds, seed=seed, prior=prior)
        samples = to_elo(samples_t)
        lo, hi = percentile_ci(samples)
    rating = to_elo(theta)
    if samples is None:
        lo, hi = to_elo(lo_t), to_elo(hi_t)
    lo_i, hi_i = to_elo(theta - analytic.Z95 * se_ind), to_elo(theta + analytic.Z95 * se_ind)
    deff = np.divide(se, se_ind, out=np.full(len(se), np.nan), where=se_ind > 0)
    table = pd.DataFrame({"model": enc.models, "rating": rating, "ci_low": lo, "ci_high": hi,
                          "se": se * ELO_SCALE,
                          "ci_low_independent": lo_i, "ci_high_independent": hi_i, "design_effect": deff})
    order = np.lexsort((table["model"].to_numpy(), -rating))
    table = table.iloc[order].reset_index(drop=True)
    sample_frame = None
    if samples is not None:
        sample_frame = pd.DataFrame(samples[:, order], columns=list(table["model"]))
    return ClusteredCI(table=table, by=by, column=clusters.column, n_clusters=clusters.n_clusters,
                       n_battles=len(enc), method=used, requested=method, trustworthy=trustworthy, critical=crit,
                       cov=cov[np.ix_(order, order)], samples=sample_frame, notes=notes)
