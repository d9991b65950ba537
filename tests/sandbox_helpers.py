"""Shared by the execution tests: the real sandbox, or a skip (a failure when CODEARENA_REQUIRE_SANDBOX=1)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from serving.execution import runner_info, sandbox_status

REQUIRE_ENV = "CODEARENA_REQUIRE_SANDBOX"
# The Run buttons must work for these wherever the sandbox does (the promise); others may skip.
REQUIRED_LANGUAGES = ("python", "javascript")


def _missing(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1")
    pytest.skip(reason)


def require_sandbox() -> None:
    status = sandbox_status()
    if not status.available:
        _missing(f"no sandbox here: {status.reason}")


def require_runner(language: str) -> None:
    require_sandbox()
    info = runner_info(language)
    if not info.available:
        if language in REQUIRED_LANGUAGES:
            _missing(f"the {language} runner is unavailable: {info.reason}")
        pytest.skip(f"the {language} runner is unavailable here: {info.reason}")


def pid_namespace_members(ns: str, *, settle_s: float = 5.0) -> list[int]:
    """Host pids of the processes left in the PID namespace ns (as /proc/PID/ns/pid reads it, e.g.
    'pid:[4026...]'). A sandbox killed from outside dies a moment after its bwrap: allow settle_s for that
    (it returns as soon as none are left; a process that outlives the sandbox stays in the list)."""
    deadline = time.monotonic() + settle_s
    while True:
        members = _members(ns)
        if not members or time.monotonic() > deadline:
            return members
        time.sleep(0.05)


def _members(ns: str) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "pid") == ns:
                members.append(int(entry.name))
        except OSError:
            continue
    return members
