"""Battles files in the Chatbot Arena schema (JSONL, JSON list, CSV, Parquet) <-> validated DataFrames.

Validation is vectorised (a million rows check in well under a second) and every error names the file, the
row (1-based line for JSONL/CSV, index for JSON/Parquet) and the problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from votes.record import WINNERS

REQUIRED = ("model_a", "model_b", "winner")
TEXT_COLUMNS = (*REQUIRED, "id", "question_id", "prompt_id", "judge", "voter", "source", "category", "language")


class BattlesFileError(ValueError):
    """A battles file that cannot be used; the message names the file, the row and the problem."""


def _row_label(path: Path, index: int) -> str:
    fmt = path.suffix.lower()
    if fmt in (".jsonl", ".ndjson"):
        return f"{path}:line {index + 1}"
    if fmt == ".csv":
        return f"{path}:line {index + 2}"  # line 1 is the header
    return f"{path}: row {index}"


def read_battles_file(path: str | Path) -> pd.DataFrame:
    """Read and validate a battles file. Extra columns are kept."""
    path = Path(path)
    if not path.exists():
        raise BattlesFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise BattlesFileError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            df = _read_jsonl(path)
        elif suffix == ".json":
            df = _read_json(path)
        elif suffix == ".csv":
            # Ids and hashes stay text: a voter hash like "1e23..." must not become a float.
            df = pd.read_csv(path, dtype={c: "string" for c in TEXT_COLUMNS},
                             keep_default_na=True)
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            raise BattlesFileError(f"{path}: unknown battles format {suffix!r}; use .jsonl, .json, .csv or .parquet")
    except BattlesFileError:
        raise
    except (ValueError, OSError) as exc:
        raise BattlesFileError(f"{path}: cannot be parsed ({exc})") from exc
    return validate_battles(df, path)


def iter_json_lines(path: Path, error: type[ValueError] = ValueError,
                    lines: Iterable[str] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; a bad line raises ``error`` naming
    the file and the line. ``lines`` reads text already in memory instead of the file."""
    if lines is None and not path.is_file():
        raise error(f"{path}: no such file")
    with ExitStack() as stack:
        source = lines if lines is not None else stack.enter_context(open(path, encoding="utf-8"))
        for lineno, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:line {lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise error(f"{path}:line {lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def _read_jsonl(path: Path) -> pd.DataFrame:
    try:
        # pyarrow's reader is ~10x faster than the default one on large files.
        return pd.read_json(path, lines=True, engine="pyarrow", dtype_backend="numpy_nullable")
    except Exception:  # noqa: BLE001 - fall back to a line-by-line parse that can say which line is bad
        rows = [obj for _, obj in iter_json_lines(path, BattlesFileError)]
        if not rows:
            raise BattlesFileError(f"{path}: no battles in the file") from None
        return pd.DataFrame(rows)


def _read_json(path: Path) -> pd.DataFrame:
    with open(path, encoding="utf-8") as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise BattlesFileError(f"{path}:line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    if isinstance(data, dict):
        # {"battles": [...]} or a column-oriented dict
        data = data.get("battles", data)
    if isinstance(data, list):
        bad = [i for i, r in enumerate(data) if not isinstance(r, dict)]
        if bad:
            raise BattlesFileError(f"{path}: row {bad[0]}: expected a JSON object")
        return pd.DataFrame(data)
    return pd.DataFrame(data)


def _last_assistant(conversation: Any) -> str | None:
    """The last assistant turn of an OpenAI-format conversation (a list, or its JSON text in a CSV)."""
    if isinstance(conversation, str):
        try:
            conversation = json.loads(conversation)
        except ValueError:
            return None
    if conversation is None or isinstance(conversation, float):
        return None
    for message in reversed(list(conversation)):
        if isinstance(message, dict) and message.get("role") == "assistant":
            content = message.get("content")
            return None if content is None else str(content)
    return None


def _store_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Give a Chatbot Arena schema frame the store's column names, so every consumer (agreement, judge
    biases, style control) reads files and stores alike: prompt_id from question_id, answer_a/b from the
    last assistant turn of conversation_a/b. Columns already present are left as they are."""
    if "prompt_id" not in df.columns and "question_id" in df.columns:
        # str() of each distinct id, spread by factorize codes; a missing id stays missing. Same values as a
        # per-row str(q), without a Python call per battle (arena dumps repeat a few thousand ids a million times).
        codes, uniq = pd.factorize(df["question_id"], use_na_sentinel=True)
        text = np.array([str(u) for u in uniq] + [None], dtype=object)
        df["prompt_id"] = text[codes]  # code -1 (missing) picks the trailing None
    for side in ("a", "b"):
        conv = f"conversation_{side}"
        if f"answer_{side}" not in df.columns and conv in df.columns:
            df[f"answer_{side}"] = [_last_assistant(c) for c in df[conv]]
    return df


def validate_battles(df: pd.DataFrame, origin: str | Path = "<battles>") -> pd.DataFrame:
    """Check the Chatbot Arena columns; return the frame with model names as str and a clean index.

    Files in the Chatbot Arena battle schema (question_id, conversation_a/b) also get the store's
    prompt_id and answer_a/b columns."""
    path = Path(str(origin))
    if len(df) == 0:
        raise BattlesFileError(f"{origin}: no battles")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise BattlesFileError(f"{origin}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}")
    df = df.reset_index(drop=True)
    for col in REQUIRED:
        isna = df[col].isna().to_numpy()
        if isna.any():
            i = int(np.flatnonzero(isna)[0])
            raise BattlesFileError(f"{_row_label(path, i)}: {col} is empty or NaN ({int(isna.sum())} such rows)")
    out = df.copy()
    for col in REQUIRED:
        out[col] = out[col].astype(str)
    out = _store_columns(out)
    blank = (out["model_a"].str.strip() == "") | (out["model_b"].str.strip() == "")
    if blank.any():
        i = int(np.flatnonzero(blank.to_numpy())[0])
        raise BattlesFileError(f"{_row_label(path, i)}: empty model name")
    bad = ~out["winner"].isin(WINNERS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise BattlesFileError(
            f"{_row_label(path, i)}: unknown winner label {out['winner'].iloc[i]!r}; expected one of "
            f"{', '.join(WINNERS)} ({int(bad.sum())} such rows)"
        )
    same = out["model_a"] == out["model_b"]
    if same.any():
        i = int(np.flatnonzero(same.to_numpy())[0])
        raise BattlesFileError(f"{_row_label(path, i)}: model_a == model_b ({out['model_a'].iloc[i]!r})")
    return out


def write_battles_file(df: pd.DataFrame, path: str | Path) -> None:
    """Write battles in the format the suffix names (JSONL, JSON list, CSV, Parquet)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    elif suffix == ".json":
        df.to_json(path, orient="records", force_ascii=False, indent=1)
    elif suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix in (".parquet", ".pq"):
        df.to_parquet(path, index=False)
    else:
        raise BattlesFileError(f"{path}: unknown battles format {suffix!r}; use .jsonl, .json, .csv or .parquet")
