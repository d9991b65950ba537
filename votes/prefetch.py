"""Read a battles file on a worker thread while the command that needs it is still importing.

`codearena rate` spends ~0.3 s importing pandas, numpy and the rating code before it can read a file, and
~0.3 s reading a 1M-battle JSONL file, most of it in pyarrow's parser, which runs without the GIL. Started
first, the read overlaps the imports. This module imports nothing heavy itself: importing it must not cost
what it is there to hide.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# What votes.files reads as a battles file; anything else (a store, a URL, a folder) is read as before.
BATTLES_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass
class PendingRead:
    """A battles file being read; :meth:`result` waits for it and returns what read_battles_file returns,
    or raises what it raised (the same one-line errors as a read on the caller's thread)."""

    path: Path
    _done: threading.Event = field(default_factory=threading.Event)
    _frame: Any = None
    _error: BaseException | None = None

    def result(self) -> pd.DataFrame:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._frame

    def _run(self) -> None:
        try:
            parsed = None
            if self.path.suffix.lower() in JSONL_SUFFIXES:
                # Before pandas is imported (here or by the caller): pyarrow's parse needs only pyarrow.
                from votes.jsonl_fast import read_jsonl_bytes

                try:
                    parsed = read_jsonl_bytes(self.path)
                except OSError:
                    pass  # gone or unreadable: read_battles_file says so in its own words
            from votes.files import read_battles_file

            self._frame = read_battles_file(self.path, parsed=parsed)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of result(), raised there
            self._error = exc
        finally:
            self._done.set()


def read_in_background(path: str | Path) -> PendingRead | None:
    """Start reading ``path`` if it is a battles file (by its name, and not an SQLite store); None otherwise."""
    p = Path(path)
    try:
        if p.suffix.lower() not in BATTLES_SUFFIXES or not p.is_file():
            return None
        with open(p, "rb") as fh:
            if fh.read(16) == SQLITE_MAGIC:
                return None
    except OSError:
        return None  # the caller's own read says what is wrong with it
    pending = PendingRead(p)
    # Not a daemon: a command that fails before it needs the battles waits for the read to end before it
    # exits, rather than stopping pyarrow's threads mid-parse at interpreter shutdown.
    threading.Thread(target=pending._run, name="read-battles").start()
    return pending
