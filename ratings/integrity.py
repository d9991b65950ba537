"""Vote integrity: per-voter caps, anomalous voters, repeated prompts. Flags with evidence, never deletions.

Each check returns what it flagged, the evidence, and ``keep``: a boolean mask over the battles it was
given (True = the vote counts). Nothing is removed here; :func:`apply_audit` applies chosen masks and
says how many votes each rule removed.

- :func:`cap_votes_per_voter`: at most K votes per voter per UTC day count, the first K in time order (as
  FastChat's ``limit_user_votes`` in fastchat/serve/monitor/elo_analysis.py, which keeps each judge's first
  K rows of each date).
- :func:`anomalous_voters`: a sequential test of each voter's votes, in time order, against the model
  fitted *without* that voter (leave-one-voter-out), see its docstring.
- :func:`dedup_prompts`: prompts repeated far beyond the rest (exact or normalised text) are capped to a
  seeded random sample, as LMArena's de-duplication keeps a sample of over-frequent prompts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ratings import analytic, graph
from ratings.bootstrap import fit_rounds
from ratings.bt import fit_bt, half_wins, sigmoid, with_prior
from ratings.encode import A_WINS, B_WINS, Encoded, battle_cells, cell_matrices, encode

VOTER_COLUMNS = ("voter", "judge")
TIME_COLUMNS = ("tstamp", "created_at")
PROMPT_TEXT_COLUMNS = ("prompt",)
PROMPT_ID_COLUMNS = ("prompt_id", "question_id")
# Mixture alternatives of the voter test: share of votes that follow the model's underdog instead.
CONTRARIAN_SHARES = (0.25, 0.5, 0.75, 1.0)
EXACT_REFITS = 200  # flagged voters confirmed by an exact leave-one-voter-out refit, at most


class IntegrityError(ValueError):
    """An integrity check the battles cannot support (no voter ids, no timestamps, no prompts)."""


@dataclass
class AuditRule:
    """One rule's verdict: ``keep`` [n] over the battles it was given, and the evidence behind it."""

    rule: str
    keep: np.ndarray
    flagged: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return int((~self.keep).sum())


def _first_column(battles: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    for col in names:
        if col in battles.columns and battles[col].notna().any():
            return col
    return None


def _voters(battles: pd.DataFrame, column: str | None) -> tuple[str, np.ndarray, np.ndarray]:
    """(column, codes with -1 for no id, unique ids)."""
    col = column or _first_column(battles, VOTER_COLUMNS)
    if col is None or col not in battles.columns:
        raise IntegrityError(f"voter checks need voter ids: no {' or '.join(map(repr, VOTER_COLUMNS))} column "
                             "with a value in the battles")
    values = battles[col]
    codes, uniq = pd.factorize(values.astype(str).where(values.notna().to_numpy(), None), use_na_sentinel=True)
    return col, codes.astype(np.int64), np.asarray(uniq, dtype=object)


def _times(battles: pd.DataFrame, column: str | None) -> tuple[str | None, pd.Series | None]:
    """UTC timestamps from ``tstamp`` (epoch seconds, FastChat) or ``created_at`` (ISO text, our store)."""
    col = column or _first_column(battles, TIME_COLUMNS)
    if col is None:
        return None, None
    values = battles[col]
    if pd.api.types.is_numeric_dtype(values):
        return col, pd.to_datetime(values, unit="s", utc=True)
    return col, pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")


def _sortable(times: pd.Series) -> np.ndarray:
    """UTC timestamps as datetime64 (a tz-aware Series gives Python objects, slow to sort)."""
    return times.dt.tz_convert(None).to_numpy()


def cap_votes_per_voter(battles: pd.DataFrame, k: int, *, per: str = "day", voter_column: str | None = None,
                        time_column: str | None = None) -> AuditRule:
    """Count at most ``k`` votes per voter per UTC day (``per="day"``) or in all (``per="all"``).

    The first ``k`` in time order count (row order breaks ties and stands in when ``per="all"`` has no
    timestamps). Votes without a voter id are never capped: they cannot be attributed. ``flagged``: one row
    per (voter, day) over the cap with its votes, kept and dropped counts.
    """
    if k < 1:
        raise ValueError(f"the per-voter cap must be at least 1 vote, got {k}")
    if per not in ("day", "all"):
        raise ValueError(f"unknown cap period {per!r}; expected day or all")
    col, codes, uniq = _voters(battles, voter_column)
    tcol, times = _times(battles, time_column)
    n = len(battles)
    rows = np.arange(n)
    if per == "day":
        if times is None:
            raise IntegrityError(f"a per-day cap needs timestamps: no {' or '.join(map(repr, TIME_COLUMNS))} "
                                 "column (use per='all')")
        if times.isna().any():
            raise IntegrityError(f"{int(times.isna().sum())} battle(s) have no readable {tcol!r} timestamp")
        t = _sortable(times)
        day = t.astype("datetime64[D]").astype(np.int64)
        day -= day.min()
        t_key = t.astype("datetime64[us]").astype(np.int64)
    else:
        day = np.zeros(n, dtype=np.int64)
        t_key = rows if times is None or times.isna().any() else _sortable(times).astype("datetime64[us]").astype(
            np.int64)
    # Voter-major, then day, then time (row order breaks ties): each (voter, day) group is one run.
    mine = codes >= 0
    order = np.lexsort((rows[mine], t_key[mine], day[mine], codes[mine]))
    sorted_rows = rows[mine][order]
    group = codes[mine][order] * (int(day.max()) + 1) + day[mine][order]
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    sizes = np.diff(np.r_[starts, len(group)])
    position = np.arange(len(group)) - np.repeat(starts, sizes)
    keep = np.ones(n, dtype=bool)
    keep[sorted_rows[position >= k]] = False
    over = np.flatnonzero(sizes > k)
    first_rows = sorted_rows[starts[over]]
    days = (times.iloc[first_rows].dt.strftime("%Y-%m-%d").to_numpy() if per == "day"
            else np.full(len(over), "all", dtype=object))
    flagged = pd.DataFrame({"voter": uniq[codes[first_rows]], "day": days, "votes": sizes[over], "kept": k,
                            "dropped": sizes[over] - k})
    flagged = flagged.sort_values(["dropped", "voter", "day"], ascending=[False, True, True], ignore_index=True)
    notes = [f"cap {k} vote(s) per voter per {'UTC day' if per == 'day' else 'voter'} ({col!r}"
             + (f", {tcol!r})" if per == "day" else ")") + f": {int((~keep).sum())} vote(s) over the cap"]
    if (codes < 0).any():
        notes.append(f"{int((codes < 0).sum())} vote(s) without a voter id are not capped")
    return AuditRule(rule=f"voter-cap-{k}-per-{per}", keep=keep, flagged=flagged, notes=notes)


def _fit_theta(wins: np.ndarray, ties: np.ndarray, prior: float) -> tuple[np.ndarray, float]:
    use = 0.0 if graph.mle_exists(wins, ties) else prior
    if use <= 0 and not graph.mle_exists(wins, ties):
        raise ValueError("the maximum-likelihood ratings do not exist; pass a positive prior")
    return fit_bt(half_wins(with_prior(wins, ties, use) if use else wins, ties)), use


def _log_lr(d: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """[len(CONTRARIAN_SHARES), n] log likelihood ratios of each vote, alternative over the model.

    d = theta_a - theta_b under the leave-voter-out model. Under alternative eps a share eps of the votes
    follows the model's underdog: P1(a wins) = (1 - eps) p + eps (1 - p). Ties have the same probability
    under both, so they carry no evidence and the model's tie rate never enters.
    """
    p = sigmoid(d)
    q = 1.0 - p
    # Ratio P(reversed outcome) / P(outcome) for a decisive vote; 1 for a tie.
    ratio = np.where(outcome == A_WINS, q / np.maximum(p, 1e-300),
                     np.where(outcome == B_WINS, p / np.maximum(q, 1e-300), 1.0))
    eps = np.asarray(CONTRARIAN_SHARES)[:, None]
    return np.log((1.0 - eps) + eps * ratio[None, :])


def _group_running_max(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return pd.Series(values).groupby(groups, sort=False).cummax().to_numpy()


def _sequential_evidence(log_lr: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per vote (sorted by group, then time): the mixture e-value after it, and its running max."""
    cum = np.stack([pd.Series(row).groupby(groups, sort=False).cumsum().to_numpy() for row in log_lr])
    top = cum.max(axis=0)
    log_mix = top + np.log(np.exp(cum - top).mean(axis=0))
    return log_mix, _group_running_max(log_mix, groups)


def anomalous_voters(battles: pd.DataFrame, *, alpha: float = 0.05, min_votes: int = 5, prior: float = 1.0,
                     voter_column: str | None = None, time_column: str | None = None) -> AuditRule:
    """Voters whose votes go against the leave-that-voter-out model more than chance allows.

    The test (a mixture sequential probability ratio test, Wald 1945 / Robbins 1970, made anytime-valid by
    Ville's inequality; see Ramdas et al. 2023, "Game-theoretic statistics and safe anytime-valid
    inference", Statist. Sci. 38(4)): for each voter, votes in time order, with p the probability that the
    model fitted without this voter gives to model_a winning,
        H0: the voter's votes follow that model;
        H1_eps: a share eps of them follows the model's underdog, eps in CONTRARIAN_SHARES (0.5 is a voter
        who clicks at random, 1.0 one who always votes against the consensus).
    Each vote multiplies the likelihood ratio of H1_eps over H0 by (1 - eps) + eps * P(reversed)/P(observed)
    (1 for a tie); the e-value is the average over eps of these products, a nonnegative H0-martingale, so
    P(it ever reaches 1/a) <= a whatever the number of votes looked at. A voter is flagged when it reaches
    V / alpha (V voters tested: Bonferroni across voters, so alpha bounds the chance that any honest voter is
    flagged). FastChat's ``outlier_detect`` runs the same kind of sequential test against each pair's
    empirical win rate with the voter included; leaving the voter out keeps a prolific voter from being their
    own reference.

    The leave-voter-out model is one Newton step from the full fit (theta - A^-1 g_v, g_v the voter's score
    sum), exact for a voter with few votes; flagged voters (up to EXACT_REFITS) are confirmed by an exact
    refit without them, and that refit's evidence is what is reported.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    col, codes, uniq = _voters(battles, voter_column)
    tcol, times = _times(battles, time_column)
    enc = encode(battles)
    cells, cell_of = battle_cells(enc)
    wins, ties = cell_matrices(cells)
    theta, use_prior = _fit_theta(wins, ties, prior)
    m = enc.n_models
    n_votes = np.bincount(codes[codes >= 0], minlength=len(uniq))
    tested = np.flatnonzero(n_votes >= min_votes)
    notes = [f"voter test on {col!r}: {len(tested)} voter(s) with at least {min_votes} votes tested, "
             f"family-wise alpha {alpha:g} (flag when the e-value reaches {max(len(tested), 1) / alpha:g})"]
    empty = pd.DataFrame(columns=["voter", "votes", "decisive", "upsets", "expected_upsets", "e_value",
                                  "flagged_at_vote", "method"])
    if len(tested) == 0:
        return AuditRule(rule="anomalous-voters", keep=np.ones(len(enc), dtype=bool), flagged=empty, notes=notes)
    threshold = math.log(len(tested) / alpha)

    sel = np.flatnonzero(np.isin(codes, tested))
    local = np.searchsorted(tested, codes[sel])  # 0..V-1 within the tested voters
    order_key = np.arange(len(enc))[sel] if times is None else _sortable(times)[sel]
    order = np.lexsort((np.arange(len(sel)), order_key, local))
    rows = sel[order]
    groups = local[order]

    # One-step leave-voter-out ratings for every tested voter at once: [V, M] shifts.
    info_w = _info_weights(theta, wins, ties, use_prior)
    a_inv = analytic._pinv_centred(analytic._laplacian(info_w))
    g = _voter_scores(enc, theta, rows, groups, len(tested), m)
    shift = np.asarray(g @ a_inv)  # theta_{-v} = theta - shift_v
    d = (theta[enc.a[rows]] - theta[enc.b[rows]]) - (shift[groups, enc.a[rows]] - shift[groups, enc.b[rows]])
    log_mix, running = _sequential_evidence(_log_lr(d, enc.outcome[rows]), groups)
    last = np.r_[np.flatnonzero(np.diff(groups)), len(groups) - 1]
    best = running[last]
    candidates = np.flatnonzero(best >= threshold)
    notes_extra: list[str] = []
    if len(candidates) > EXACT_REFITS:
        notes_extra.append(f"{len(candidates)} voters flagged by the one-step test; the {EXACT_REFITS} strongest "
                           "confirmed by exact refits, the rest reported with one-step evidence")
    strongest = candidates[np.argsort(-best[candidates])][:EXACT_REFITS]
    exact = _exact_evidence(cells, cell_of, enc, rows, groups, strongest, theta, use_prior)
    records = []
    flagged_codes = []
    first = np.r_[0, last[:-1] + 1]
    for v in candidates:
        span = slice(first[v], last[v] + 1)
        method = "one-step"
        lm, run = log_mix[span], running[span]
        dv = d[span]
        if v in exact:
            dv, lm, run = exact[v]
            method = "exact refit"
        if run[-1] < threshold:
            continue
        out = enc.outcome[rows[span]]
        decisive = out <= B_WINS
        p_a = sigmoid(dv)
        upset = ((out == A_WINS) & (dv < 0)) | ((out == B_WINS) & (dv > 0))
        expected = np.where(decisive, np.minimum(p_a, 1.0 - p_a), 0.0).sum()
        flagged_codes.append(int(tested[v]))
        records.append({"voter": uniq[tested[v]], "votes": int(span.stop - span.start),
                        "decisive": int(decisive.sum()), "upsets": int(upset.sum()),
                        "expected_upsets": float(expected), "e_value": float(np.exp(min(run[-1], 700.0))),
                        "flagged_at_vote": int(np.argmax(run >= threshold)) + 1, "method": method})
    flagged = pd.DataFrame(records, columns=empty.columns) if records else empty
    flagged = flagged.sort_values(["e_value", "voter"], ascending=[False, True], ignore_index=True)
    keep = ~np.isin(codes, flagged_codes)
    if times is None:
        notes.append("no timestamps: each voter's votes are tested in row order")
    return AuditRule(rule="anomalous-voters", keep=keep, flagged=flagged, notes=notes + notes_extra)


def _info_weights(theta: np.ndarray, wins: np.ndarray, ties: np.ndarray, prior: float) -> np.ndarray:
    """Pair weights of the half-ties BT information (with the prior's virtual battles, which the fit used)."""
    p = sigmoid(theta[:, None] - theta[None, :])
    n = wins + wins.T + ties
    if prior:
        n = n + (n > 0) * prior
    return n * p * (1.0 - p)


def _voter_scores(enc: Encoded, theta: np.ndarray, rows: np.ndarray, groups: np.ndarray, n_groups: int, m: int):
    from scipy.sparse import coo_matrix

    y = np.where(enc.outcome[rows] == A_WINS, 1.0, np.where(enc.outcome[rows] == B_WINS, 0.0, 0.5))
    r = y - sigmoid(theta[enc.a[rows]] - theta[enc.b[rows]])
    return coo_matrix((np.concatenate([r, -r]), (np.concatenate([groups, groups]),
                                                  np.concatenate([enc.a[rows], enc.b[rows]]))),
                      shape=(n_groups, m)).tocsr()


def _exact_evidence(cells, cell_of, enc, rows, groups, voters, theta, prior):
    """For each voter in ``voters``: (d, log e-value per vote, running max) under an exact refit without them."""
    if len(voters) == 0:
        return {}
    n_cells = len(cells.count)
    counts = np.broadcast_to(cells.count, (len(voters), n_cells)).copy()
    index = {int(v): i for i, v in enumerate(voters)}
    mine = np.isin(groups, voters)
    k = np.array([index[int(v)] for v in groups[mine]])
    np.subtract.at(counts, (k, cell_of[rows[mine]]), 1.0)
    thetas, _ = fit_rounds(cells, counts, theta, prior=prior)
    out = {}
    for v, i in index.items():
        sel = groups == v
        r = rows[sel]
        d = thetas[i][enc.a[r]] - thetas[i][enc.b[r]]
        lm, run = _sequential_evidence(_log_lr(d, enc.outcome[r]), np.zeros(len(r), dtype=np.int64))
        out[v] = (d, lm, run)
    return out


def prompt_keys(battles: pd.DataFrame, mode: str = "normalized") -> tuple[str, pd.Series]:
    """(where the key came from, per-battle prompt key): the prompt text, exact or normalised (case-folded,
    whitespace collapsed, trimmed), from ``prompt`` or the first user turn of ``conversation_a``; prompt
    ids when no text is there (ids of one text are already one key)."""
    if mode not in ("exact", "normalized"):
        raise ValueError(f"unknown prompt matching {mode!r}; expected exact or normalized")
    text = None
    source = None
    col = _first_column(battles, PROMPT_TEXT_COLUMNS)
    if col is not None:
        text, source = battles[col], col
    elif "conversation_a" in battles.columns and battles["conversation_a"].notna().any():
        text, source = battles["conversation_a"].map(_first_user_turn), "conversation_a"
    if text is None:
        col = _first_column(battles, PROMPT_ID_COLUMNS)
        if col is None:
            raise IntegrityError("prompt de-duplication needs prompts: no 'prompt' text, 'conversation_a' or "
                                 "prompt id column in the battles")
        return col, battles[col].astype(str).where(battles[col].notna(), None)
    text = text.astype(object).where(text.notna(), None)
    if mode == "normalized":
        # Normalise each distinct text once (a million battles repeat a few thousand prompts).
        codes, uniq = pd.factorize(text, use_na_sentinel=True)
        norm = pd.Series(uniq, dtype=object).str.casefold().str.replace(r"\s+", " ", regex=True).str.strip()
        spread = np.append(norm.to_numpy(dtype=object), None)
        text = pd.Series(spread[codes], index=text.index, dtype=object)
    return source, text


def _first_user_turn(conversation: object) -> str | None:
    from votes.files import parse_json

    if isinstance(conversation, str):
        try:
            conversation = parse_json(conversation, "conversation")
        except ValueError:
            return None
    if not isinstance(conversation, list | tuple | np.ndarray):
        return None
    for message in conversation:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return None if content is None else str(content)
    return None


def dedup_prompts(battles: pd.DataFrame, *, mode: str = "normalized", factor: float = 10.0, min_count: int = 20,
                  seed: int = 0) -> AuditRule:
    """Cap prompts repeated far beyond the rest: more than max(min_count, factor * median battles per prompt).

    Each such prompt keeps a seeded random sample of ``cap`` battles (the threshold, rounded down); a
    fixed prompt set (CodeArena's 397 prompts, each asked many times) is the normal case and is left alone,
    only prompts far above its median are capped. ``flagged``: prompt (first 80 characters), battles, cap,
    dropped.
    """
    if factor <= 1:
        raise ValueError(f"the repeat factor must be above 1, got {factor}")
    source, keys = prompt_keys(battles, mode)
    codes, uniq = pd.factorize(keys, use_na_sentinel=True)
    present = codes >= 0
    counts = np.bincount(codes[present], minlength=len(uniq))
    keep = np.ones(len(battles), dtype=bool)
    if len(counts) == 0:
        return AuditRule(rule="prompt-dedup", keep=keep, flagged=pd.DataFrame(
            columns=["prompt", "battles", "cap", "dropped"]), notes=["no prompts to de-duplicate"])
    cap = int(max(min_count, math.floor(factor * float(np.median(counts)))))
    over = np.flatnonzero(counts > cap)
    rng = np.random.default_rng(seed)
    records = []
    for p in over[np.argsort(-counts[over], kind="stable")]:
        idx = np.flatnonzero(codes == p)
        drop = rng.choice(idx, size=len(idx) - cap, replace=False)
        keep[drop] = False
        text = str(uniq[p])
        records.append({"prompt": text if len(text) <= 80 else text[:77] + "...", "battles": int(counts[p]),
                        "cap": cap, "dropped": int(len(idx) - cap)})
    flagged = pd.DataFrame(records, columns=["prompt", "battles", "cap", "dropped"])
    notes = [f"prompt de-duplication ({mode} text from {source!r}): median {float(np.median(counts)):g} battles per "
             f"prompt, cap {cap}; {len(over)} prompt(s) over it, {int((~keep).sum())} vote(s) over the cap"]
    return AuditRule(rule="prompt-dedup", keep=keep, flagged=flagged, notes=notes)


@dataclass(frozen=True)
class AppliedAudit:
    battles: pd.DataFrame  # the votes that count
    removed: pd.DataFrame  # rule, removed (by that rule alone), plus a "total" row (a vote two rules flag counts once)


def apply_audit(battles: pd.DataFrame, rules: list[AuditRule]) -> AppliedAudit:
    """The battles every rule keeps, and how many votes each rule removed."""
    keep = np.ones(len(battles), dtype=bool)
    rows = []
    for r in rules:
        if len(r.keep) != len(battles):
            raise ValueError(f"rule {r.rule}: its mask covers {len(r.keep)} battles, not {len(battles)}")
        keep &= r.keep
        rows.append({"rule": r.rule, "removed": r.removed})
    rows.append({"rule": "total", "removed": int((~keep).sum())})
    return AppliedAudit(battles=battles.loc[keep].reset_index(drop=True), removed=pd.DataFrame(rows))
