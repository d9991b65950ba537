"""The run record (votes.runs): it round-trips through JSON and refuses what does not hold together."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from votes.runs import NOT_RUN_STATUSES, RUN_STATUSES, CodeRun, RunLimits, RunRecordError

ROOT = Path(__file__).resolve().parents[1]


def _full_run() -> CodeRun:
    return CodeRun(language="python", status="runtime_error", limits=RunLimits(wall_s=2.0, memory_mb=128),
                   exit_code=1, signal=None, stdout="héllo\n", stderr="Traceback ...\n", wall_s=0.0123,
                   cpu_s=0.01, compile_s=None, truncated=False, blocks=(0, 2), code="print('x')\n",
                   runner="python", runner_version="Python 3.11.2", sandbox="bubblewrap 0.8.0", stdin="1 2\n")


def test_a_run_round_trips_through_json() -> None:
    run = _full_run()
    data = json.loads(json.dumps(run.to_dict()))
    assert CodeRun.from_dict(data) == run
    assert data["blocks"] == [0, 2] and data["limits"]["memory_mb"] == 128


def test_every_status_is_accepted_and_not_run_statuses_say_so() -> None:
    for status in RUN_STATUSES:
        run = CodeRun(language="c", status=status)
        assert run.ran == (status not in NOT_RUN_STATUSES)
    assert CodeRun(language=None, status="no_code").ran is False


@pytest.mark.parametrize("bad", [
    {"status": "exploded"},
    {"exit_code": "1"},
    {"exit_code": True},
    {"signal": "KILL"},
    {"wall_s": -1},
    {"cpu_s": float("nan")},
    {"blocks": [-1]},
    {"blocks": ["0"]},
    {"truncated": "no"},
    {"stdout": None},
    {"language": ""},
    {"limits": {"wall_s": 0}},
    {"limits": {"memory_mb": 1.5}},
    {"limits": {"bogus": 1}},
    {"limits": [1, 2]},
    {"unknown_field": 1},
])
def test_a_damaged_record_raises_a_value_error(bad: dict) -> None:
    data = {**_full_run().to_dict(), **bad}
    with pytest.raises(RunRecordError):
        CodeRun.from_dict(data)
    assert issubclass(RunRecordError, ValueError)


def test_a_record_needs_language_and_status() -> None:
    with pytest.raises(RunRecordError, match="status"):
        CodeRun.from_dict({"language": "python"})
    with pytest.raises(RunRecordError):
        CodeRun.from_dict("not a mapping")


def test_limits_refuse_nonsense() -> None:
    for field, value in (("wall_s", 0), ("cpu_s", -1.0), ("max_processes", 0), ("max_output_bytes", True)):
        with pytest.raises(RunRecordError):
            RunLimits(**{field: value})


def test_votes_room_imports_nothing_outside_votes() -> None:
    tree = ast.parse((ROOT / "votes" / "runs.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] in ("__future__", "votes", "dataclasses", "math", "typing"), node.module
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] in ("math", "json"), alias.name
