"""One leaderboard per group (category, language, ...): what `codearena rate --by` prints and the arena's
Leaderboard tab shows per category. One rule for both: a group too small to rate, or whose models all fall
under ``min_battles``, is reported in the notes and skipped, never allowed to stop the others."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ratings.leaderboard import NoBattlesLeftError, RatingResult, rate

MISSING_GROUP = "(none)"


@dataclass
class GroupedRatings:
    """``results``: (group name, result) in group order; the name is None for the ungrouped leaderboard."""

    by: str | None
    results: list[tuple[str | None, RatingResult]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # groups whose fit failed (the others are rated)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {str(name): res.table for name, res in self.results}


def rated_models(battles: pd.DataFrame, min_battles: int) -> set[str]:
    """The models rate() keeps: those with at least ``min_battles`` battles (it drops the rest first)."""
    counts = pd.concat([battles["model_a"], battles["model_b"]]).astype(str).value_counts()
    return set(counts[counts >= min_battles].index)


def check_anchor(battles: pd.DataFrame, anchor: tuple[str, float] | None, min_battles: int) -> None:
    """Say why an anchor cannot be used before fitting (rate() would only say it is missing)."""
    if anchor is None or anchor[0] in rated_models(battles, min_battles):
        return
    if anchor[0] in rated_models(battles, 0):
        raise ValueError(f"anchor model {anchor[0]!r} has fewer than --min-battles {min_battles} battles and is "
                         "left out; lower --min-battles or anchor another model")
    raise ValueError(f"anchor model {anchor[0]!r} is not among the rated models")


def split_groups(battles: pd.DataFrame, by: str, *, keep_missing: bool = True) -> list[tuple[str, pd.DataFrame]]:
    """(group, its battles) for each value of column ``by``, sorted; battles without a value form the group
    ``(none)`` when ``keep_missing``, else are left out."""
    if by not in battles.columns or battles[by].isna().all():
        raise ValueError(f"--by {by}: the battles have no {by!r} values")
    values = battles[by]
    if not keep_missing:
        battles, values = battles.loc[values.notna().to_numpy()], values.dropna()
    col = values.fillna(MISSING_GROUP).astype(str)
    return [(g, battles.loc[(col == g).to_numpy()].reset_index(drop=True)) for g in sorted(col.unique())]


def rate_groups(battles: pd.DataFrame, by: str | None = None, *, min_group_battles: int = 0,
                keep_missing: bool = True, online_elo: bool = False,
                fit: Callable[[pd.DataFrame], RatingResult] | None = None, weight_column: str | None = None,
                **settings: Any) -> GroupedRatings:
    """The leaderboard of ``battles`` (``by=None``), or one per value of column ``by``.

    ``settings`` go to :func:`ratings.leaderboard.rate` (or ``fit`` replaces it). An anchor that a group
    lacks leaves that group centred on 1000, with a note; groups with fewer than ``min_group_battles``
    battles are listed in the notes, not rated."""
    out = GroupedRatings(by=by)
    anchor = settings.get("anchor")
    min_battles = int(settings.get("min_battles", 0))
    if by is None:
        check_anchor(battles, anchor, min_battles)
        groups: list[tuple[str | None, pd.DataFrame]] = [(None, battles)]
    else:
        groups = list(split_groups(battles, by, keep_missing=keep_missing))
    under_min_battles = 0
    for name, frame in groups:
        if name is not None and len(frame) < min_group_battles:
            out.notes.append(f"{by} = {name}: {len(frame)} battles, under {min_group_battles}: not rated")
            continue
        group_settings = settings
        group_notes: list[str] = []
        # Checked against the models rate() keeps, not the raw frame: min_battles can drop the anchor in one
        # group, which must not abort the other groups.
        if anchor and name is not None and anchor[0] not in rated_models(frame, min_battles):
            group_settings = {**settings, "anchor": None}
            group_notes.append(f"{by} = {name}: anchor {anchor[0]} absent in this group: centred on 1000")
        try:
            if weight_column is not None:
                group_settings = {**group_settings, "weights": frame[weight_column].to_numpy(dtype=float)}
            res = fit(frame) if fit is not None else rate(frame, **group_settings)
        except NoBattlesLeftError:
            if name is None:
                raise
            out.notes.append(f"{by} = {name} ({len(frame)} battles): all models under --min-battles "
                             f"{min_battles}, not rated")
            under_min_battles += 1
            continue
        except ValueError as exc:
            if name is None:
                raise
            out.errors.append(f"{by} = {name}: not rated ({exc})")
            continue
        out.notes.extend(group_notes)
        if online_elo:
            from ratings.elo import online_elo as elo_of
            from ratings.encode import encode

            enc = encode(frame)
            res.table["online_elo"] = res.table["model"].map(dict(zip(enc.models, elo_of(enc), strict=True)))
        out.results.append((name, res))
    if by is not None and groups and under_min_battles == len(groups):
        raise ValueError(f"every {by} group has no battles left after removing models with fewer than "
                         f"--min-battles {min_battles} battles")
    return out
