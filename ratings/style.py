"""Style control: a contextual Bradley-Terry model with answer-style differences as extra features.

Same idea as Chatbot Arena's style control (length and markdown: headers, lists, bold), plus two features
that matter for code answers and that no arena controls for yet: the number of fenced code blocks and the
number of code lines. Each feature enters as the normalised difference (a - b) / (a + b), standardised over
the battles, so a coefficient reads "log-odds per standard deviation of style advantage". The model ratings
that come out are the ratings with style held equal.

Continuous features rule out aggregation into pair counts, so this fit is per battle, but vectorised: each
Newton step is a few bincounts and one (M + F) linear solve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ratings.bt import sigmoid
from ratings.encode import A_WINS, B_WINS, Encoded

STYLE_FEATURES: tuple[str, ...] = ("tokens", "headers", "lists", "bold", "code_blocks", "code_lines")

_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADER = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


class StyleError(ValueError):
    """Style control cannot run on these battles (answers missing)."""


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


def style_columns(battles: pd.DataFrame) -> pd.DataFrame:
    """[n, 2F] style counts: precomputed ``<feature>_a/_b`` columns if all present, else from the answers."""
    pre = [f"{f}_{s}" for f in STYLE_FEATURES for s in ("a", "b")]
    if all(c in battles.columns for c in pre):
        return battles[pre].astype(float).reset_index(drop=True)
    for col in ("answer_a", "answer_b"):
        if col not in battles.columns:
            raise StyleError(
                f"style control needs the answers: column {col!r} is missing (or precomputed columns "
                f"{', '.join(pre)})"
            )
    missing = battles["answer_a"].isna() | battles["answer_b"].isna()
    if missing.any():
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise StyleError(f"style control needs the answers: {int(missing.sum())} of {len(battles)} battles have no "
                         f"answer_a/answer_b text (first: row {i})")
    out = {}
    for side in ("a", "b"):
        counts = pd.DataFrame([answer_style(t) for t in battles[f"answer_{side}"]])
        for f in STYLE_FEATURES:
            out[f"{f}_{side}"] = counts[f].to_numpy(dtype=float)
    return pd.DataFrame(out)[pre]


def style_features(columns: pd.DataFrame) -> np.ndarray:
    """[n, F] standardised normalised differences (a - b) / (a + b); a feature with no spread stays 0."""
    feats = []
    for f in STYLE_FEATURES:
        a = columns[f"{f}_a"].to_numpy(dtype=float)
        b = columns[f"{f}_b"].to_numpy(dtype=float)
        s = a + b
        diff = np.divide(a - b, s, out=np.zeros_like(s), where=s > 0)
        sd = diff.std()
        feats.append((diff - diff.mean()) / sd if sd > 0 else np.zeros_like(diff))
    return np.column_stack(feats)


def fit_style_bt(enc: Encoded, x: np.ndarray, *, weights: np.ndarray | None = None, prior: float = 0.0,
                 max_iter: int = 50, tol: float = 1e-10) -> StyleFit:
    """Newton's method on sum_k w_k [y_k log p_k + (1 - y_k) log(1 - p_k)], p_k = sigma(theta_a - theta_b + x_k.beta).

    Ties (and both-bad) are y = 0.5, the half-ties convention. ``prior`` adds that many virtual tied
    battles (no style difference) to every compared pair, as in the plain fit.
    """
    m, f = enc.n_models, x.shape[1]
    a, b = enc.a, enc.b
    y = np.where(enc.outcome == A_WINS, 1.0, np.where(enc.outcome == B_WINS, 0.0, 0.5))
    w = np.ones(len(a)) if weights is None else weights.astype(float)
    if prior > 0:
        pairs = np.unique(np.minimum(a, b) * m + np.maximum(a, b))
        pa, pb = np.divmod(pairs, m)
        a, b = np.concatenate([a, pa]), np.concatenate([b, pb])
        y = np.concatenate([y, np.full(len(pa), 0.5)])
        w = np.concatenate([w, np.full(len(pa), prior)])
        x = np.vstack([x, np.zeros((len(pa), f))])
    theta, beta = np.zeros(m), np.zeros(f)
    for _ in range(max_iter):
        info, grad, _ = _newton_parts(a, b, x, y, w, theta, beta, m)
        step = np.linalg.solve(info, grad)
        big = float(np.abs(step).max())
        step *= min(1.0, 2.0 / max(big, 1e-300))
        theta += step[:m]
        beta += step[m:]
        if big < tol:
            break
    theta -= theta.mean()
    info, _, meat = _newton_parts(a, b, x, y, w, theta, beta, m)
    inv = np.linalg.inv(info)
    cov = inv @ meat @ inv
    return StyleFit(theta=theta, coef=beta, se=np.sqrt(np.maximum(np.diag(cov), 0.0)), features=STYLE_FEATURES,
                    cov=cov)


def _newton_parts(a: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, theta: np.ndarray,
                  beta: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Information (+ all-ones on the theta block), gradient, and the sandwich "meat", without a design matrix."""
    p = sigmoid(theta[a] - theta[b] + x @ beta)
    r = w * (y - p)
    v = w * p * (1.0 - p)
    grad = np.concatenate([np.bincount(a, r, m) - np.bincount(b, r, m), x.T @ r])
    info = _blocks(a, b, x, v, m)
    info[:m, :m] += 1.0
    info += 1e-9 * np.eye(len(info))  # a feature with no spread (all zeros) stays at 0 instead of singular
    meat = _blocks(a, b, x, w * (y - p) ** 2, m)
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
