"""`codearena sandbox`: which languages can run here, and run an answer's code the way the arena does."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "list the code runners, or run an answer's code in the sandbox"
DESCRIPTION = """Run the code of answers as the arena's Run buttons, `duel --execute` and `judge --execute` do.

  list   each language's runner: available or not, and why (toolchain missing, no sandbox here)
  run    run FILE: a Markdown answer (its fenced blocks of one language, joined in order) or one plain
         source file (language from --language, the suffix, or a guess), and print the result

The sandbox is bubblewrap (Debian/Ubuntu package `bubblewrap`): no network, a read-only system, a private
temp dir, no view of $HOME, the project, the vote store or the environment's variables, and limits on
time, CPU, memory, processes and output. Where it cannot run (no user namespaces), nothing runs, unless
--unsafe-no-sandbox says to run the code as you, unprotected.

`run` exits 0 when the program ran, whatever its own exit status (that is in the result: status ok,
compile_error, runtime_error, timeout, cpu_limit, memory_limit, output_limit), and 2 when nothing could
run (no code, no runner for the language, no sandbox).

examples:
  codearena sandbox list
  codearena sandbox run answer.md --language python --stdin input.txt
  codearena sandbox run main.c --timeout 2 --format json"""


class SandboxCommandError(ValueError):
    """Nothing ran: the reason, for the CLI's one-line error."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="list the runners and whether each can run here")
    lst.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    lst.add_argument("--unsafe-no-sandbox", action="store_true",
                     help="list what would run without a sandbox (see `run --unsafe-no-sandbox`)")
    run = sub.add_parser("run", help="run the code of FILE in the sandbox and print the result",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("file", metavar="FILE", help="a Markdown answer or a source file")
    run.add_argument("--language", default=None, metavar="L",
                     help="the code's language (python, javascript, typescript, c, cpp, rust, java, bash, go "
                     "or an alias: py, js, c++, rs, sh, ...); for a Markdown answer, the language of untagged "
                     "blocks and the one preferred among several")
    run.add_argument("--stdin", default=None, metavar="F", help="feed file F to the program's stdin ('-': ours)")
    run.add_argument("--timeout", type=float, default=None, metavar="S",
                     help="wall-clock and CPU limit of the program in seconds (default 5)")
    run.add_argument("--memory", type=int, default=None, metavar="MB",
                     help="memory limit of each process in MB (default 256)")
    run.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    run.add_argument("--unsafe-no-sandbox", action="store_true",
                     help="DANGEROUS: run without a sandbox where none is available; the code can then read "
                     "your files and keys, use the network and act as you")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args)
    return _run(args)


def _list(args: argparse.Namespace) -> int:
    from serving.execution import list_runners, sandbox_status

    status = sandbox_status()
    runners = list_runners(unsafe_no_sandbox=args.unsafe_no_sandbox)
    if args.format == "json":
        print(json.dumps({"sandbox": {"available": status.available, "backend": status.backend,
                                      "version": status.version, "reason": status.reason,
                                      "uid": status.host_uid},
                          "runners": [r.to_dict() for r in runners]}, indent=2))
        return 0
    if status.available:
        print(f"sandbox: {status.version}, available (code runs as uid {status.host_uid})")
    else:
        print(f"sandbox: unavailable: {status.reason}")
    width = max(len(r.language) for r in runners) + 2
    rwidth = max(len(r.runner) for r in runners) + 2
    print(f"{'language'.ljust(width)}{'runner'.ljust(rwidth)}available")
    for r in runners:
        state = f"yes: {r.version}" if r.available else f"no: {r.reason}"
        print(f"{r.language.ljust(width)}{r.runner.ljust(rwidth)}{state}")
    return 0


def _read_stdin(path: str | None) -> str | None:
    if path is None:
        return None
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SandboxCommandError(f"--stdin {path}: cannot read it ({exc})") from exc


def _run(args: argparse.Namespace) -> int:
    from serving.execution import run_file
    from serving.execution.sandbox import UNSAFE_WARNING
    from votes.runs import RunLimits

    overrides: dict[str, float | int] = {}
    if args.timeout is not None:
        if not args.timeout > 0:
            raise SandboxCommandError(f"--timeout {args.timeout:g}: must be a positive number of seconds")
        overrides.update(wall_s=args.timeout, cpu_s=args.timeout)
    if args.memory is not None:
        if args.memory < 16:
            raise SandboxCommandError(f"--memory {args.memory}: must be at least 16 MB")
        overrides["memory_mb"] = args.memory
    stdin = _read_stdin(args.stdin)
    if args.unsafe_no_sandbox:
        print(f"\n!!! {UNSAFE_WARNING} !!!\n", file=sys.stderr)
    result = run_file(args.file, language=args.language, stdin=stdin, limits=RunLimits(**overrides),
                      unsafe_no_sandbox=args.unsafe_no_sandbox)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    if not result.ran:
        raise SandboxCommandError(f"{args.file}: {result.status}: {result.stderr.strip()}")
    if args.format == "text":
        _print_text(result)
    return 0


def _print_text(result) -> None:  # noqa: ANN001 - a votes.runs.CodeRun, imported lazily
    exit_part = f"signal {result.signal}" if result.signal else f"exit code {result.exit_code}"
    compile_part = f", compiled in {result.compile_s:.2f} s" if result.compile_s is not None else ""
    print(f"{result.language} ({result.runner_version}) in {result.sandbox}: {result.status}, {exit_part}, "
          f"{result.wall_s:.3f} s wall, {result.cpu_s:.3f} s CPU{compile_part}"
          + (", output truncated" if result.truncated else ""))
    if result.blocks and len(result.blocks) > 1:
        print(f"ran blocks {', '.join(str(i) for i in result.blocks)} (joined in order)")
    for name in ("stdout", "stderr"):
        text = getattr(result, name)
        if text:
            print(f"--- {name} ---")
            print(text, end="" if text.endswith("\n") else "\n")
