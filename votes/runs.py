"""The record of one code run: what ran, in which language, under which limits, and what came out.

Owned by the votes room because it is stored with the battle whose answer it ran; the execution room in
``serving.execution`` produces it. ``to_dict``/``from_dict`` are the stored form (JSON-safe) and round-trip;
``from_dict`` validates, so a damaged row raises :class:`RunRecordError` instead of loading half a run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from votes.stored import record_fields

# What a run came to. The first group are runs of a program; the second are runs that never started,
# kept as results so a UI can say why on that side instead of catching exceptions.
#   ok              the program exited with status 0
#   compile_error   the compiler (or TypeScript's transpiler) rejected the code; its output is in stderr
#   runtime_error   the program exited non-zero or died by a signal that is none of the limits below
#   timeout         the wall-clock limit (limits.wall_s) was reached; the whole sandbox was killed
#   cpu_limit       the CPU-time limit (limits.cpu_s) was reached (SIGXCPU, then SIGKILL)
#   memory_limit    an allocation failed against limits.memory_mb (the language's out-of-memory error)
#   output_limit    stdout + stderr passed limits.max_output_bytes; the sandbox was killed, output cut
#   no_code         the answer holds no code block to run
#   unsupported     the code's language has no runner (stderr lists the runners that exist)
#   unavailable     the runner's toolchain or the sandbox cannot run here (stderr says why)
#   sandbox_error   the sandbox itself failed to start the run (stderr has its message)
#   rendered        an HTML page, shown to the voter in a sandboxed frame of the arena page (nothing ran on
#                   the server; ``code`` is the page)
RUN_STATUSES: tuple[str, ...] = (
    "ok", "compile_error", "runtime_error", "timeout", "cpu_limit", "memory_limit", "output_limit",
    "no_code", "unsupported", "unavailable", "sandbox_error", "rendered",
)
# Statuses of runs that never started a program: nothing ran, so there are no outputs to judge.
NOT_RUN_STATUSES: tuple[str, ...] = ("no_code", "unsupported", "unavailable", "sandbox_error", "rendered")


class RunRecordError(ValueError):
    """A run record that does not hold together (a bad field, an unknown status, a damaged stored row)."""


def _check_number(name: str, value: Any, *, integer: bool = False, positive: bool = True) -> None:
    ok_types = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_types) or not math.isfinite(value):
        raise RunRecordError(f"{name} must be a {'whole' if integer else 'finite'} number, got {value!r}")
    if positive and value <= 0:
        raise RunRecordError(f"{name} must be positive, got {value!r}")
    if not positive and value < 0:
        raise RunRecordError(f"{name} must not be negative, got {value!r}")


@dataclass(frozen=True)
class RunLimits:
    """The limits a run ran under. Defaults suit a voter's Run button: small programs, quick answers."""

    wall_s: float = 5.0  # wall-clock time of the program (compilation has its own budget below)
    cpu_s: float = 5.0  # CPU time of the program's main process
    memory_mb: int = 256  # writable memory (heap, stacks) of each process
    max_processes: int = 32  # processes and threads in the sandbox at once, its init included
    max_output_bytes: int = 65536  # stdout + stderr together; past it the run is killed, output cut
    tmp_mb: int = 64  # size of the private writable temp dir (it lives in memory)
    compile_wall_s: float = 30.0  # wall-clock budget of a compilation step, where the language has one

    def __post_init__(self) -> None:
        for name in ("wall_s", "cpu_s", "compile_wall_s"):
            _check_number(name, getattr(self, name))
        for name in ("memory_mb", "max_processes", "max_output_bytes", "tmp_mb"):
            _check_number(name, getattr(self, name), integer=True)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> RunLimits:
        return cls(**record_fields(cls, data, RunRecordError, label="run limits", kind="run limit"))


@dataclass(frozen=True)
class CodeRun:
    """One run of an answer's code. Build it and it is checked; an invalid one raises RunRecordError."""

    language: str | None  # the canonical language name (python, javascript, ...); None when no code
    status: str  # one of RUN_STATUSES
    limits: RunLimits = field(default_factory=RunLimits)
    exit_code: int | None = None  # the program's exit status; None when it died by a signal or never ran
    signal: str | None = None  # e.g. "SIGKILL" when the program died by a signal
    stdout: str = ""
    stderr: str = ""  # for compile_error: the compiler's output; for not-run statuses: the reason
    wall_s: float = 0.0  # the program's wall-clock time (compilation excluded)
    cpu_s: float = 0.0  # the program's CPU time (user + system, its waited-for children included)
    compile_s: float | None = None  # wall-clock time of the compilation step, where there was one
    truncated: bool = False  # stdout/stderr were cut at limits.max_output_bytes (a marker says where)
    blocks: tuple[int, ...] = ()  # indices (0-based, in answer order) of the fenced blocks that ran
    code: str = ""  # the source that ran, as the blocks were joined
    runner: str = ""  # the runner's name, e.g. "python"
    runner_version: str = ""  # e.g. "Python 3.11.2"
    sandbox: str = ""  # "bubblewrap 0.8.0", or "none (unsafe)" when run without a sandbox
    stdin: str | None = None  # what was fed on stdin, if anything

    def __post_init__(self) -> None:
        if self.status not in RUN_STATUSES:
            raise RunRecordError(f"unknown run status {self.status!r}; expected one of {', '.join(RUN_STATUSES)}")
        if not isinstance(self.limits, RunLimits):
            raise RunRecordError(f"limits must be RunLimits, got {type(self.limits).__name__}")
        if self.language is not None and (not isinstance(self.language, str) or not self.language):
            raise RunRecordError(f"language must be a non-empty string or None, got {self.language!r}")
        if self.exit_code is not None and (isinstance(self.exit_code, bool) or not isinstance(self.exit_code, int)):
            raise RunRecordError(f"exit_code must be an integer or None, got {self.exit_code!r}")
        if self.signal is not None and not (isinstance(self.signal, str) and self.signal.startswith("SIG")):
            raise RunRecordError(f"signal must be a name like 'SIGKILL' or None, got {self.signal!r}")
        for name in ("stdout", "stderr", "code", "runner", "runner_version", "sandbox"):
            if not isinstance(getattr(self, name), str):
                raise RunRecordError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")
        if self.stdin is not None and not isinstance(self.stdin, str):
            raise RunRecordError(f"stdin must be a string or None, got {type(self.stdin).__name__}")
        _check_number("wall_s", self.wall_s, positive=False)
        _check_number("cpu_s", self.cpu_s, positive=False)
        if self.compile_s is not None:
            _check_number("compile_s", self.compile_s, positive=False)
        if not isinstance(self.truncated, bool):
            raise RunRecordError(f"truncated must be true or false, got {self.truncated!r}")
        blocks = self.blocks
        if isinstance(blocks, list):  # from JSON
            object.__setattr__(self, "blocks", tuple(blocks))
        if not isinstance(self.blocks, tuple) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in self.blocks):
            raise RunRecordError(f"blocks must be block indices (whole numbers >= 0), got {blocks!r}")

    @property
    def ran(self) -> bool:
        """True when a program was started (whatever came of it)."""
        return self.status not in NOT_RUN_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """The stored form: plain JSON types only (lists for tuples, a dict for the limits)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["limits"] = self.limits.to_dict()
        out["blocks"] = list(self.blocks)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> CodeRun:
        values = record_fields(cls, data, RunRecordError, label="a code run", kind="code run",
                               required=("language", "status"))
        if "limits" in values:
            values["limits"] = RunLimits.from_dict(values["limits"])
        try:
            return cls(**values)
        except TypeError as exc:  # a field of the wrong shape that the checks above did not name
            raise RunRecordError(f"bad code run: {exc}") from exc


# The battle side whose answer ran, named as the winner labels name them.
RUN_SIDES: tuple[str, ...] = ("model_a", "model_b")


@dataclass(frozen=True)
class BattleRun:
    """One run in a battle: whose answer (side), of which turn, when, and what came of it.

    A battle keeps every run its voter asked for before the vote, in the order they were asked.
    """

    side: str  # model_a | model_b
    turn: int  # 1-based turn whose answer ran
    run: CodeRun
    started_at: str = ""  # when it was asked for (UTC, ISO 8601)
    queued_s: float = 0.0  # time it waited for a slot of the arena's run queue

    def __post_init__(self) -> None:
        if self.side not in RUN_SIDES:
            raise RunRecordError(f"run side must be one of {', '.join(RUN_SIDES)}, got {self.side!r}")
        _check_number("turn", self.turn, integer=True)
        if not isinstance(self.run, CodeRun):
            raise RunRecordError(f"run must be a CodeRun, got {type(self.run).__name__}")
        if not isinstance(self.started_at, str):
            raise RunRecordError(f"started_at must be a string, got {type(self.started_at).__name__}")
        _check_number("queued_s", self.queued_s, positive=False)

    def to_dict(self) -> dict[str, Any]:
        return {"side": self.side, "turn": self.turn, "started_at": self.started_at, "queued_s": self.queued_s,
                "run": self.run.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> BattleRun:
        values = record_fields(cls, data, RunRecordError, label="a battle run", kind="battle run",
                               required=("side", "turn", "run"))
        return cls(**{**values, "run": CodeRun.from_dict(values["run"])})


def parse_runs(value: Any) -> tuple[BattleRun, ...]:
    """A battle's runs from what stores and files hold: None/empty, a list of mappings, or its JSON text.

    Raises :class:`RunRecordError` naming the first bad run (its position, 0-based) and what is wrong.
    """
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RunRecordError(f"runs: not JSON ({exc.msg} at character {exc.pos})") from exc
        if value is None:
            return ()
    if not isinstance(value, (list, tuple)):
        raise RunRecordError(f"runs must be a list of runs, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, BattleRun):
            out.append(item)
            continue
        try:
            out.append(BattleRun.from_dict(item))
        except RunRecordError as exc:
            raise RunRecordError(f"run {i}: {exc}") from exc
    return tuple(out)


def runs_json(runs: tuple[BattleRun, ...], *, ascii_only: bool = False) -> str | None:
    """The stored form of a battle's runs: JSON text, or None for a battle without runs. ``ascii_only``
    escapes every non-ASCII character (for text holding a lone surrogate, which UTF-8 cannot store)."""
    if not runs:
        return None
    return json.dumps([r.to_dict() for r in runs], ensure_ascii=ascii_only)
