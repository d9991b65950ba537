"""The leaderboard, computed off the request path.

A background thread recomputes every ``refresh_s`` seconds, and only when the number of stored battles has
changed; page views read the last snapshot. A page view never fits a model, so a crowd of visitors costs
the same as one.

Several replicas on one shared store (PostgreSQL): the snapshot is computed once for the whole deployment.
The replica holding the store's ``leaderboard`` lock (``VoteStore.lead``, a PostgreSQL advisory lock that
dies with its session, so a killed leader is replaced at the next refresh) computes and writes the snapshot
as JSON into the store; every other replica reads it when it is newer than the one it shows.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from votes import VoteStore

if TYPE_CHECKING:
    from ratings.leaderboard import RatingResult

log = logging.getLogger(__name__)

ALL_CATEGORIES = "all"
# A per-category Bradley-Terry fit on a handful of votes is noise with a rank attached: a category gets its
# own table from this many (selected) votes on.
MIN_CATEGORY_BATTLES = 20
CATEGORY_RULE = f"categories with fewer than {MIN_CATEGORY_BATTLES} votes are not shown"


@dataclass(frozen=True)
class LeaderboardSnapshot:
    """Everything the Leaderboard tab shows, computed together from one read of the store."""

    overall: pd.DataFrame  # human votes, anonymous and unflagged (ratings.source.select_battles): the ranking
    by_category: dict[str, pd.DataFrame]
    # one row per model: the human rating/rank, then one column group per judge source (each judge fitted
    # on its own votes: two judges are two different raters, not one ranking)
    human_vs_judge: pd.DataFrame
    named: pd.DataFrame  # side-by-side (named) votes, shown apart: the voter knew the names
    figures: list[Any]  # plotly figures of the overall ranking (ratings.plots), built with the tables
    battles_seen: int
    computed_at: float
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the overall ranking left out, and why
    # ratings.export.ratings_meta of the overall ranking (method, CI method, votes, date): the Data tab's
    # leaderboard files carry it, as ``codearena export ratings`` does; empty when there is no ranking
    meta: dict[str, Any] = field(default_factory=dict)
    counted: pd.DataFrame = field(default_factory=pd.DataFrame)  # the votes the overall ranking counted

    @classmethod
    def empty(cls) -> LeaderboardSnapshot:
        return cls(pd.DataFrame(), {}, pd.DataFrame(), pd.DataFrame(), [], 0, 0.0)

    def category_table(self, category: str | None) -> pd.DataFrame:
        if not category or category == ALL_CATEGORIES:
            return self.overall
        return self.by_category.get(category, pd.DataFrame())


RankFn = Callable[[pd.DataFrame], "RatingResult"]
# The store's names for the shared snapshot and the lock of the replica that computes it.
SNAPSHOT_KEY = "leaderboard"
LEAD_ROLE = "leaderboard"


def _default_rank(battles: pd.DataFrame) -> RatingResult:
    from ratings.leaderboard import rate

    return rate(battles)  # analytic CIs: cheap enough to refresh every few seconds


def _figures(res: RatingResult | None) -> list[Any]:
    if res is None:
        return []
    try:
        from ratings.plots import figures
        return figures(res)
    except Exception as exc:  # noqa: BLE001 - no plotly, or a plot bug: the tables still show
        log.warning("leaderboard plots unavailable: %s", exc)
        return []


def _with_tiers_and_latency(res: RatingResult, battles: pd.DataFrame) -> pd.DataFrame:
    """The ranking's table with its tiers (models a simultaneous 95% test cannot tell apart share one) and
    each model's median answer time where answers were timed, as a team choosing a model wants them."""
    from ratings.latency import battle_timings_frame, median_latency
    from ratings.tiers import leaderboard_tiers, with_tiers

    try:
        table = with_tiers(res, leaderboard_tiers(res))
    except ValueError as exc:
        log.warning("leaderboard tiers unavailable: %s", exc)
        table = res.table
    latency = median_latency(battle_timings_frame(battles))
    if len(latency):
        table = table.merge(latency[["model", "total_s", "tokens_per_s"]].rename(
            columns={"total_s": "median_s", "tokens_per_s": "median_tok_s"}), on="model", how="left")
    return table


def compute_snapshot(store: VoteStore, rank: RankFn = _default_rank) -> LeaderboardSnapshot:
    """One full recomputation. A table that cannot be computed (no votes yet) is empty, with the reason.

    Battles are chosen by ``ratings.source.select_battles``, the rule ``codearena rate`` applies: named votes
    and votes flagged ``identity_leak`` (not blind) stay out of the ranking, and the notes say how many.
    """
    from ratings.export import ratings_meta
    from ratings.groups import rate_groups
    from ratings.source import DEFAULT_SOURCE, select_battles

    errors: list[str] = []
    seen = store.count()

    def fit(df: pd.DataFrame, label: str) -> RatingResult | None:
        if df.empty:
            return None
        try:
            return rank(df)
        except Exception as exc:  # noqa: BLE001 - one bad slice must not blank the whole tab
            errors.append(f"{label}: {exc}")
            log.warning("leaderboard %s failed: %s", label, exc)
            return None

    def safe(df: pd.DataFrame, label: str) -> pd.DataFrame:
        res = fit(df, label)
        return pd.DataFrame() if res is None else res.table

    stored_human = store.battles_frame(source=DEFAULT_SOURCE)
    human, notes = select_battles(stored_human, source=DEFAULT_SOURCE)
    overall_res = fit(human, "overall")
    overall = pd.DataFrame() if overall_res is None else _with_tiers_and_latency(overall_res, human)
    by_category: dict[str, pd.DataFrame] = {}
    if not human.empty and "category" in human and human["category"].notna().any():
        # The same per-group rule as `codearena rate --by category` (ratings.groups), with a floor.
        grouped = rate_groups(human, "category", keep_missing=False, min_group_battles=MIN_CATEGORY_BATTLES,
                              fit=rank)
        by_category = grouped.tables()
        errors.extend(grouped.errors)
    stored_judge = store.battles_frame(source="judge:")
    judges: dict[str, pd.DataFrame] = {}
    if not stored_judge.empty:
        for src in sorted(stored_judge["source"].astype(str).unique()):
            part, _ = select_battles(stored_judge, source=src)
            judges[src] = safe(part, src)
    named_votes = stored_human[(stored_human["mode"].astype(str) == "named").to_numpy()]
    named = safe(select_battles(named_votes, source=DEFAULT_SOURCE, include_named=True)[0], "named")
    meta: dict[str, Any] = {}
    if overall_res is not None:
        meta = ratings_meta(method=overall_res.method, ci_method=overall_res.ci_method,
                            n_votes=overall_res.n_battles, source=DEFAULT_SOURCE, models=len(overall_res.models),
                            notes=[*notes, *overall_res.notes], nu=overall_res.nu)
    return LeaderboardSnapshot(overall=overall, by_category=by_category,
                               human_vs_judge=side_by_side(overall, judges), named=named,
                               figures=_figures(overall_res),
                               battles_seen=seen, computed_at=time.time(), errors=errors, notes=notes, meta=meta,
                               counted=human)


def side_by_side(human: pd.DataFrame, judges: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Human rating/rank per model, then ``rating_<judge source>`` etc. per judge; a model a rater never saw
    has blanks in that rater's columns. Sorted by the human rank, then the judges' in source order."""
    cols = ["model", "rating", "rank", "battles"]
    out: pd.DataFrame | None = None
    tags = ["human", *judges]
    for tag, df in (("human", human), *judges.items()):
        if df.empty:
            part = pd.DataFrame(columns=["model"] + [f"{c}_{tag}" for c in cols[1:]])
        else:
            part = df[cols].rename(columns={c: f"{c}_{tag}" for c in cols[1:]})
        out = part if out is None else out.merge(part, on="model", how="outer")
    assert out is not None
    if out.empty:
        return out
    return out.sort_values([f"rank_{t}" for t in tags], na_position="last", ignore_index=True)


class LeaderboardCache:
    """Holds the latest snapshot; a daemon thread refreshes it. ``refresh()`` forces one (tests, startup)."""

    def __init__(self, store: VoteStore, *, refresh_s: float = 30.0, rank: RankFn = _default_rank) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self._rank = rank
        self._snapshot = LeaderboardSnapshot.empty()
        self._seen = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.computations = 0
        # Called after each recomputation with the battles the ranking counted (e.g. active sampling).
        self.on_refresh: list[Callable[[pd.DataFrame], None]] = []
        self._shared_at: float | None = None  # when the shared snapshot shown here was written (its clock)

    def snapshot(self) -> LeaderboardSnapshot:
        return self._snapshot

    def refresh(self, *, force: bool = False) -> LeaderboardSnapshot:
        with self._lock:
            if self.store.shares_state:
                return self._refresh_shared(force)
            count = self.store.count()
            if force or count != self._seen:
                self._snapshot = compute_snapshot(self.store, self._rank)
                self._seen = self._snapshot.battles_seen
                self.computations += 1
                for hook in self.on_refresh:
                    try:
                        hook(self._snapshot.counted)
                    except Exception:  # noqa: BLE001 - a hook must not stop the leaderboard
                        log.exception("leaderboard refresh hook failed")
            return self._snapshot

    def _refresh_shared(self, force: bool) -> LeaderboardSnapshot:
        """One replica (the lock holder) computes and publishes; the others read what it published."""
        newer = self.store.get_shared(SNAPSHOT_KEY, newer_than=self._shared_at)
        if newer is not None:
            self._shared_at, self._seen = newer[0], newer[1]
            self._snapshot = snapshot_from_json(newer[2])
        if self.store.lead(LEAD_ROLE):
            count = self.store.count()
            if force or count != self._seen:
                self._snapshot = compute_snapshot(self.store, self._rank)
                self._seen = self._snapshot.battles_seen
                self.computations += 1
                self._shared_at = self.store.put_shared(SNAPSHOT_KEY, snapshot_to_json(self._snapshot), self._seen)
        return self._snapshot

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="leaderboard-cache", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - keep serving the last good snapshot
                log.exception("leaderboard refresh failed")
            self._stop.wait(self.refresh_s)


def _frame_to_dict(df: pd.DataFrame) -> dict[str, Any]:
    # Not DataFrame.to_json: it rounds floats to 15 digits; Python's JSON writes each float exactly.
    split = df.to_dict(orient="split", index=False)
    return {"columns": [str(c) for c in df.columns], "dtypes": [str(t) for t in df.dtypes], "data": split["data"]}


def _frame_from_dict(d: dict[str, Any]) -> pd.DataFrame:
    df = pd.DataFrame(d["data"], columns=d["columns"])
    return df.astype(dict(zip(d["columns"], d["dtypes"], strict=True))) if d["columns"] else df


def snapshot_to_json(snap: LeaderboardSnapshot) -> str:
    """A snapshot as JSON text (tables, plots, notes), what the computing replica shares with the others.
    JSON rather than pickle: a payload read from a database must not be able to run code."""
    return json.dumps({
        "overall": _frame_to_dict(snap.overall),
        "by_category": {k: _frame_to_dict(v) for k, v in snap.by_category.items()},
        "human_vs_judge": _frame_to_dict(snap.human_vs_judge),
        "named": _frame_to_dict(snap.named),
        "figures": [f.to_json() for f in snap.figures],
        "battles_seen": snap.battles_seen, "computed_at": snap.computed_at, "errors": snap.errors,
        "notes": snap.notes, "meta": snap.meta,
    }, ensure_ascii=False)


def snapshot_from_json(text: str) -> LeaderboardSnapshot:
    d = json.loads(text)
    figures: list[Any] = []
    if d["figures"]:
        try:
            import plotly.io as pio

            figures = [pio.from_json(f) for f in d["figures"]]
        except Exception as exc:  # noqa: BLE001 - no plotly here: the tables still show
            log.warning("leaderboard plots unavailable: %s", exc)
    return LeaderboardSnapshot(
        overall=_frame_from_dict(d["overall"]),
        by_category={k: _frame_from_dict(v) for k, v in d["by_category"].items()},
        human_vs_judge=_frame_from_dict(d["human_vs_judge"]), named=_frame_from_dict(d["named"]),
        figures=figures, battles_seen=int(d["battles_seen"]), computed_at=float(d["computed_at"]),
        errors=list(d["errors"]), notes=list(d["notes"]), meta=dict(d["meta"]))
