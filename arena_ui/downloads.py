"""The Data tab's files: votes in the Chatbot Arena battle schema (JSONL, CSV) and the leaderboard (CSV,
JSON). Written to a fresh temporary folder per request, which Gradio serves and cleans up.

The files are the ones ``codearena export`` writes: the records come from ``ratings.export.arena_records``
(which carries ``flags`` and ``source``, so a consumer can drop identity-leak votes), the CSV is flattened the
same way (a missing conversation is an empty cell), and the leaderboard carries ``ratings_meta`` (method, CI
method, votes, date): embedded in the JSON, in a ``.meta.json`` sidecar next to the CSV.

The files of a whole store can be large (answers included), so they are written once per state of the store
(:class:`DownloadCache`), into one folder the arena owns and removes when it stops: a visitor who presses
"Prepare downloads" again gets the same files, not another copy on disk.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ratings.export import arena_records, flat_records
from votes import VoteStore


@dataclass(frozen=True)
class DataFiles:
    votes_jsonl: Path
    votes_csv: Path
    leaderboard_csv: Path
    leaderboard_json: Path
    leaderboard_meta: Path  # the CSV's sidecar, as `codearena export ratings --format csv` writes it
    n_votes: int


def arena_rows(store: VoteStore, source: str = "human") -> pd.DataFrame:
    """Every stored vote of ``source`` as a Chatbot Arena battle, named (``anony`` false) and flagged ones
    included: the records say which they are, and a release of the data should not hide them."""
    return arena_records(store.battles_frame(source=source))


def write_data_files(store: VoteStore, leaderboard: pd.DataFrame, meta: Mapping[str, Any] | None = None,
                     folder: str | Path | None = None) -> DataFiles:
    folder = Path(folder or tempfile.mkdtemp(prefix="codearena-data-"))
    votes = arena_rows(store)
    paths = DataFiles(folder / "codearena-votes.jsonl", folder / "codearena-votes.csv",
                      folder / "codearena-leaderboard.csv", folder / "codearena-leaderboard.json",
                      folder / "codearena-leaderboard.csv.meta.json", len(votes))
    votes.to_json(paths.votes_jsonl, orient="records", lines=True, force_ascii=False)
    flat_records(votes).to_csv(paths.votes_csv, index=False)
    meta = dict(meta or {})
    leaderboard.to_csv(paths.leaderboard_csv, index=False, float_format="%.2f")
    paths.leaderboard_meta.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    rows = json.loads(leaderboard.to_json(orient="records")) if not leaderboard.empty else []
    paths.leaderboard_json.write_text(json.dumps({**meta, "leaderboard": rows}, indent=1, ensure_ascii=False)
                                      + "\n", encoding="utf-8")
    return paths


class DownloadCache:
    """The Data tab's files, rewritten only when ``key`` (the store's state) changes. Thread-safe."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="codearena-data-"))
        self._lock = threading.Lock()
        self._key: Hashable | None = None
        self._files: DataFiles | None = None
        self._generation = 0
        self.writes = 0

    def files(self, key: Hashable, store: VoteStore, leaderboard: pd.DataFrame,
              meta: Mapping[str, Any] | None = None) -> DataFiles:
        with self._lock:
            if self._files is not None and key == self._key:
                return self._files
            self._generation += 1
            folder = self.root / str(self._generation)
            folder.mkdir()
            files = write_data_files(store, leaderboard, meta, folder)
            if self._files is not None:
                # Gradio has copied the old files into its own cache by now (it serves from there).
                shutil.rmtree(self._files.votes_jsonl.parent, ignore_errors=True)
            self._key, self._files = key, files
            self.writes += 1
            return files

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
