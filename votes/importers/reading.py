"""Reading import files: JSON lists or JSON lines through the project's one JSON reader
(``votes.files``), and, for arena-battles, the CSV and Parquet tables ``codearena export votes`` writes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from votes.files import BattlesFileError, iter_json_lines, parse_json, read_battles_file, read_text
from votes.importers.core import ImportFormatError, Row


def read_records(path: Path) -> list[Row]:
    """Rows of a JSON list or JSONL file, each with a label for messages ("f.jsonl:line 3")."""
    text = read_text(path, ImportFormatError)
    if not text.strip():
        raise ImportFormatError(f"{path}: the file is empty")
    data: Any = None
    if text.lstrip().startswith("["):
        data = parse_json(text, str(path), ImportFormatError)
    elif path.suffix.lower() == ".json":
        try:  # one JSON document ({"battles": [...]}) or, failing that, JSON lines under a .json name
            data = parse_json(text, str(path), ImportFormatError)
        except ImportFormatError:
            if "\n" not in text.strip():
                raise  # one line: it was meant as one document, and its error is the one to show
            data = None
        if isinstance(data, dict):
            data = data.get("battles", [data])
    if data is not None:
        if not isinstance(data, list):
            raise ImportFormatError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
        out = []
        for i, row in enumerate(data):
            if not isinstance(row, dict):
                raise ImportFormatError(f"{path}: item {i}: expected a JSON object, got {type(row).__name__}")
            out.append((f"{path.name}: item {i}", row))
        return out
    return [(f"{path.name}:line {lineno}", row)
            for lineno, row in iter_json_lines(path, ImportFormatError, lines=text.splitlines())]


TABLE_SUFFIXES = (".csv", ".parquet", ".pq")  # arena-battles only: what `codearena export votes` also writes


def expand_paths(path: Path, fmt: str | None = None) -> list[Path]:
    """A file, or every .jsonl/.json file in a folder (model_answer/, model_judgment/<judge>/); for
    arena-battles also .csv/.parquet (an exported votes folder holds battles.parquet)."""
    suffixes = (".jsonl", ".json", *(TABLE_SUFFIXES if fmt == "arena-battles" else ()))
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        if not files:
            raise ImportFormatError(f"{path}: folder has no {' or '.join(suffixes)} files")
        return files
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file or folder")
    return [path]


def _plain(value: Any) -> Any:
    """A DataFrame cell as JSON would give it: NaN/NA -> None, numpy arrays and scalars -> list/Python."""
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy array or scalar (Parquet lists)
        value = value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, float) and math.isnan(value):
        return None
    try:
        import pandas as pd

        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def read_table_records(path: Path) -> list[Row]:
    """Rows of a CSV or Parquet battles file, read by :func:`votes.files.read_battles_file` (which refuses
    a file with a broken row as a whole, naming the row); CSV cells holding JSON lists (the conversations
    ``export votes --format csv`` writes) come back as lists."""
    try:
        df = read_battles_file(path)
    except BattlesFileError as exc:
        raise ImportFormatError(str(exc)) from exc
    csv = path.suffix.lower() == ".csv"
    out = []
    for i, row in enumerate(df.to_dict("records")):
        rec = {str(k): _plain(v) for k, v in row.items()}
        for k in ("conversation_a", "conversation_b"):
            if isinstance(rec.get(k), str) and rec[k].lstrip().startswith("["):
                try:
                    rec[k] = parse_json(rec[k], f"{path.name}: {k}")
                except ValueError:
                    pass  # not a conversation; _conversation() ignores it
        out.append((f"{path.name}:line {i + 2}" if csv else f"{path.name}: row {i}", rec))
    return out


def read_rows(path: Path, fmt: str) -> list[Row]:
    if fmt == "arena-battles" and path.suffix.lower() in TABLE_SUFFIXES:
        return read_table_records(path)
    return read_records(path)
