"""Importers: the field's vote and answer files into the vote store, idempotently.

One module per format (``arena_battles``, ``mt_bench_human``, ``pandalm``, ``judgments``, ``answers``), what
they share in ``core``, file reading in ``reading``, and the run (options, one transaction) in ``run``.

Every importer turns one source row into a :class:`Battle` (or a :class:`Rejection` that says why not) with a
deterministic id from :func:`votes.record.import_id`, so importing a file twice adds nothing the second time.
A malformed file (bad JSON or UTF-8, not a list of objects, a number no vote can hold such as a turn of
Infinity or a tstamp of 1e20) is an error naming the file and line, and nothing of it is imported; a
well-formed row that cannot be a battle (unknown winner label, same model twice, no majority, a model name
with control characters) is counted as rejected, with its reason, and the import goes on.

All or nothing: an import stores its battles in one transaction (:meth:`VoteStore.transaction`), so a full
disk or a kill -9 in the middle leaves the store as it was.

Provenance: imported human votes get ``import:<dataset>`` unless the caller says who voted
(``as_source="human"`` or ``"judge:NAME"``); judge outputs (``codearena-judgments``) get
``judge:<judge named in the file>``. Keeping ``import:`` by default stops a dataset's votes from silently
merging with the arena's own crowd votes in ``battles_frame("human")``.

Mode: MT-bench experts, PandaLM annotators and Arena-Hard judges all saw the two answers without model names,
so those votes are ``anonymous``; Chatbot Arena rows say so themselves (``anony``).
"""

from __future__ import annotations

from typing import Any

from votes.importers.names import ARENA_HARD_BASELINE, BATTLE_FORMAT_NAMES, FORMATS

# The API, imported on first use: `codearena --help` lists the formats without loading pandas.
_LAZY = {
    "ImportFormatError": "core", "ImportOptions": "core", "ImportReport": "core", "Rejection": "core",
    "BATTLE_FORMATS": "run", "check_options": "run", "import_path": "run",
    "expand_paths": "reading", "read_records": "reading", "read_rows": "reading",
}

__all__ = ["ARENA_HARD_BASELINE", "BATTLE_FORMAT_NAMES", "FORMATS", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"votes.importers.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'votes.importers' has no attribute {name!r}")
