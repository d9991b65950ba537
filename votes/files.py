"""Battles files in the Chatbot Arena schema (JSONL, JSON list, CSV, Parquet) <-> validated DataFrames.

Validation is vectorised (a million rows check in well under a second) and every error names the file, the
row (1-based line for JSONL/CSV, index for JSON/Parquet) and the problem.

Every file here is untrusted input: JSON is parsed by :func:`parse_json` (no Infinity, bounded nesting, bad
UTF-8 named by line), and a JSONL file reaches pyarrow's fast reader only once no line can nest deeper than
:data:`MAX_JSON_DEPTH` (pyarrow recurses in C: a 5,000-deep value crashed the process).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from votes.jsonl_fast import MAX_JSON_DEPTH, JsonlBytes, may_nest_too_deep, read_jsonl_bytes
from votes.record import MAX_TSTAMP, MAX_TURN, MIN_TSTAMP, WINNERS, name_problem

REQUIRED = ("model_a", "model_b", "winner")
TEXT_COLUMNS = (*REQUIRED, "id", "question_id", "prompt_id", "judge", "voter", "source", "category", "language")


class BattlesFileError(ValueError):
    """A battles file that cannot be used; the message names the file, the row and the problem."""


# -- untrusted JSON ----------------------------------------------------------------------------------------
class _NotANumber(ValueError):
    pass


def _constant(name: str) -> Any:
    # Python's json reads NaN/Infinity, which JSON does not have. NaN is read as null (a missing value, as
    # pandas writes it); an infinite number is no count, turn or time, so the file is refused.
    if name == "NaN":
        return None
    raise _NotANumber(name)


def json_too_deep(obj: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``obj`` nests lists/objects more than ``limit`` levels (iterative: no recursion)."""
    if not isinstance(obj, (dict, list)):
        return False
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((v, depth + 1) for v in children if isinstance(v, (dict, list)))
    return False


def parse_json(text: str, where: str, error: type[ValueError] = ValueError, *, line: int | None = None) -> Any:
    """``json.loads`` for untrusted text, every failure an ``error`` naming ``where`` (a file, with
    ``line`` when the text is one line of it): invalid JSON, Infinity, nesting deeper than MAX_JSON_DEPTH."""
    at = f"{where}:line {line}" if line is not None else where
    try:
        obj = json.loads(text, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        lineno = line if line is not None else exc.lineno
        raise error(f"{where}:line {lineno}: not valid JSON ({exc.msg})") from None
    except _NotANumber as exc:
        raise error(f"{at}: not valid JSON ({exc} is not a number; JSON has no infinite values)") from None
    except RecursionError:
        raise error(f"{at}: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    # The nesting depth is at most the number of brackets: most texts need no walk at all.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_too_deep(obj):
        if line is None and isinstance(obj, list):
            item = next(i for i, v in enumerate(obj) if isinstance(v, (dict, list)) and
                        json_too_deep(v, MAX_JSON_DEPTH - 1))
            at = f"{where}: item {item}"
        raise error(f"{at}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return obj


def decode_utf8(data: bytes, where: str | Path, error: type[ValueError] = ValueError, *,
                line: int | None = None) -> str:
    """``data`` as text (a UTF-8 byte-order mark is dropped); bad UTF-8 is an ``error`` naming the line."""
    try:
        return data.decode("utf-8-sig" if line in (None, 1) else "utf-8")
    except UnicodeDecodeError as exc:
        lineno = line if line is not None else data.count(b"\n", 0, exc.start) + 1
        raise error(f"{where}:line {lineno}: not valid UTF-8 (byte 0x{data[exc.start]:02x})") from None


def read_text(path: Path, error: type[ValueError] = ValueError) -> str:
    """A whole text file, or ``error``: no such file, a folder, bad UTF-8 (with its line)."""
    if path.is_dir():
        raise error(f"{path}: is a folder, not a file")
    if not path.exists():
        raise error(f"{path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return decode_utf8(data, path, error)


def read_json_document(path: Path, error: type[ValueError] = ValueError) -> Any:
    """One JSON document from a file, read as :func:`parse_json` reads text."""
    return parse_json(read_text(path, error), str(path), error)


def _row_label(path: Path, index: int) -> str:
    fmt = path.suffix.lower()
    if fmt in (".jsonl", ".ndjson"):
        return f"{path}:line {index + 1}"
    if fmt == ".csv":
        return f"{path}:line {index + 2}"  # line 1 is the header
    return f"{path}: row {index}"


def read_battles_file(path: str | Path, *, parsed: JsonlBytes | None = None) -> pd.DataFrame:
    """Read and validate a battles file. Extra columns are kept. ``parsed``: a JSONL file's bytes, already
    read by votes.jsonl_fast.read_jsonl_bytes (votes.prefetch does, on a worker thread)."""
    path = Path(path)
    if path.is_dir():
        raise BattlesFileError(f"{path}: is a folder; expected a battles file (.jsonl, .json, .csv, .parquet)")
    if not path.exists():
        raise BattlesFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise BattlesFileError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            df = _read_jsonl(path, parsed)
        elif suffix == ".json":
            df = _read_json(path)
        elif suffix == ".csv":
            df = read_csv_file(path)
        elif suffix in (".parquet", ".pq"):
            df = _read_parquet(path)
        else:
            raise BattlesFileError(f"{path}: unknown battles format {suffix!r}; use .jsonl, .json, .csv or .parquet")
    except BattlesFileError:
        raise
    except (ValueError, OSError) as exc:
        raise BattlesFileError(f"{path}: cannot be parsed ({exc})") from exc
    return validate_battles(df, path)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        return pd.read_parquet(path)
    except (ValueError, OSError):
        raise  # pyarrow's own "not a Parquet file", "too deeply nested", ...: said as it is
    except Exception:  # noqa: BLE001 - broken pandas metadata in the footer (KeyError, TypeError deep in pyarrow)
        pass
    try:
        # The columns themselves may be fine: read them without the pandas metadata.
        return pq.read_table(path).to_pandas(ignore_metadata=True)
    except Exception as exc:  # noqa: BLE001 - whatever a damaged binary file makes the reader raise
        raise BattlesFileError(f"{path}: cannot be parsed as Parquet ({type(exc).__name__}: {exc})") from None


def read_csv_file(path: Path, error: type[ValueError] = BattlesFileError) -> pd.DataFrame:
    """A CSV file as a DataFrame, cells escaped by :func:`csv_escape` restored; bad UTF-8 (named by its
    line) or a broken row is an ``error`` naming the file."""
    # Decoded first, so bad UTF-8 is named by its line (pandas says only "codec can't decode").
    text = read_text(path, error)
    try:
        # Ids and hashes stay text: a voter hash like "1e23..." must not become a float.
        df = pd.read_csv(io.StringIO(text), dtype={c: "string" for c in TEXT_COLUMNS}, keep_default_na=True)
    except (ValueError, OSError) as exc:
        raise error(f"{path}: cannot be parsed as CSV ({' '.join(str(exc).split())})") from None
    return csv_unescape(df)


def iter_json_lines(path: Path, error: type[ValueError] = ValueError,
                    lines: Iterable[str] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; a bad line (invalid JSON or UTF-8,
    Infinity, nested too deep, not an object) raises ``error`` naming the file and the line. ``lines``
    reads text already in memory instead of the file."""
    if lines is None:
        if path.is_dir():
            raise error(f"{path}: is a folder, not a file")
        if not path.is_file():
            raise error(f"{path}: no such file")
        yield from _objects(_file_lines(path, error), path, error)
    else:
        yield from _objects(enumerate(lines, 1), path, error)


def _file_lines(path: Path, error: type[ValueError]) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            yield lineno, decode_utf8(raw, path, error, line=lineno)


def _objects(lines: Iterable[tuple[int, str]], path: Path, error: type[ValueError]
             ) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, line in lines:
        if not line.strip():
            continue
        obj = parse_json(line, str(path), error, line=lineno)
        if not isinstance(obj, dict):
            raise error(f"{path}:line {lineno}: expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def _deep_lines(data: bytes) -> np.ndarray:
    """0-based numbers of the lines with more than MAX_JSON_DEPTH brackets: the only lines that can nest
    deeper than that (a bound, not the depth: brackets inside strings count too)."""
    if not may_nest_too_deep(data):  # nearly every file: told without a pass line by line
        return np.zeros(0, dtype=np.int64)
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == ord("\n"))
    opens = np.flatnonzero((buf == ord("[")) | (buf == ord("{")))
    counts = np.bincount(np.searchsorted(newlines, opens))
    return np.flatnonzero(counts > MAX_JSON_DEPTH)


def _read_jsonl(path: Path, parsed: JsonlBytes | None = None) -> pd.DataFrame:
    """``parsed``: this file's bytes as votes.jsonl_fast read them (on another thread), if they were."""
    data, table = (parsed or read_jsonl_bytes(path)).take()
    if table is not None:
        return _arrow_frame(table, data)
    # The careful path: whatever the fast one could not clear is named here by its line.
    # pyarrow does not check UTF-8: invalid bytes would reach its string arrays and fail much later.
    decode_utf8(data, path, BattlesFileError)
    deep = _deep_lines(data)
    if len(deep):
        # Parse just those lines in Python first: one nested too deep stops here, with its line number,
        # before pyarrow's recursive C parser sees it.
        starts = np.concatenate([[0], np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")) + 1])
        for i in deep:
            end = starts[i + 1] if i + 1 < len(starts) else len(data)
            raw = data[starts[i]:end]
            if raw.strip():
                parse_json(decode_utf8(raw, path, BattlesFileError, line=int(i) + 1), str(path),
                           BattlesFileError, line=int(i) + 1)
    try:
        if b"Infinity" in data:
            # pyarrow reads Infinity as a number; the line parser says which line is not JSON (or finds it
            # is only text inside a string).
            raise ValueError("Infinity")
        # pyarrow's reader is ~3x faster than a line-by-line parse on large files.
        return pd.read_json(io.BytesIO(data), lines=True, engine="pyarrow", dtype_backend="numpy_nullable")
    except Exception:  # noqa: BLE001 - fall back to a line-by-line parse that can say which line is bad
        del data, table
        rows = [obj for _, obj in iter_json_lines(path, BattlesFileError)]
        if not rows:
            raise BattlesFileError(f"{path}: no battles in the file") from None
        return pd.DataFrame(rows)


def _arrow_frame(table: Any, data: bytes) -> pd.DataFrame:
    """A pyarrow table of JSONL rows as the frame ``pd.read_json(engine="pyarrow",
    dtype_backend="numpy_nullable")`` gives: through the converter it uses where this pandas has it."""
    try:
        from pandas.io._util import arrow_table_to_pandas
    except ImportError:  # another pandas: parse again, the public way (same frame, slower)
        return pd.read_json(io.BytesIO(data), lines=True, engine="pyarrow", dtype_backend="numpy_nullable")
    return arrow_table_to_pandas(table, dtype_backend="numpy_nullable")


def _read_json(path: Path) -> pd.DataFrame:
    data = read_json_document(path, BattlesFileError)
    if isinstance(data, dict):
        # {"battles": [...]} or a column-oriented dict
        data = data.get("battles", data)
    if isinstance(data, list):
        bad = [i for i, r in enumerate(data) if not isinstance(r, dict)]
        if bad:
            raise BattlesFileError(f"{path}: row {bad[0]}: expected a JSON object")
        return pd.DataFrame(data)
    if not isinstance(data, dict):
        raise BattlesFileError(f"{path}: expected a JSON list of battles, got {type(data).__name__}")
    return pd.DataFrame(data)


def _last_assistant(conversation: Any) -> str | None:
    """The last assistant turn of an OpenAI-format conversation (a list, or its JSON text in a CSV)."""
    if isinstance(conversation, str):
        try:
            conversation = parse_json(conversation, "conversation")
        except ValueError:
            return None
    if not isinstance(conversation, (list, tuple, np.ndarray)):
        return None
    for message in reversed(list(conversation)):
        if isinstance(message, dict) and message.get("role") == "assistant":
            content = message.get("content")
            return None if content is None else str(content)
    return None


def _is_missing(value: Any) -> bool:
    return value is None or isinstance(value, float) and math.isnan(value) or value is pd.NA


def _store_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Give a Chatbot Arena schema frame the store's column names, so every consumer (agreement, judge
    biases, style control) reads files and stores alike: prompt_id from question_id, answer_a/b from the
    last assistant turn of conversation_a/b. Columns already present are left as they are."""
    if "prompt_id" not in df.columns and "question_id" in df.columns:
        # str() of each distinct id, spread by factorize codes; a missing id stays missing. Same values as a
        # per-row str(q), without a Python call per battle (arena dumps repeat a few thousand ids a million times).
        try:
            codes, uniq = pd.factorize(df["question_id"], use_na_sentinel=True)
        except TypeError:  # unhashable ids (lists in a JSON file): no fast path, same values
            df["prompt_id"] = [None if _is_missing(q) else str(q) for q in df["question_id"]]
        else:
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
        raise BattlesFileError(f"{origin}: missing column(s) {', '.join(missing)}; "
                               f"found {', '.join(map(str, df.columns))}")
    df = df.reset_index(drop=True)
    for col in REQUIRED:
        isna = df[col].isna().to_numpy()
        if isna.any():
            i = int(np.flatnonzero(isna)[0])
            raise BattlesFileError(f"{_row_label(path, i)}: {col} is empty or NaN ({int(isna.sum())} such rows)")
    out = df.copy()
    for col in REQUIRED:
        try:
            out[col] = out[col].astype(str)
        except UnicodeEncodeError as exc:  # a lone surrogate (JSON "\ud800"): not text a store can hold
            raise BattlesFileError(f"{origin}: column {col} holds text that is not valid Unicode ({exc.reason})") \
                from None
    out = _store_columns(out)
    blank = (out["model_a"].str.strip() == "") | (out["model_b"].str.strip() == "")
    if blank.any():
        i = int(np.flatnonzero(blank.to_numpy())[0])
        raise BattlesFileError(f"{_row_label(path, i)}: empty model name")
    for col in ("model_a", "model_b"):
        # Each distinct name is checked once (a million battles hold a few hundred names).
        codes, uniq = pd.factorize(out[col])
        bad_codes = [c for c, name in enumerate(uniq) if not name.isprintable() and name_problem(name)]
        if bad_codes:
            names = out[col].to_numpy(dtype=object)
            bad_name = np.flatnonzero(np.isin(codes, bad_codes))
            i = int(bad_name[0])
            raise BattlesFileError(f"{_row_label(path, i)}: {col} {names[i]!r} {name_problem(names[i])} "
                                   f"({len(bad_name)} such rows)")
    _check_numbers(out, path)
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


# (column, lowest, highest) for the numbers a battles file may hold: a value outside is no turn count or
# vote time (1e20, Infinity) but a broken file, refused with its row rather than overflowing later.
NUMBER_RANGES: tuple[tuple[str, float, float, str], ...] = (
    ("turn", -MAX_TURN, MAX_TURN, f"is out of range (at most {MAX_TURN})"),
    ("tstamp", MIN_TSTAMP, MAX_TSTAMP, "is not a Unix time (seconds between years 1 and 9999)"),
)


def _check_numbers(df: pd.DataFrame, path: Path) -> None:
    for col, low, high, problem in NUMBER_RANGES:
        if col not in df.columns:
            continue
        # Text that is no number is left to the readers (an importer takes turn "x" as turn 1).
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(values) & ~((values >= low) & (values <= high))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise BattlesFileError(f"{_row_label(path, i)}: {col} {values[i]:g} {problem} "
                                   f"({int(bad.sum())} such rows)")


# A CSV cell that starts with one of these is a formula to Excel, LibreOffice and Google Sheets
# ("=HYPERLINK(...)" in a model name or an answer runs on opening the file). Exports prefix such cells with
# a quote, as OWASP advises; a quote of our own is escaped the same way, so reading undoes it exactly.
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def _escape_cell(value: Any) -> Any:
    return "'" + value if isinstance(value, str) and value.startswith(CSV_FORMULA_START) else value


def _unescape_cell(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1:].startswith(CSV_FORMULA_START):
        return value[1:]
    return value


def csv_escape(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` safe to open in a spreadsheet: text cells starting with = + - @ (a formula) are
    prefixed with ' (numbers are left alone: -1.5 stays a number)."""
    out = df.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]) and not pd.api.types.is_bool_dtype(out[col]):
            out[col] = [_escape_cell(v) for v in out[col]]
    out.columns = [_escape_cell(str(c)) for c in out.columns]
    return out


def csv_unescape(df: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`csv_escape` on a CSV read back (text columns only)."""
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]):
            column = df[col]
            starts = column.astype("string").str.startswith("'").fillna(False).to_numpy(dtype=bool)
            if starts.any():
                df[col] = column.astype(object).where(~starts, column.astype(object).map(_unescape_cell))
    return df


def write_battles_file(df: pd.DataFrame, path: str | Path) -> None:
    """Write battles in the format the suffix names (JSONL, JSON list, CSV, Parquet): to a temporary file
    next to ``path``, renamed over it once complete, so a full disk never leaves a cut file."""
    from votes.atomic import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq"):
        raise BattlesFileError(f"{path}: unknown battles format {suffix!r}; use .jsonl, .json, .csv or .parquet")
    with atomic_path(path) as tmp:
        if suffix in (".jsonl", ".ndjson"):
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        elif suffix == ".json":
            df.to_json(tmp, orient="records", force_ascii=False, indent=1)
        elif suffix == ".csv":
            csv_escape(df).to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
