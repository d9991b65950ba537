"""Where the vote store is, when no --db says: one definition for the store, the CLI and the app (light:
imported by every command's --help)."""

from __future__ import annotations

import os

DEFAULT_DB = "codearena.db"


def default_db_path() -> str:
    return os.environ.get("CODEARENA_DB", DEFAULT_DB)
