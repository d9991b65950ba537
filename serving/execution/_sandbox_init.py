"""The sandbox's init: runs inside the sandbox as PID 1 (bwrap --as-pid-1), standard library only.

It is passed to the sandbox's Python as ``-c`` source with one argument, the steps as a Python literal,
so no file of the project is visible inside. For each step (a compilation, then the program) it forks a child, sets
the step's resource limits in the child, execs it, waits with the step's wall-clock deadline, and writes
one line per step (a dict literal) to the status fd. Being PID 1 is what makes the limits hold: when a step is over,
``kill(-1, SIGKILL)`` from PID 1 ends every other process of the namespace (background processes,
daemonised children), and when this init exits the kernel tears the whole PID namespace down.

Why not let bwrap's own init report? It folds a signal death into ``128 + signo``; a program that calls
``exit(137)`` would read as killed. wait4() here gives the real status, the CPU time and the peak memory.
"""

# Only cheap modules: this runs before every program, and json (via re) or signal (via enum) would
# double the interpreter's start-up time. _signal is the C module under signal.
import _signal
import os
import resource
import select
import sys
import time

SIGKILL = 9

LIMITS = {
    "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA,
    "as": resource.RLIMIT_AS,
    "nproc": resource.RLIMIT_NPROC,
    "fsize": resource.RLIMIT_FSIZE,
    "nofile": resource.RLIMIT_NOFILE,
    "core": resource.RLIMIT_CORE,
}


def _no_dump() -> None:
    # Without this, the sandboxed program (same uid) could open /proc/1/fd/N and write a forged status,
    # or ptrace this init. PR_SET_DUMPABLE = 4.
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError, ImportError):
        pass


def _child(step, env, cwd, out_fd, err_fd, in_fd, errpipe_w):
    """In the forked child: limits, fds, exec. Never returns."""
    try:
        os.setsid()
        for name, value in step["limits"].items():
            soft = int(value)
            hard = soft + 1 if name == "cpu" else soft  # SIGXCPU at the soft limit, SIGKILL one second on
            resource.setrlimit(LIMITS[name], (soft, hard))
        os.dup2(in_fd, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.closerange(3, errpipe_w)
        os.closerange(errpipe_w + 1, 65536)
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)  # Python ignores it; `prog | head` must work
        os.chdir(cwd)
        os.execve(step["argv"][0], step["argv"], env)
    except BaseException as exc:  # noqa: BLE001 - anything here is reported as a failed exec
        try:
            os.write(errpipe_w, f"{step['argv'][0]}: {exc}".encode()[:2000])
        finally:
            os._exit(127)


def _kill_others(pid1, child_pid):
    """End every process of the step: all of the namespace when PID 1, else the child's session."""
    try:
        if pid1:
            os.kill(-1, SIGKILL)
        else:
            os.killpg(child_pid, SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap_all(pid1):
    """Collect zombies (orphans are re-parented to PID 1); returns nothing, loses nothing we need."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_step(step, env, cwd, pid1, stdin_fd):
    capture = step.get("capture")  # bytes of combined output to keep, or None to pass fds 1 and 2 through
    if capture is not None:
        cap_r, cap_w = os.pipe()
        out_fd = err_fd = cap_w
    else:
        cap_r = cap_w = None
        out_fd, err_fd = 1, 2
    in_fd = stdin_fd if step.get("stdin") else os.open(os.devnull, os.O_RDONLY)
    err_r, err_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        if cap_r is not None:
            os.close(cap_r)
        os.close(err_r)
        _child(step, env, cwd, out_fd, err_fd, in_fd, err_w)
    os.close(err_w)
    if cap_w is not None:
        os.close(cap_w)
    if not step.get("stdin"):
        os.close(in_fd)
    deadline = started + float(step["wall_s"])
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    captured = bytearray()
    cap_truncated = False
    timed_out = False
    status = None
    usage = None
    while status is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            _kill_others(pid1, pid)
            _, status, usage = os.wait4(pid, 0)
            break
        waits = [fd for fd in (pidfd, cap_r) if fd is not None]
        ready, _, _ = select.select(waits, [], [], min(remaining, 0.05 if pidfd is None else 0.25))
        if cap_r is not None and cap_r in ready:
            chunk = os.read(cap_r, 65536)
            if not chunk:
                os.close(cap_r)
                cap_r = None
            else:
                room = capture - len(captured)
                captured += chunk[:room]
                cap_truncated = cap_truncated or len(chunk) > room
        got, st, ru = os.wait4(pid, os.WNOHANG)
        if got == pid:
            status, usage = st, ru
        if pid1:
            _reap_all(pid1)
    wall = time.monotonic() - started
    # The step is over: nothing it started may outlive it (a background server, a `sleep 1000 &`).
    _kill_others(pid1, pid)
    if cap_r is not None:
        # Leftover output of the killed processes: drain what is buffered, within the cap.
        while True:
            r, _, _ = select.select([cap_r], [], [], 0.2)
            if not r:
                break
            chunk = os.read(cap_r, 65536)
            if not chunk:
                break
            room = capture - len(captured)
            captured += chunk[:room]
            cap_truncated = cap_truncated or len(chunk) > room
        os.close(cap_r)
    if pidfd is not None:
        os.close(pidfd)
    exec_error = os.read(err_r, 4096).decode("utf-8", "replace")
    os.close(err_r)
    if pid1:
        _reap_all(pid1)
    result = {
        "step": step["name"],
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "wall_s": round(wall, 4),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
        "maxrss_kb": usage.ru_maxrss,
        "timed_out": timed_out,
        "exec_error": exec_error or None,
    }
    if capture is not None:
        result["output"] = captured.decode("utf-8", "replace")
        result["output_truncated"] = cap_truncated
    return result


def main():
    config = eval(sys.argv[1], {"__builtins__": {}})  # a literal the arena wrote; no names to call
    status_fd = config["status_fd"]
    pid1 = config["pid1"]
    os.set_inheritable(status_fd, False)
    if pid1:
        _no_dump()
    stdin_fd = os.dup(0)
    os.set_inheritable(stdin_fd, False)
    for step in config["steps"]:
        result = run_step(step, config["env"], config["cwd"], pid1, stdin_fd)
        data = (repr(result) + "\n").encode()
        while data:
            data = data[os.write(status_fd, data):]
        failed = result["exit_code"] not in step.get("ok", [0]) or result["timed_out"] or result["exec_error"]
        if step["name"] != "run" and failed:
            break
    os.close(status_fd)


if __name__ == "__main__":
    main()
