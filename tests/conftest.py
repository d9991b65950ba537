"""Shared fixtures. Real data lives in ../shared/data (never copied here): tests that need it skip with a
reason when it is absent, and fail when CODEARENA_REQUIRE_SHARED_DATA=1 (CI sets it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CODEARENA_SHARED_DATA", ROOT.parent / "shared" / "data"))


def require_shared(relpath: str) -> Path:
    """Path to a file or folder under ../shared/data; skip (or fail in CI) when it is missing."""
    path = SHARED_DATA / relpath
    if not path.exists():
        reason = f"shared data {path} is absent (see ../shared/data/README.md)"
        if os.environ.get("CODEARENA_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(reason + " and CODEARENA_REQUIRE_SHARED_DATA=1")
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_data():
    return require_shared


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "votes.db"


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for this test (tests.pg_helpers): its URL; dropped afterwards."""
    from tests.pg_helpers import fresh_database

    with fresh_database() as url:
        yield url
