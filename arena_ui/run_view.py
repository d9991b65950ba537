"""What a run output panel says, as inert Markdown: a summary line of our own words, and everything that came
from the run (stdout, stderr, a reason) inside fenced blocks.

A program's output is untrusted text, as an answer is: it can print HTML, Markdown images or a fake "vote
stored" line. Each output goes into a fence longer than any run of backticks in it, so nothing in it can
close the fence early (CommonMark: a fence closes only on a line of at least as many backticks), and the
whole panel goes through :func:`arena_ui.render.safe_markdown` as a second wall.
"""

from __future__ import annotations

import re

from arena_ui.render import safe_markdown
from serving.execution import Extraction
from votes.runs import BattleRun, CodeRun, RunLimits

LANGUAGE_NAMES = {"python": "Python", "javascript": "JavaScript", "typescript": "TypeScript", "c": "C",
                  "cpp": "C++", "rust": "Rust", "java": "Java", "bash": "Bash", "go": "Go", "html": "HTML"}
_BACKTICKS = re.compile(r"`+")


def language_name(language: str | None) -> str:
    return LANGUAGE_NAMES.get(language or "", language or "code")


def fenced(text: str, info: str = "text") -> str:
    """``text`` as a fenced code block that nothing inside it can close."""
    longest = max((len(m.group(0)) for m in _BACKTICKS.finditer(text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{fence}{info}\n{body}{fence}\n"


def blocks_text(blocks: tuple[int, ...]) -> str:
    """Which fenced blocks of the answer ran, as a voter counts them (from 1)."""
    if not blocks:
        return ""
    numbers = [str(i + 1) for i in blocks]
    return f"block {numbers[0]}" if len(numbers) == 1 else f"blocks {', '.join(numbers)}"


def _seconds(s: float) -> str:
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def status_text(run: CodeRun) -> str:
    """The outcome in a few words (which limit, when one stopped it)."""
    lim = run.limits
    exit_part = f"exit code {run.exit_code}" if run.exit_code is not None else (
        f"killed by {run.signal}" if run.signal else "no exit code")
    return {
        "ok": "exit code 0",
        "runtime_error": f"failed: {exit_part}",
        "compile_error": "did not compile" + (f" (exit code {run.exit_code})" if run.exit_code else ""),
        "timeout": f"stopped: it ran past the {lim.wall_s:g} s time limit",
        "cpu_limit": f"stopped: it used the {lim.cpu_s:g} s of CPU time it may",
        "memory_limit": f"out of memory: the limit is {lim.memory_mb} MB",
        "output_limit": f"stopped: it printed more than {lim.max_output_bytes // 1024} KiB",
        "no_code": "nothing to run",
        "unsupported": "not run: no runner for it",
        "unavailable": "not run: it cannot run here",
        "sandbox_error": "not run: the sandbox failed",
        "rendered": "an HTML page, shown below in a sandboxed frame (no network)",
    }[run.status]


def run_markdown(record: BattleRun, *, note: str = "") -> str:
    """The panel after a run: what ran, how it ended, its time, and its outputs."""
    run = record.run
    what = f"**{language_name(run.language)}**"
    if run.blocks:
        what += f" ({blocks_text(run.blocks)} of the answer)"
    parts = [f"Ran {what}" if run.ran else what, f"**{status_text(run)}**"]
    if run.ran:
        timing = f"{_seconds(run.wall_s)} (CPU {_seconds(run.cpu_s)})"
        if run.compile_s is not None:
            timing += f", compiled in {_seconds(run.compile_s)}"
        parts.append(timing)
    if record.queued_s >= 0.05:
        parts.append(f"waited {_seconds(record.queued_s)} for a free slot")
    lines = [" · ".join(parts)]
    if run.status == "rendered":
        pass
    elif run.ran:
        if run.truncated:
            lines.append(f"*The output was cut at {run.limits.max_output_bytes // 1024} KiB.*")
        lines.append("**stdout**" if run.stdout else "**stdout**: *(nothing)*")
        if run.stdout:
            lines.append(fenced(run.stdout))
        if run.stderr:
            lines += ["**stderr**", fenced(run.stderr)]
    elif run.stderr:
        lines.append(fenced(run.stderr))
    if note:
        lines.append(f"*{note}*")
    return safe_markdown("\n\n".join(lines))


def limits_text(limits: RunLimits) -> str:
    return (f"at most {limits.wall_s:g} s, {limits.memory_mb} MB, {limits.max_output_bytes // 1024} KiB of "
            "output, no network")


def idle_markdown(extraction: Extraction, runnable: frozenset[str] | None, limits: RunLimits) -> str:
    """The panel before a run: what the button would run, or why there is nothing to run."""
    if extraction.kind == "none":
        return safe_markdown(f"**Nothing to run**: {extraction.reason}.")
    if extraction.kind == "html":
        return ("**An HTML page**: *Show page* renders it here, in a sandboxed frame (its own scripts run "
                "there; it cannot reach the network or this page).")
    name = language_name(extraction.language)
    if runnable is not None and extraction.language not in runnable:
        have = ", ".join(language_name(lang) for lang in sorted(runnable)) or "none"
        return safe_markdown(f"**Nothing to run here**: the answer's code is {name}, which has no runner on this "
                             f"arena (runners: {have}).")
    return safe_markdown(f"*Run* runs the **{name}** code ({blocks_text(extraction.blocks)}) in a sandbox: "
                         f"{limits_text(limits)}.")


RUNNING = "*Running... (the output appears here)*"
