"""The fast path of reading a JSONL battles file: pyarrow's parser, once the bytes are known to be safe for it.

Kept free of pandas (and of numpy), so that a worker thread can parse a file while the rest of a command is
still importing them (votes.prefetch). Anything the checks here cannot clear goes to the careful reader in
votes.files, which names the bad line.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# A battle record nests 4 levels (row, conversation, message, content); 64 leaves room for any judge
# detail and stays far below the depths where Python or pyarrow recursion fails.
MAX_JSON_DEPTH = 64
# Every byte but the brackets and the newline: deleting them leaves each line's brackets as one run.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{\n")
_MANY_BRACKETS = re.compile(rb"[^\n]{%d}" % (MAX_JSON_DEPTH + 1))


def may_nest_too_deep(data: bytes) -> bool:
    """True if some line holds more than MAX_JSON_DEPTH opening brackets: the only lines that can nest
    deeper than that (a bound: brackets inside strings count too). ~30 ms per 100 MB, in C loops over the
    bytes and then over the brackets alone."""
    return _MANY_BRACKETS.search(data.translate(None, _NOT_BRACKETS)) is not None


def parse_table(data: bytes) -> pa.Table | None:
    """The JSONL bytes as a pyarrow table, or None where the careful reader must look: bytes that are not
    ASCII (their UTF-8 is checked there, pyarrow does not check it), a line that may nest too deep (pyarrow
    recurses in C: a 5,000-deep value crashed the process), ``Infinity`` (pyarrow reads it as a number), or
    anything pyarrow refuses."""
    if not data.isascii() or may_nest_too_deep(data) or b"Infinity" in data:
        return None
    try:
        import pyarrow.json as pa_json

        return pa_json.read_json(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - the careful reader says which line is bad (or fails as it would)
        return None


class JsonlBytes:
    """A JSONL file's bytes, and pyarrow's table of them where the fast path took them (else None), handed
    over once: :meth:`take` gives them and keeps no reference, so a large file is not held twice while the
    frame made from it is validated."""

    def __init__(self, data: bytes, table: pa.Table | None) -> None:
        self._content: tuple[bytes, pa.Table | None] | None = (data, table)

    def take(self) -> tuple[bytes, pa.Table | None]:
        if self._content is None:
            raise RuntimeError("these bytes were already taken")
        content, self._content = self._content, None
        return content


def read_jsonl_bytes(path: Path) -> JsonlBytes:
    data = path.read_bytes()
    return JsonlBytes(data, parse_table(data))
