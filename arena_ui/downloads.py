"""The Data tab's files: votes in the Chatbot Arena battle schema (JSONL, CSV) and the leaderboard (CSV,
JSON). Written to a fresh temporary folder per request, which Gradio serves and cleans up. The schema itself
is ``ratings.export.arena_records`` (the same as ``codearena export``); the app adds the vote flags."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ratings.export import ARENA_COLUMNS, arena_records
from votes import VoteStore


@dataclass(frozen=True)
class DataFiles:
    votes_jsonl: Path
    votes_csv: Path
    leaderboard_csv: Path
    leaderboard_json: Path
    n_votes: int


def arena_rows(store: VoteStore, source: str = "human") -> pd.DataFrame:
    """Stored votes as Chatbot Arena battles, plus ``flags`` (identity leaks) so a consumer can drop them."""
    df = store.battles_frame(source=source)
    if df.empty:
        return pd.DataFrame(columns=[*ARENA_COLUMNS, "flags"])
    out = arena_records(df)
    out["flags"] = [json.loads(f) if isinstance(f, str) and f else [] for f in df["flags"]]
    return out


def write_data_files(store: VoteStore, leaderboard: pd.DataFrame, folder: str | Path | None = None) -> DataFiles:
    folder = Path(folder or tempfile.mkdtemp(prefix="codearena-data-"))
    votes = arena_rows(store)
    paths = DataFiles(folder / "codearena-votes.jsonl", folder / "codearena-votes.csv",
                      folder / "codearena-leaderboard.csv", folder / "codearena-leaderboard.json", len(votes))
    votes.to_json(paths.votes_jsonl, orient="records", lines=True, force_ascii=False)
    flat = votes.copy()
    for col in ("conversation_a", "conversation_b", "flags"):
        flat[col] = [json.dumps(v, ensure_ascii=False) for v in flat[col]]
    flat.to_csv(paths.votes_csv, index=False)
    leaderboard.to_csv(paths.leaderboard_csv, index=False)
    leaderboard.to_json(paths.leaderboard_json, orient="records", indent=1, force_ascii=False)
    return paths
