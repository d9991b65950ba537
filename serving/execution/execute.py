"""Run an answer's code: extract it, pick its runner, run it in the sandbox, say what came of it.

Everything the code does ends as a :class:`votes.runs.CodeRun` with a status (compile errors, crashes,
timeouts and limit kills included); so do answers without code, languages without a runner and a
machine without a sandbox. Exceptions are left for bad input of the caller's (an unreadable file,
an unknown --language: :class:`ExecutionInputError`) and a full queue (:class:`QueueFull`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.execution import runners as rn
from serving.execution.extract import Extraction, extract_code, extract_source, normalise_language
from serving.execution.queue import RunQueue, default_queue
from serving.execution.sandbox import (
    Job,
    SandboxResult,
    SandboxUnavailable,
    Step,
    execute,
    sandbox_status,
)
from votes.runs import CodeRun, RunLimits

# Tests and the CLI use these small limits' defaults; the UI passes its own RunLimits.
DEFAULT_LIMITS = RunLimits()
UNSAFE_BACKEND = "none (unsafe)"


class ExecutionInputError(ValueError):
    """A run that cannot be asked for as given (a file that cannot be read, a language with no runner)."""


@dataclass(frozen=True)
class RunnerInfo:
    """One runner as `codearena sandbox list` shows it."""

    language: str
    runner: str
    available: bool
    reason: str  # why not, when not
    version: str

    def to_dict(self) -> dict[str, Any]:
        return {"language": self.language, "runner": self.runner, "available": self.available,
                "reason": self.reason, "version": self.version}


def _version_job(runner: rn.Runner, tools: dict[str, rn.Tool]) -> Job:
    return Job(files=(), binds=runner.binds(tools), steps=(Step(
        "run", runner.version_command(tools), wall_s=30.0, cpu_s=30.0, memory_mb=rn.COMPILE_MEMORY_MB,
        address_space_mb=rn.COMPILE_MEMORY_MB + 8192, max_processes=rn.COMPILE_PROCESSES),))


@functools.cache
def _runner_info(language: str, unsafe: bool) -> RunnerInfo:
    runner = rn.BY_LANGUAGE[language]
    tools = rn.tools_for(language)
    if isinstance(tools, str):
        return RunnerInfo(language, runner.name, False, tools, "")
    if not unsafe:
        status = sandbox_status()
        if not status.available:
            return RunnerInfo(language, runner.name, False, f"no sandbox: {status.reason}", "")
    # Asked inside the sandbox: "available" means the toolchain starts there, not only that it exists.
    result = execute(_version_job(runner, tools), unsafe_no_sandbox=unsafe)
    step = result.step("run")
    text = (result.stdout + "\n" + result.stderr).strip()
    if result.error or step is None or step.exit_code != 0:
        detail = result.error or (step.exec_error if step else None) or text or "no answer"
        return RunnerInfo(language, runner.name, False,
                          f"{runner.tools[0]} does not start in the sandbox: {detail.splitlines()[-1][:300]}", "")
    version = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return RunnerInfo(language, runner.name, True, "", version)


def runner_info(language: str, *, unsafe_no_sandbox: bool = False, refresh: bool = False) -> RunnerInfo:
    """Whether a language can run here (probed once per process; refresh=True asks again)."""
    lang = normalise_language(language) or ""
    if lang not in rn.BY_LANGUAGE:
        raise ExecutionInputError(f"no runner for language {language!r}; runners: {', '.join(rn.LANGUAGES)}")
    if refresh:
        _runner_info.cache_clear()
        rn.tools_for(lang, refresh=True)
        sandbox_status(refresh=True)
    return _runner_info(lang, unsafe_no_sandbox)


def list_runners(*, unsafe_no_sandbox: bool = False, refresh: bool = False) -> list[RunnerInfo]:
    if refresh:
        _runner_info.cache_clear()
        rn.tools_for("python", refresh=True)
        sandbox_status(refresh=True)
    return [_runner_info(lang, unsafe_no_sandbox) for lang in rn.LANGUAGES]


def available_languages(*, unsafe_no_sandbox: bool = False) -> frozenset[str]:
    return frozenset(i.language for i in list_runners(unsafe_no_sandbox=unsafe_no_sandbox) if i.available)


# Each language's words for "an allocation failed": the run hit limits.memory_mb.
_OUT_OF_MEMORY = re.compile(
    r"^MemoryError\b|JavaScript heap out of memory|Fatal process OOM|java\.lang\.OutOfMemoryError|"
    r"insufficient memory for the Java Runtime|std::bad_alloc|memory allocation of \d+ bytes failed|"
    r"fatal error: runtime: out of memory|Cannot allocate memory|x(m|re)alloc: cannot allocate|out of memory",
    re.MULTILINE | re.IGNORECASE)


def _not_run(status: str, language: str | None, message: str, limits: RunLimits, *,
             extraction: Extraction | None = None, runner: str = "", code: str = "",
             stdin: str | None = None) -> CodeRun:
    return CodeRun(language=language, status=status, limits=limits, stderr=message, runner=runner,
                   blocks=extraction.blocks if extraction else (), code=code, stdin=stdin)


def _steps(plan: rn.RunPlan, limits: RunLimits) -> tuple[Step, ...]:
    steps = []
    if plan.compile is not None:
        memory = max(limits.memory_mb, rn.COMPILE_MEMORY_MB)
        steps.append(Step("compile", plan.compile, wall_s=limits.compile_wall_s, cpu_s=limits.compile_wall_s,
                          memory_mb=memory, address_space_mb=memory + plan.compile_address_space_mb,
                          max_processes=max(limits.max_processes, rn.COMPILE_PROCESSES),
                          capture_bytes=limits.max_output_bytes, file_size_mb=max(64, limits.tmp_mb),
                          ok_exit_codes=plan.compile_ok_exit_codes))
    steps.append(Step("run", plan.run, wall_s=limits.wall_s, cpu_s=limits.cpu_s, memory_mb=limits.memory_mb,
                      address_space_mb=limits.memory_mb + plan.address_space_mb,
                      max_processes=limits.max_processes, stdin=True, file_size_mb=limits.tmp_mb))
    return tuple(steps)


# Interpreted languages reject a whole file before running any of it: that is their compile error.
# Python prints a compile-time SyntaxError without a "Traceback" header (a SyntaxError raised by eval()
# at run time has one); node's comes from its module wrapper (wrapSafe), not from the program's frames.
_PY_SYNTAX = re.compile(r"^(SyntaxError|IndentationError|TabError): .*\Z", re.MULTILINE)
_NODE_SYNTAX = re.compile(r"\A\S*main\.[jt]s:\d+\n(.*\n)*?SyntaxError: .*\n\s+at wrapSafe ")


def _syntax_error(language: str, stderr: str) -> bool:
    if language == "python":
        return "Traceback (most recent call last)" not in stderr and bool(_PY_SYNTAX.search(stderr.rstrip()))
    if language in ("javascript", "typescript"):
        return bool(_NODE_SYNTAX.search(stderr))
    return False


def _classify(result: SandboxResult, limits: RunLimits, language: str) -> tuple[str, str]:
    """The run's status and the text to add to stderr (a note on which limit, when one was hit)."""
    compile_step = result.step("compile")
    run_step = result.step("run")
    if compile_step is not None and run_step is None and not result.output_limit:
        if compile_step.timed_out:
            return "compile_error", f"\n[compilation stopped: it took longer than {limits.compile_wall_s:g} s]\n"
        return "compile_error", ""
    if result.output_limit:
        return "output_limit", ""
    if run_step is None:
        if result.deadline_kill:
            return "timeout", f"\n[stopped: the sandbox did not finish within {limits.wall_s:g} s]\n"
        return "sandbox_error", ""
    if run_step.exec_error:
        return "sandbox_error", run_step.exec_error
    if run_step.timed_out or result.deadline_kill:
        return "timeout", f"\n[stopped: wall-clock limit of {limits.wall_s:g} s]\n"
    if run_step.signal == "SIGXCPU" or (run_step.signal == "SIGKILL" and run_step.cpu_s >= limits.cpu_s - 0.05):
        return "cpu_limit", f"\n[stopped: CPU-time limit of {limits.cpu_s:g} s]\n"
    if run_step.exit_code == 0:
        return "ok", ""
    if run_step.exit_code == 1 and _syntax_error(language, result.stderr):
        return "compile_error", ""
    if _OUT_OF_MEMORY.search(result.stderr[-4000:]) or _OUT_OF_MEMORY.search(result.stdout[-2000:]):
        return "memory_limit", f"\n[memory limit: {limits.memory_mb} MB per process]\n"
    return "runtime_error", ""


def run_code(code: str, language: str, *, stdin: str | None = None, limits: RunLimits = DEFAULT_LIMITS,
             unsafe_no_sandbox: bool = False, blocks: tuple[int, ...] = (0,)) -> CodeRun:
    """Run code as language (any alias) in the sandbox. Every outcome is a CodeRun."""
    lang = normalise_language(language)
    runner = rn.runner_for(lang)
    if runner is None:
        return CodeRun(language=lang or None, status="unsupported", limits=limits, code=code, blocks=blocks,
                       stdin=stdin, stderr=f"no runner for {language!r}; runners: {', '.join(rn.LANGUAGES)}")
    assert lang is not None
    info = runner_info(lang, unsafe_no_sandbox=unsafe_no_sandbox)
    base: dict[str, Any] = {"language": lang, "limits": limits, "code": code, "blocks": blocks, "stdin": stdin,
                            "runner": runner.name, "runner_version": info.version}
    if not info.available:
        return CodeRun(status="unavailable", stderr=info.reason, **base)
    tools = rn.tools_for(lang)
    assert not isinstance(tools, str)
    plan = runner.plan(code, tools, limits)
    job = Job(files=tuple((name, content.encode("utf-8"), 0o644) for name, content in plan.files),
              steps=_steps(plan, limits), env=plan.env, binds=plan.binds,
              stdin=stdin.encode("utf-8") if stdin else None, max_output_bytes=limits.max_output_bytes,
              tmp_mb=max(limits.tmp_mb, plan.tmp_mb))
    try:
        result = execute(job, unsafe_no_sandbox=unsafe_no_sandbox)
    except SandboxUnavailable as exc:
        return CodeRun(status="unavailable", stderr=f"no sandbox: {exc}", **base)
    sandbox = result.backend
    if result.error:
        return CodeRun(status="sandbox_error", stderr=result.error, sandbox=sandbox, **base)
    status, note = _classify(result, limits, lang)
    compile_step = result.step("compile")
    run_step = result.step("run")
    if status == "compile_error" and run_step is None and compile_step is not None:
        output = (compile_step.output or "") + ("\n[compiler output cut]\n" if compile_step.output_truncated else "")
        return CodeRun(status=status, exit_code=compile_step.exit_code, signal=compile_step.signal,
                       stderr=output + note, compile_s=compile_step.wall_s, truncated=compile_step.output_truncated,
                       sandbox=sandbox, **base)
    return CodeRun(status=status, exit_code=run_step.exit_code if run_step else None,
                   signal=run_step.signal if run_step else ("SIGKILL" if result.output_limit else None),
                   stdout=result.stdout, stderr=result.stderr + note,
                   wall_s=run_step.wall_s if run_step else result.wall_s, cpu_s=run_step.cpu_s if run_step else 0.0,
                   compile_s=compile_step.wall_s if compile_step else None, truncated=result.truncated,
                   sandbox=sandbox, **base)


def run_extraction(extraction: Extraction, *, stdin: str | None = None, limits: RunLimits = DEFAULT_LIMITS,
                   unsafe_no_sandbox: bool = False) -> CodeRun:
    if extraction.kind == "none":
        return _not_run("no_code", None, f"nothing to run: {extraction.reason}", limits, extraction=extraction,
                        stdin=stdin)
    if extraction.kind == "html":
        return _not_run("unsupported", "html", "an HTML page: it renders in the page, it does not run here",
                        limits, extraction=extraction, code=extraction.code, stdin=stdin)
    assert extraction.language is not None
    return run_code(extraction.code, extraction.language, stdin=stdin, limits=limits,
                    unsafe_no_sandbox=unsafe_no_sandbox, blocks=extraction.blocks)


def run_answer(answer: str, *, language_hint: str | None = None, stdin: str | None = None,
               limits: RunLimits = DEFAULT_LIMITS, unsafe_no_sandbox: bool = False) -> CodeRun:
    """Run the code of a Markdown answer (the UI's and the duel's entry point). Never raises for the code."""
    runnable = available_languages(unsafe_no_sandbox=unsafe_no_sandbox)
    extraction = extract_code(answer, language_hint=language_hint, runnable=runnable)
    return run_extraction(extraction, stdin=stdin, limits=limits, unsafe_no_sandbox=unsafe_no_sandbox)


async def run_answer_async(answer: str, *, language_hint: str | None = None, stdin: str | None = None,
                           limits: RunLimits = DEFAULT_LIMITS, unsafe_no_sandbox: bool = False,
                           queue: RunQueue | None = None) -> CodeRun:
    """run_answer through the global run queue: waits for a slot without blocking the event loop.

    Raises QueueFull when the queue is full (say "busy, try again"; nothing ran, nothing to store).
    """
    return await (queue or default_queue()).run(run_answer, answer, language_hint=language_hint, stdin=stdin,
                                                limits=limits, unsafe_no_sandbox=unsafe_no_sandbox)


def run_file(path: str | Path, *, language: str | None = None, stdin: str | None = None,
             limits: RunLimits = DEFAULT_LIMITS, unsafe_no_sandbox: bool = False) -> CodeRun:
    """Run a file: a Markdown answer (its fenced blocks) or one plain source file. The CLI's entry point."""
    path = Path(path)
    if language is not None:
        lang = normalise_language(language)
        if lang not in rn.BY_LANGUAGE:
            raise ExecutionInputError(f"--language {language}: no runner for it; runners: {', '.join(rn.LANGUAGES)}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ExecutionInputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ExecutionInputError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    extraction = extract_source(text, path=path, language=language)
    return run_extraction(extraction, stdin=stdin, limits=limits, unsafe_no_sandbox=unsafe_no_sandbox)
