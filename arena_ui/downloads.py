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

import shutil
import tempfile
import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ratings.export import arena_records, leaderboard_sidecar, write_leaderboard, write_votes
from votes import VoteStore


@dataclass(frozen=True)
class DataFiles:
    votes_jsonl: Path
    votes_csv: Path
    leaderboard_csv: Path
    leaderboard_json: Path
    leaderboard_meta: Path  # the CSV's sidecar, as `codearena export ratings --format csv` writes it
    n_votes: int
    notes: list[str] = field(default_factory=list)  # what the vote rule left out


def arena_rows(store: VoteStore) -> tuple[pd.DataFrame, list[str]]:
    """The human votes a release contains, selected by the one vote rule `codearena export votes` applies
    (``ratings.source.select_battles``: named and identity-leak votes left out), as Chatbot Arena
    records; and the notes on what was left out."""
    from ratings.source import DEFAULT_SOURCE, select_battles

    kept, notes = select_battles(store.battles_frame(source=DEFAULT_SOURCE), source=DEFAULT_SOURCE)
    return arena_records(kept), notes


def write_data_files(store: VoteStore, leaderboard: pd.DataFrame, meta: Mapping[str, Any] | None = None,
                     folder: str | Path | None = None) -> DataFiles:
    folder = Path(folder or tempfile.mkdtemp(prefix="codearena-data-"))
    votes, notes = arena_rows(store)
    paths = DataFiles(folder / "codearena-votes.jsonl", folder / "codearena-votes.csv",
                      folder / "codearena-leaderboard.csv", folder / "codearena-leaderboard.json",
                      leaderboard_sidecar(folder / "codearena-leaderboard.csv"), len(votes), notes)
    write_votes(paths.votes_jsonl, votes, "jsonl")
    write_votes(paths.votes_csv, votes, "csv")
    write_leaderboard(paths.leaderboard_csv, leaderboard, dict(meta or {}), "csv")
    write_leaderboard(paths.leaderboard_json, leaderboard, dict(meta or {}), "json")
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
