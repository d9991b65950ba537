"""Style control: a contextual Bradley-Terry model with answer-style differences as extra features.

Same idea as Chatbot Arena's style control (length and markdown: headers, lists, bold), plus two features
that matter for code answers and that no arena controls for yet: the number of fenced code blocks and the
number of code lines. Each feature enters as the normalised difference (a - b) / (a + b), standardised over
the battles, so a coefficient reads "log-odds per standard deviation of style advantage". The model ratings
that come out are the ratings with style held equal.

Continuous features rule out aggregation into pair counts, so this fit is per battle, but vectorised: each
Newton step is a few bincounts and one (M + F) linear solve.

Style counts come from, per feature, the first source that has them: our ``<feature>_a/_b`` columns;
Chatbot Arena's per-battle ``conv_metadata`` (``sum_assistant_a_tokens``, ``header_count_a``,
``list_count_a``, ``bold_count_a`` and the _b ones; a dict of counts is summed) or per-answer
``conv_metadata_a/_b`` (Arena-Hard's answer files: ``token_len``, ``header_count``, ...); the answer texts.

:class:`StyleOptions` chooses the features and LMArena's published settings (``LMARENA_STYLE``, as in
lmarena/arena-rank's ContextualBradleyTerry and FastChat's style control): loss -mean(w * loglik) +
0.5 * reg * ||coef||^2 with reg 1.0, battle weights 1 / max(n_pair, 50) normalised to mean 1 (inverse
pair-count reweighting), and differences (a - b) / (a + b + 1). The default stays the unpenalised,
unweighted fit of all six features. Penalised coefficients are shrunk towards 0, and so are their
intervals: they are the intervals of the penalised estimator, not of the unpenalised one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ratings.bt import sigmoid
from ratings.encode import A_WINS, B_WINS, Encoded

STYLE_FEATURES: tuple[str, ...] = ("tokens", "headers", "lists", "bold", "code_blocks", "code_lines")
LMARENA_FEATURES: tuple[str, ...] = ("tokens", "headers", "lists", "bold")
# Chatbot Arena battle metadata (one dict per battle) and Arena-Hard answer metadata (one dict per answer).
BATTLE_METADATA_KEYS = {"tokens": "sum_assistant_{side}_tokens", "headers": "header_count_{side}",
                        "lists": "list_count_{side}", "bold": "bold_count_{side}"}
ANSWER_METADATA_KEYS = {"tokens": "token_len", "headers": "header_count", "lists": "list_count",
                        "bold": "bold_count"}
REWEIGHTS = ("none", "pair")

_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADER = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


class StyleError(ValueError):
    """Style control cannot run on these battles (answers missing)."""


@dataclass(frozen=True)
class StyleOptions:
    """Which style features, and how the style-controlled fit is penalised and weighted."""

    features: tuple[str, ...] = STYLE_FEATURES
    reg: float = 0.0  # L2 penalty on the style coefficients (LMArena: 1.0)
    reweight: str = "none"  # "pair": weight 1 / max(n_pair, min_pair_count), normalised to mean 1
    min_pair_count: int = 50
    add_one: bool = False  # normalise differences by (a + b + 1), as FastChat/LMArena, instead of (a + b)

    def __post_init__(self) -> None:
        unknown = [f for f in self.features if f not in STYLE_FEATURES]
        if unknown or not self.features:
            raise StyleError(f"unknown style feature(s) {', '.join(unknown) or '(none given)'}; choose from "
                             f"{', '.join(STYLE_FEATURES)}")
        if len(set(self.features)) != len(self.features):
            raise StyleError(f"style features repeat: {', '.join(self.features)}")
        if self.reg < 0:
            raise StyleError(f"the style penalty must be >= 0, got {self.reg}")
        if self.reweight not in REWEIGHTS:
            raise StyleError(f"unknown style reweighting {self.reweight!r}; expected one of {', '.join(REWEIGHTS)}")


LMARENA_STYLE = StyleOptions(features=LMARENA_FEATURES, reg=1.0, reweight="pair", add_one=True)


@dataclass(frozen=True)
class StyleFit:
    theta: np.ndarray  # [M] mean-zero log-strengths with style held equal
    coef: np.ndarray  # [F] log-odds per standard deviation of each standardised feature
    se: np.ndarray  # [M + F] sandwich standard errors (theta first)
    features: tuple[str, ...]
    cov: np.ndarray  # [M + F, M + F]


def answer_style(text: str | None) -> dict[str, int]:
    """Style counts of one answer. Tokens are word/punctuation pieces (no tokenizer dependency)."""
    text = text or ""
    blocks = _FENCE.findall(text)
    code_lines = sum(max(m.group(0).count("\n") - 1, 0) for m in _FENCE.finditer(text))
    prose = _FENCE.sub("", text)
    return {
        "tokens": len(_TOKEN.findall(text)),
        "headers": len(_HEADER.findall(prose)),
        "lists": len(_LIST.findall(prose)),
        "bold": len(_BOLD.findall(prose)),
        "code_blocks": len(blocks),
        "code_lines": code_lines,
    }


def style_columns(battles: pd.DataFrame, features: Sequence[str] = STYLE_FEATURES) -> pd.DataFrame:
    """[n, 2F] style counts ``<feature>_a, <feature>_b`` per feature, each from the first source that has it
    (precomputed columns, conv_metadata, conv_metadata_a/_b, the answers; see the module docstring)."""
    out: dict[str, np.ndarray] = {}
    battle_meta = _metadata(battles, "conv_metadata")
    answer_meta = {side: _metadata(battles, f"conv_metadata_{side}") for side in ("a", "b")}
    need_answers = []
    for f in features:
        pre = (f"{f}_a", f"{f}_b")
        if all(c in battles.columns for c in pre):
            for c in pre:
                out[c] = battles[c].to_numpy(dtype=float)
            continue
        got = None
        if battle_meta is not None and f in BATTLE_METADATA_KEYS:
            got = [_meta_counts(battle_meta, BATTLE_METADATA_KEYS[f].format(side=side)) for side in ("a", "b")]
        if (got is None or any(np.isnan(g).any() for g in got)) and f in ANSWER_METADATA_KEYS and all(
                m is not None for m in answer_meta.values()):
            got = [_meta_counts(answer_meta[side], ANSWER_METADATA_KEYS[f]) for side in ("a", "b")]
        if got is not None and not any(np.isnan(g).any() for g in got):
            out[f"{f}_a"], out[f"{f}_b"] = got
        else:
            need_answers.append(f)
    if need_answers:
        counts = _answer_counts(battles, need_answers)
        out.update(counts)
    cols = [f"{f}_{side}" for f in features for side in ("a", "b")]
    return pd.DataFrame({c: out[c] for c in cols})


def _metadata(battles: pd.DataFrame, column: str) -> list | None:
    """A metadata column as a list of dicts (JSON text parsed), or None when absent."""
    if column not in battles.columns:
        return None
    from votes.files import parse_json

    rows = []
    for v in battles[column]:
        if isinstance(v, str):
            try:
                v = parse_json(v, column)
            except ValueError:
                v = None
        rows.append(v if isinstance(v, dict) else None)
    return rows


def _meta_counts(rows: list, key: str) -> np.ndarray:
    """Per row, the count under ``key`` (a dict of counts is summed: h1..h6, ordered/unordered); NaN if absent."""

    def one(meta: dict | None) -> float:
        if meta is None or key not in meta or meta[key] is None:
            return np.nan
        v = meta[key]
        return float(sum(v.values())) if isinstance(v, dict) else float(v)

    return np.array([one(m) for m in rows], dtype=float)


def _answer_counts(battles: pd.DataFrame, features: list[str]) -> dict[str, np.ndarray]:
    pre = ", ".join(f"{f}_{s}" for f in features for s in ("a", "b"))
    for col in ("answer_a", "answer_b"):
        if col not in battles.columns:
            raise StyleError(
                f"style control needs the answers: column {col!r} is missing (or precomputed columns {pre}, or "
                f"conv_metadata style counts)"
            )
    missing = battles["answer_a"].isna() | battles["answer_b"].isna()
    if missing.any():
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise StyleError(f"style control needs the answers: {int(missing.sum())} of {len(battles)} battles have no "
                         f"answer_a/answer_b text (first: row {i})")
    out = {}
    for side in ("a", "b"):
        counts = pd.DataFrame([answer_style(t) for t in battles[f"answer_{side}"]])
        for f in features:
            out[f"{f}_{side}"] = counts[f].to_numpy(dtype=float)
    return out


def style_features(columns: pd.DataFrame, features: Sequence[str] = STYLE_FEATURES, *,
                   add_one: bool = False) -> np.ndarray:
    """[n, F] standardised normalised differences (a - b) / (a + b) (``add_one``: / (a + b + 1), as
    FastChat/LMArena); a feature with no spread stays 0."""
    feats = []
    for f in features:
        a = columns[f"{f}_a"].to_numpy(dtype=float)
        b = columns[f"{f}_b"].to_numpy(dtype=float)
        s = a + b + (1.0 if add_one else 0.0)
        diff = np.divide(a - b, s, out=np.zeros_like(s), where=s > 0)
        sd = diff.std()
        feats.append((diff - diff.mean()) / sd if sd > 0 else np.zeros_like(diff))
    return np.column_stack(feats)


def pair_weights(enc: Encoded, min_pair_count: int = 50) -> np.ndarray:
    """Per battle 1 / max(battles of its pair, min_pair_count), normalised to mean 1: every pair counts about
    the same however often the sampler chose it (LMArena's inverse pair-count reweighting)."""
    m = enc.n_models
    key = np.minimum(enc.a, enc.b) * m + np.maximum(enc.a, enc.b)
    n_pair = np.bincount(key, minlength=m * m)[key].astype(float)
    w = 1.0 / np.maximum(n_pair, float(min_pair_count))
    return w / w.mean()


def fit_style_bt(enc: Encoded, x: np.ndarray, *, weights: np.ndarray | None = None,
                 sample_weights: np.ndarray | None = None, reg: float = 0.0, prior: float = 0.0,
                 features: Sequence[str] | None = None, max_iter: int = 50, tol: float = 1e-10) -> StyleFit:
    """Newton's method on sum_k w_k [y_k log p_k + (1 - y_k) log(1 - p_k)] - 0.5 * reg * W * ||beta||^2,
    p_k = sigma(theta_a - theta_b + x_k.beta), W = sum_k w_k: the mean-loss-plus-penalty objective scaled by W.

    ``weights``: frequency weights (a bootstrap's multinomial counts); ``sample_weights``: importance weights
    such as :func:`pair_weights`; w = their product. The sandwich treats them as what they are (the meat
    has frequency * sample^2) and, with a penalty, is the penalised M-estimator's (penalty in the
    information, the penalty's share taken out of the meat). Ties (and both-bad) are y = 0.5, the half-ties
    convention. ``prior`` adds that many virtual tied battles (no style difference) to every compared pair,
    as in the plain fit. ``features``: the names of x's columns (default: all STYLE_FEATURES).
    """
    m, f = enc.n_models, x.shape[1]
    names = tuple(features) if features is not None else STYLE_FEATURES
    if len(names) != f:
        raise ValueError(f"{f} style feature columns but {len(names)} feature names")
    a, b = enc.a, enc.b
    y = np.where(enc.outcome == A_WINS, 1.0, np.where(enc.outcome == B_WINS, 0.0, 0.5))
    freq = np.ones(len(a)) if weights is None else weights.astype(float)
    samp = np.ones(len(a)) if sample_weights is None else sample_weights.astype(float)
    n_real = float(freq.sum())
    total_w = float((freq * samp).sum())
    if prior > 0:
        pairs = np.unique(np.minimum(a, b) * m + np.maximum(a, b))
        pa, pb = np.divmod(pairs, m)
        a, b = np.concatenate([a, pa]), np.concatenate([b, pb])
        y = np.concatenate([y, np.full(len(pa), 0.5)])
        freq = np.concatenate([freq, np.full(len(pa), prior)])
        samp = np.concatenate([samp, np.ones(len(pa))])
        x = np.vstack([x, np.zeros((len(pa), f))])
    w = freq * samp
    penalty = reg * total_w
    theta, beta = np.zeros(m), np.zeros(f)
    for _ in range(max_iter):
        info, grad, _ = _newton_parts(a, b, x, y, w, theta, beta, m)
        if penalty:
            grad[m:] -= penalty * beta
            info[m:, m:] += penalty * np.eye(f)
        step = np.linalg.solve(info, grad)
        big = float(np.abs(step).max())
        step *= min(1.0, 2.0 / max(big, 1e-300))
        theta += step[:m]
        beta += step[m:]
        if big < tol:
            break
    theta -= theta.mean()
    info, _, meat = _newton_parts(a, b, x, y, w, theta, beta, m, meat_weights=freq * samp * samp)
    if penalty:
        info[m:, m:] += penalty * np.eye(f)
        meat[m:, m:] -= np.outer(beta, beta) * penalty**2 / max(n_real, 1.0)
    inv = np.linalg.inv(info)
    cov = inv @ meat @ inv
    return StyleFit(theta=theta, coef=beta, se=np.sqrt(np.maximum(np.diag(cov), 0.0)), features=names, cov=cov)


def _newton_parts(a: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, theta: np.ndarray,
                  beta: np.ndarray, m: int, meat_weights: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Information (+ all-ones on the theta block), gradient, and the sandwich "meat", without a design matrix."""
    p = sigmoid(theta[a] - theta[b] + x @ beta)
    r = w * (y - p)
    v = w * p * (1.0 - p)
    grad = np.concatenate([np.bincount(a, r, m) - np.bincount(b, r, m), x.T @ r])
    info = _blocks(a, b, x, v, m)
    info[:m, :m] += 1.0
    info += 1e-9 * np.eye(len(info))  # a feature with no spread (all zeros) stays at 0 instead of singular
    meat = _blocks(a, b, x, (w if meat_weights is None else meat_weights) * (y - p) ** 2, m)
    return info, grad, meat


def _blocks(a: np.ndarray, b: np.ndarray, x: np.ndarray, v: np.ndarray, m: int) -> np.ndarray:
    """sum_k v_k z_k z_k^T for z_k = [e_a - e_b, x_k], assembled from bincounts."""
    f = x.shape[1]
    pair = np.bincount(a * m + b, v, m * m).reshape(m, m)
    pair = pair + pair.T
    out = np.zeros((m + f, m + f))
    out[:m, :m] = np.diag(pair.sum(axis=1)) - pair
    vx = v[:, None] * x
    cross = np.stack([np.bincount(a, vx[:, j], m) - np.bincount(b, vx[:, j], m) for j in range(f)], axis=1)
    out[:m, m:] = cross
    out[m:, :m] = cross.T
    out[m:, m:] = x.T @ vx
    return out


def style_cluster_cov(enc: Encoded, x: np.ndarray, fit: StyleFit, codes: np.ndarray, n_clusters: int, *,
                      sample_weights: np.ndarray | None = None, reg: float = 0.0) -> np.ndarray:
    """[M + F, M + F] cluster-robust (CR1) sandwich of a style fit: the meat summed over clusters of the
    per-battle scores (with a penalty, each cluster's share of it taken out, as in the plain sandwich)."""
    m, f = enc.n_models, x.shape[1]
    y = np.where(enc.outcome == A_WINS, 1.0, np.where(enc.outcome == B_WINS, 0.0, 0.5))
    w = np.ones(len(y)) if sample_weights is None else sample_weights
    p = sigmoid(fit.theta[enc.a] - fit.theta[enc.b] + x @ fit.coef)
    r = w * (y - p)
    g = np.zeros((n_clusters, m + f))
    np.add.at(g, (codes, enc.a), r)
    np.add.at(g, (codes, enc.b), -r)
    for j in range(f):
        g[:, m + j] = np.bincount(codes, weights=r * x[:, j], minlength=n_clusters)
    if reg:
        share = np.bincount(codes, minlength=n_clusters) / len(y)
        g[:, m:] -= share[:, None] * (reg * w.sum()) * fit.coef[None, :]
    meat = g.T @ g * (n_clusters / (n_clusters - 1.0))
    info = _blocks(enc.a, enc.b, x, w * p * (1.0 - p), m)
    info[:m, :m] += 1.0
    info += 1e-9 * np.eye(m + f)
    if reg:
        info[m:, m:] += reg * w.sum() * np.eye(f)
    inv = np.linalg.inv(info)
    return inv @ meat @ inv
