"""The one check of a stored record read back (a code run, its limits, a timing, ...): a mapping of the
record's own fields, each required one present, so that a damaged store or file fails with a message that
names what is wrong instead of a TypeError from the dataclass."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def record_fields(cls: type, data: Any, error: type[ValueError], *, label: str, kind: str,
                  required: tuple[str, ...] = (), derived: tuple[str, ...] = ()) -> dict[str, Any]:
    """``data``'s fields of the dataclass ``cls``: ``error`` when it is not a mapping ("``label`` must be a
    mapping"), has a field ``cls`` lacks ("unknown ``kind`` field(s)") or lacks a ``required`` one.
    ``derived`` fields (written for readers of the file) are allowed and left out."""
    if not isinstance(data, dict):
        raise error(f"{label} must be a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known - set(derived))
    if unknown:
        raise error(f"unknown {kind} field(s): {', '.join(unknown)}")
    for name in required:
        if name not in data:
            raise error(f"{label} needs {name!r}")
    return {k: v for k, v in data.items() if k in known}
