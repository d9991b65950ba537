"""What an execution-aware judge is shown of a code run: one block after each answer, in words.

BigCodeReward (Zhuo et al., arXiv 2510.08697) measured that judges given the execution results of the
answers' code agree with human preference more than judges reading the code alone. Here the judge's
usual prompt gets, after each answer, a block saying what running that answer's code came to: the
language and the blocks that ran, the outcome (exit status, or which limit stopped it), the time, and
stdout and stderr, cut (head and tail, with a marker) to one budget per run, so that both answers and
both runs fit a small judge's context (the local judge has 4096 tokens);
``serving.judge.EXEC_USER_TEMPLATE`` places the block. An answer
whose code did not run (no code, no runner for its language, an HTML page) gets "no code was run" and
the reason, never an error. The plain prompt is untouched: these texts are used only with runs.
"""

from __future__ import annotations

from votes.runs import CodeRun

# The paragraph the execution-aware judge's system prompt adds before its instructions on the verdict.
EXECUTION_GUIDANCE = """Each answer's code was run in a sandbox before you judge it: no network, no input \
on stdin, a few seconds and a few hundred megabytes at most. What came of each run follows the answer: \
the outcome, standard output and standard error. Use it as evidence. Code that does not compile, crashes, \
prints wrong results or runs into a limit does not work as given; output showing that the code does what \
was asked counts for it. A run that prints nothing may only define functions, which proves little, and a \
failure caused by the sandbox itself (no input, no network, a missing file) is not the answer's fault. \
Where no code was run, judge that answer by reading it."""

# How the outcome of a program that ran is told, by CodeRun status.
_OUTCOME = {
    "ok": "it ran and exited with status 0",
    "runtime_error": "it failed at run time",
    "compile_error": "it did not compile (the compiler's messages are its standard error below)",
    "timeout": "it was stopped at the wall-clock limit of {wall_s:g} s (timeout)",
    "cpu_limit": "it was stopped at the CPU-time limit of {cpu_s:g} s",
    "memory_limit": "it ran out of memory (limit {memory_mb} MB per process)",
    "output_limit": "it was stopped when its output passed {max_output_bytes} bytes",
}


def cut_middle(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters: its head and tail (an error's last lines say most), with a
    marker saying how much was left out."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return (text[:head] + f"\n[... {len(text) - limit} characters of output cut here, not shown to the judge ...]\n"
            + text[len(text) - tail:])


def _blocks(run: CodeRun) -> str:
    if not run.blocks:
        return ""
    numbers = [str(i + 1) for i in run.blocks]
    if len(numbers) == 1:
        return f", code block {numbers[0]} of the answer"
    return f", code blocks {', '.join(numbers[:-1])} and {numbers[-1]} of the answer, joined in that order"


def _outcome(run: CodeRun) -> str:
    text = _OUTCOME.get(run.status, run.status.replace("_", " ")).format(**run.limits.to_dict())
    # A limit's kill signal says nothing the outcome does not; a crash's signal (SIGSEGV) does.
    if run.status in ("runtime_error", "compile_error"):
        if run.exit_code is not None:
            text += f"; exit status {run.exit_code}"
        elif run.signal:
            text += f"; killed by {run.signal}"
    return text


def _not_run_reason(run: CodeRun) -> str:
    if run.status == "no_code":
        return run.stderr.strip().removeprefix("nothing to run: ") or "the answer holds no code"
    if run.language == "html":
        return "the answer is an HTML page, which is not run here"
    if run.status == "unsupported":
        return f"there is no runner for {run.language or 'its language'} here"
    if run.status == "unavailable":
        return f"the {run.language} runner is not available here"
    if run.status == "sandbox_error":
        return "the sandbox failed to start it"
    return run.status.replace("_", " ")


def _budgets(out: int, err: int, limit: int) -> tuple[int, int]:
    """Characters of stdout and of stderr to show within ``limit`` together: each gets half, and what one
    does not need goes to the other."""
    half = limit // 2
    if out + err <= limit:
        return out, err
    if out <= half:
        return out, limit - out
    if err <= half:
        return limit - err, err
    return half, limit - half


def _stream(name: str, text: str, limit: int) -> str:
    if not text:
        return f"{name}: (empty)"
    return f"{name}:\n{cut_middle(text, limit)}"


def describe_run(run: CodeRun | None, *, max_chars: int = 1500) -> str:
    """The judge's view of one run: plain lines, then stdout and stderr cut to ``max_chars`` together."""
    if run is None:
        return "No code was run: the answer's code was not executed."
    if not run.ran:
        return f"No code was run: {cut_middle(_not_run_reason(run), 300)}"
    lines = [f"Ran: {run.language}{_blocks(run)}", f"Outcome: {_outcome(run)}",
             f"Time: {run.wall_s:.2f} s"]
    if run.truncated:
        lines.append("Note: the output passed the sandbox's limit and was cut there.")
    out, err = (text.strip("\n").rstrip() if text.strip() else "" for text in (run.stdout, run.stderr))
    out_chars, err_chars = _budgets(len(out), len(err), max_chars)
    lines += [_stream("Standard output", out, out_chars), _stream("Standard error", err, err_chars)]
    return "\n".join(lines)
