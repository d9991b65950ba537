"""One small runner per language, all with the same interface: find the toolchain, plan the steps.

A runner does not run anything itself: :meth:`Runner.plan` turns code into a :class:`RunPlan` (files,
an optional compile command, the run command, environment, folders to bind), which
``serving.execution.run`` hands to the sandbox. :meth:`Runner.availability` says whether the toolchain
is there and visible to the sandbox, with the reason when not; the version is asked inside the sandbox,
so "available" means a program of that language can actually start there.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass

from serving.execution.sandbox import Tool, find_tool, sandbox_python, tool_at
from votes.runs import RunLimits

# Compilers need more room than the programs they build; these are their step's limits.
COMPILE_MEMORY_MB = 2048
COMPILE_PROCESSES = 64


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str = ""  # why not, when not
    version: str = ""  # the toolchain's version line, when available


@dataclass(frozen=True)
class RunPlan:
    """How to compile (optionally) and run code in the sandbox's work dir (relative paths)."""

    files: tuple[tuple[str, str], ...]  # (file name, content)
    run: tuple[str, ...]
    compile: tuple[str, ...] | None = None
    compile_ok_exit_codes: tuple[int, ...] = (0,)  # compile exit statuses after which the program runs
    env: tuple[tuple[str, str], ...] = ()
    binds: tuple[str, ...] = ()  # host folders the toolchain needs, bound read-only at the same path
    address_space_mb: int = 1024  # virtual memory headroom over limits.memory_mb (runtimes reserve a lot)
    compile_address_space_mb: int = 4096
    tmp_mb: int = 0  # the work dir needs at least this much (compilers' caches), over limits.tmp_mb


class Runner(ABC):
    """A language's toolchain. Subclasses name their tools and build the plan."""

    language: str = ""
    name: str = ""
    tools: tuple[str, ...] = ()  # programs looked up on PATH, in this order
    version_args: tuple[str, ...] = ("--version",)

    def find(self) -> dict[str, Tool] | str:
        """The runner's programs, or the reason one is missing."""
        found: dict[str, Tool] = {}
        for tool in self.tools:
            got = find_tool(tool)
            if isinstance(got, str):
                return got
            found[tool] = got
        return found

    def version_command(self, tools: dict[str, Tool]) -> tuple[str, ...]:
        return (tools[self.tools[0]].path, *self.version_args)

    def binds(self, tools: dict[str, Tool]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b for t in tools.values() for b in t.binds))

    @abstractmethod
    def plan(self, code: str, tools: dict[str, Tool], limits: RunLimits) -> RunPlan: ...


class PythonRunner(Runner):
    language = name = "python"
    tools = ("python3",)

    def find(self) -> dict[str, Tool] | str:
        got = sandbox_python()
        return got if isinstance(got, str) else {"python3": got}

    def plan(self, code: str, tools: dict[str, Tool], limits: RunLimits) -> RunPlan:
        # -u: output reaches the voter as it is printed, even when a timeout kills the program.
        # -E -s: no PYTHON* variables, no user site-packages.
        return RunPlan(files=(("main.py", code),), run=(tools["python3"].path, "-u", "-E", "-s", "main.py"),
                       binds=self.binds(tools))


class JavaScriptRunner(Runner):
    language = "javascript"
    name = "node"
    tools = ("node",)

    def plan(self, code: str, tools: dict[str, Tool], limits: RunLimits) -> RunPlan:
        heap = max(16, limits.memory_mb * 3 // 4)  # V8 fails with its own clear message before the rlimit
        return RunPlan(files=(("main.js", code),),
                       run=(tools["node"].path, f"--max-old-space-size={heap}", "main.js"),
                       binds=self.binds(tools), address_space_mb=4096)


@functools.lru_cache(maxsize=8)
def _tsc_version(tsc: str) -> tuple[int, int]:
    return _node_major(_host_version(tsc, "--version"))


def _node_major(version: str) -> tuple[int, int]:
    m = re.search(r"v?(\d+)\.(\d+)", version)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


class TypeScriptRunner(Runner):
    """tsc where it is installed; else node's own type stripping (node >= 22.6)."""

    language = "typescript"
    name = "typescript"
    tools = ("node",)

    def find(self) -> dict[str, Tool] | str:
        node = find_tool("node")
        if isinstance(node, str):
            return node
        tsc = find_tool("tsc")
        if isinstance(tsc, Tool):
            return {"node": node, "tsc": tsc}
        version = _host_version(node.path, "--version")
        if _node_major(version) >= (22, 6):
            return {"node": node}
        return (f"no TypeScript compiler: tsc not found ({tsc}) and node {version or '?'} has no type "
                "stripping (needs node >= 22.6); install it with `npm install -g typescript`")

    def version_command(self, tools: dict[str, Tool]) -> tuple[str, ...]:
        return (tools["tsc"].path, "--version") if "tsc" in tools else (tools["node"].path, "--version")

    def plan(self, code: str, tools: dict[str, Tool], limits: RunLimits) -> RunPlan:
        heap = max(16, limits.memory_mb * 3 // 4)
        node = tools["node"].path
        if "tsc" in tools:
            # Types are not checked (--noCheck, TypeScript >= 5.6): an answer using node's require() or
            # process would fail for want of @types/node, which node's own type stripping ignores too.
            # Syntax errors still stop the build. An older tsc checks types but emits anyway (exit 2).
            tsc = tools["tsc"].path
            no_check = _tsc_version(tsc) >= (5, 6)
            return RunPlan(files=(("main.ts", code),),
                           compile=(tsc, *(("--noCheck",) if no_check else ()), "--target", "es2022", "--module",
                                    "commonjs", "--outDir", ".", "main.ts"),
                           compile_ok_exit_codes=(0,) if no_check else (0, 2),
                           run=(node, f"--max-old-space-size={heap}", "main.js"), binds=self.binds(tools),
                           address_space_mb=4096, compile_address_space_mb=8192)
        return RunPlan(files=(("main.ts", code),),
                       run=(node, "--experimental-strip-types", "--no-warnings", f"--max-old-space-size={heap}",
                            "main.ts"), binds=self.binds(tools), address_space_mb=4096)


class CRunner(Runner):
    language = "c"
    name = "gcc"
    tools = ("gcc",)

    def plan(self, code: str, tools: dict[str, Tool], limits: RunLimits) -> RunPlan:
        return RunPlan(files=(("main.c", code),),
                       compile=(tools["gcc"].path, "-O2", "-std=gnu17", "-o", "main", "main.c", "-lm"),
                       run=("./main",), binds=self.binds(tools))


class CppRunner(Runner):
    language = "cpp"
    name = "g++"
    tools = ("g++",)

    def plan(self, code: str, tools: dict[str, Tool], limits: RunLimits) -> RunPlan:
        return RunPlan(files=(("main.cpp", code),),
                       compile=(tools["g++"].path, "-O2", "-std=gnu++17", "-o", "main", "main.cpp"),
                       run=("./main",), binds=self.binds(tools))


class RustRunner(Runner):
    """rustc; a rustup proxy is resolved to its toolchain's own rustc (the sysroot is bound)."""

    language = "rust"
    name = "rustc"
    tools = ("rustc",)

    def find(self) -> dict[str, Tool] | str:
        got = find_tool("rustc")
        if isinstance(got, str) or not got.path.startswith("/usr/"):
            # Likely a rustup proxy (~/.cargo/bin/rustc): it needs ~/.rustup, so call the toolchain's own
            # rustc and bind its sysroot instead.
            proxy = shutil.which("rustc")
            sysroot = _host_version(proxy, "--print", "sysroot") if proxy else ""
            real = tool_at(f"{sysroot}/bin/rustc") if sysroot.startswith("/") else None
            if real is not None:
                got = Tool(path=real.path, binds=() if real.path.startswith("/usr/") else (sysroot,))
            elif sysroot:
                return (f"rustc's toolchain ({sysroot}) is not readable by the sandbox's uid; install rustc "
                        "system-wide (apt-get install rustc) or run the arena as a non-root user")
        if isinstance(got, str):
            return got
        cc = find_tool("cc")
        if isinstance(cc, str):
            return f"rustc needs a linker: {cc}"
        return {"rustc": got, "cc": cc}

    def plan(self, code: str, tools: dict[str, Tool], limits: RunLimits) -> RunPlan:
        return RunPlan(files=(("main.rs", code),),
                       compile=(tools["rustc"].path, "-O", "--edition", "2021", "-C", "codegen-units=4",
                                "-o", "main", "main.rs"),
                       run=("./main",), binds=self.binds(tools))


# A JVM sized for a small box: one GC thread, a client compiler, a small code cache and class space, so
# it starts under the process and memory limits (its defaults reserve a quarter of the host's RAM).
JVM_FLAGS: tuple[str, ...] = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:CICompilerCount=1",
                              "-XX:ReservedCodeCacheSize=32m", "-XX:CompressedClassSpaceSize=64m",
                              "-XX:MaxMetaspaceSize=128m", "-Xss1m", "-Xshare:auto")


class JavaRunner(Runner):
    language = "java"
    name = "javac"
    tools = ("javac", "java")

    def version_command(self, tools: dict[str, Tool]) -> tuple[str, ...]:
        return (tools["javac"].path, *(f"-J{f}" for f in JVM_FLAGS), "-version")

    def plan(self, code: str, tools: dict[str, Tool], limits: RunLimits) -> RunPlan:
        public = re.search(r"^\s*public\s+(?:final\s+|abstract\s+)*class\s+(\w+)", code, re.MULTILINE)
        main = _java_main_class(code)
        file_name = (public.group(1) if public else main or "Main") + ".java"
        heap = max(16, limits.memory_mb * 3 // 4)
        return RunPlan(files=((file_name, code),),
                       compile=(tools["javac"].path, "-J-Xmx512m", *(f"-J{f}" for f in JVM_FLAGS), "-encoding",
                                "UTF-8", "-d", ".", file_name),
                       run=(tools["java"].path, f"-Xmx{heap}m", "-Xms8m", *JVM_FLAGS, "-cp", ".",
                            main or file_name[:-5]),
                       binds=self.binds(tools), address_space_mb=1536, compile_address_space_mb=4096)


def _java_main_class(code: str) -> str | None:
    """The class whose body holds `static void main(` (the nearest class declared before it)."""
    m = re.search(r"\bstatic\s+(?:public\s+)?void\s+main\s*\(", code)
    if not m:
        return None
    classes = list(re.finditer(r"\b(?:class|record|enum|interface)\s+(\w+)", code[: m.start()]))
    return classes[-1].group(1) if classes else None


class BashRunner(Runner):
    language = "bash"
    name = "bash"
    tools = ("bash",)

    def plan(self, code: str, tools: dict[str, Tool], limits: RunLimits) -> RunPlan:
        return RunPlan(files=(("main.sh", code),), run=(tools["bash"].path, "main.sh"), binds=self.binds(tools))


class GoRunner(Runner):
    """go build of one file. Go compiles its standard library into an empty cache on every run (a few
    seconds of CPU): the sandbox keeps nothing between runs."""

    language = "go"
    name = "go"
    tools = ("go",)
    version_args = ("version",)

    def plan(self, code: str, tools: dict[str, Tool], limits: RunLimits) -> RunPlan:
        env = (("GOCACHE", "/tmp/.gocache"), ("GOPATH", "/tmp/.gopath"), ("GO111MODULE", "off"),
               ("GOTOOLCHAIN", "local"), ("CGO_ENABLED", "0"), ("GOFLAGS", "-buildvcs=false"),
               ("GOMAXPROCS", "2"))
        return RunPlan(files=(("main.go", code),), compile=(tools["go"].path, "build", "-o", "main", "main.go"),
                       run=("./main",), env=env, binds=self.binds(tools), address_space_mb=4096,
                       compile_address_space_mb=8192, tmp_mb=512)


RUNNERS: tuple[Runner, ...] = (PythonRunner(), JavaScriptRunner(), TypeScriptRunner(), CRunner(), CppRunner(),
                               RustRunner(), JavaRunner(), BashRunner(), GoRunner())
BY_LANGUAGE: dict[str, Runner] = {r.language: r for r in RUNNERS}
LANGUAGES: tuple[str, ...] = tuple(BY_LANGUAGE)


def runner_for(language: str | None) -> Runner | None:
    return BY_LANGUAGE.get(language or "")


# What a toolchain query on the host may see: enough to find a rustup toolchain, no keys.
HOST_QUERY_ENV: frozenset[str] = frozenset({"PATH", "HOME", "RUSTUP_HOME", "CARGO_HOME", "RUSTUP_TOOLCHAIN", "LANG"})


def _host_version(*argv: str) -> str:
    """A trusted toolchain's answer to a query, run outside the sandbox (it runs no answer's code)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL,
                             env={k: v for k, v in os.environ.items() if k in HOST_QUERY_ENV})
    except (OSError, subprocess.SubprocessError):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""


@functools.cache
def _cached_find(language: str) -> dict[str, Tool] | str:
    return BY_LANGUAGE[language].find()


def tools_for(language: str, *, refresh: bool = False) -> dict[str, Tool] | str:
    if refresh:
        _cached_find.cache_clear()
    return _cached_find(language)
