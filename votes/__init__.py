"""Votes: the battle record (the contract between the rooms) and the store that keeps them."""

from __future__ import annotations

from typing import Any

from votes.record import BATTLE_COLUMNS, MODES, WINNERS, Battle, BattleError, import_id, text_hash

# The store is imported on first use: it pulls sqlite_utils (and with it pandas), which a command's --help,
# or a subpackage such as votes.importers.names, must not pay for.
_STORE_NAMES = ("AddResult", "StoreError", "VoteStore", "default_db_path", "open_store")

__all__ = [
    "BATTLE_COLUMNS", "MODES", "WINNERS", "Battle", "BattleError", "import_id", "text_hash", *_STORE_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in _STORE_NAMES:
        from votes import store

        return getattr(store, name)
    raise AttributeError(f"module 'votes' has no attribute {name!r}")
