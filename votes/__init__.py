"""Votes: the battle record (the contract between the rooms) and the store that keeps them."""

from votes.record import BATTLE_COLUMNS, MODES, WINNERS, Battle, BattleError, import_id, text_hash
from votes.store import AddResult, StoreError, VoteStore, default_db_path, open_store

__all__ = [
    "BATTLE_COLUMNS", "MODES", "WINNERS", "Battle", "BattleError", "import_id", "text_hash",
    "AddResult", "StoreError", "VoteStore", "default_db_path", "open_store",
]
