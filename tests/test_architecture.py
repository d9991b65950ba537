"""The rooms look only down: votes <- ratings <- serving <- arena_ui <- codearena.

A room may import the rooms below it and never one above it (docs/architecture.md draws why: data flows one
way, and each record has one owner). Checked on the source, every import statement, including the ones
inside functions: a lazy import upward is still a dependency upward. Like httpx's test of its public names,
this pins the shape so a change that breaks it is a deliberate one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("votes", "ratings", "serving", "arena_ui", "codearena")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("room", ROOMS)
def test_a_room_imports_no_room_above_it(room: str) -> None:
    above = set(ROOMS[ROOMS.index(room) + 1:])
    wrong = []
    for path in sorted((ROOT / room).rglob("*.py")):
        bad = _imports(path) & above
        if bad:
            wrong.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}")
    assert not wrong, f"{room} must not import the rooms above it:\n" + "\n".join(wrong)


def test_gradio_stays_in_the_app() -> None:
    # serving must run in a vLLM environment where gradio cannot be installed; votes and ratings too.
    for room in ("votes", "ratings", "serving"):
        for path in (ROOT / room).rglob("*.py"):
            assert "gradio" not in _imports(path), f"{path.relative_to(ROOT)} imports gradio"


def test_every_record_has_one_owner() -> None:
    """The records the rooms pass to each other are defined once, in votes/ (the contract)."""
    owners = {"Battle": "votes/record.py", "CodeRun": "votes/runs.py", "JudgmentRecord": "votes/judgment.py",
              "JudgeDetail": "votes/judgment.py", "GameRecord": "votes/judgment.py"}
    for name, owner in owners.items():
        defined = [str(p.relative_to(ROOT)) for room in ROOMS for p in (ROOT / room).rglob("*.py")
                   if f"\nclass {name}(" in p.read_text(encoding="utf-8") or
                   f"\nclass {name}:" in p.read_text(encoding="utf-8")]
        assert defined == [owner], f"{name} is defined in {defined}, expected only {owner}"
