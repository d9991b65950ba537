"""The one I/O edge of the ratings: battles from a vote store or a battles file, filtered as asked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class LoadedBattles:
    battles: pd.DataFrame
    origin: str  # "store" | "file"
    dropped_named: int  # named-mode votes left out of the ranking
    source_filter: str


def is_store(path: str | Path) -> bool:
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as fh:
        return fh.read(16) == SQLITE_MAGIC


def load_battles(path: str | Path, *, source: str | None = None, include_named: bool = False) -> LoadedBattles:
    """Battles to rate. ``source``: human | judge:NAME | judge: | import:NAME | all (store default: human).

    Named-mode votes (the voter saw the model names) are left out unless ``include_named``: they carry
    brand bias, which is why Chatbot Arena ranks anonymous votes only.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if is_store(path):
        from votes.store import VoteStore

        store = VoteStore(path)
        src = source or "human"
        df = store.battles_frame(source=src)
        origin = "store"
        if len(df) == 0:
            have = ", ".join(f"{s} ({n})" for s, n in store.sources().items()) or "none"
            raise ValueError(f"{path}: no battles with source {src!r}; sources in the store: {have} "
                             "(choose one with --source, or --source all)")
    else:
        from votes.files import read_battles_file

        df = read_battles_file(path)
        origin = "file"
        src = source or "all"
        if src != "all":
            if "source" not in df.columns:
                raise ValueError(f"{path}: --source {src} asked, but the file has no 'source' column")
            col = df["source"].astype(str)
            keep = col.str.startswith(src) if src.endswith(":") else col == src
            df = df.loc[keep.to_numpy()].reset_index(drop=True)
            if len(df) == 0:
                raise ValueError(f"{path}: no battles with source {src!r}")
    dropped = 0
    if not include_named:
        named = None
        if "mode" in df.columns:
            named = (df["mode"].astype(str) == "named").to_numpy()
        elif "anony" in df.columns:
            named = (df["anony"].astype(str).str.lower().isin(["false", "0"])).to_numpy()
        if named is not None and named.any():
            dropped = int(named.sum())
            df = df.loc[~named].reset_index(drop=True)
            if len(df) == 0:
                raise ValueError(f"{path}: all {dropped} battles are named-mode votes; pass --include-named")
    return LoadedBattles(battles=df, origin=origin, dropped_named=dropped, source_filter=src)
