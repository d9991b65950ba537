"""The sandbox holds: each hostile program of the issue's list runs in the real sandbox and is contained,
while a server on 127.0.0.1 (standing in for the arena) keeps answering.

Needs bubblewrap: skipped without it, failed instead when CODEARENA_REQUIRE_SANDBOX=1 (CI). Limits are
small (1-2 s) so the whole file stays quick; nothing here asserts a duration.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.execution import run_code, sandbox_status
from serving.execution.execute import list_runners
from serving.execution.sandbox import TRUNCATION_MARKER
from tests.sandbox_helpers import pid_namespace_members, require_runner
from votes.runs import RunLimits

ROOT = Path(__file__).resolve().parents[1]
LIMITS = RunLimits(wall_s=2.0, cpu_s=2.0, memory_mb=128, max_processes=16, max_output_bytes=8192)
FAKE_KEY = "sk-codearena-test-FAKE-0123456789abcdef"


class _Arena(http.server.BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).paths.append(self.path)
        body = b"arena ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def arena() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Arena)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def answers(server: http.server.ThreadingHTTPServer, path: str = "/health") -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}{path}", timeout=10) as resp:
        return resp.status == 200 and resp.read() == b"arena ok"


@pytest.fixture(autouse=True)
def _sandbox_and_a_live_arena(arena: http.server.ThreadingHTTPServer) -> Iterator[None]:
    require_runner("python")
    yield
    assert answers(arena), "the arena stopped answering after a hostile run"


def py(code: str, limits: RunLimits = LIMITS, stdin: str | None = None):
    return run_code(code, "python", limits=limits, stdin=stdin)


def report(code: str) -> dict:
    """Run code that prints one JSON object as its last line; return it."""
    run = py(code)
    assert run.status == "ok", (run.status, run.stderr)
    return json.loads(run.stdout.strip().splitlines()[-1])


PROBE = '''
import json, os
def attempt(fn):
    try:
        return "OK:" + str(fn())[:200]
    except BaseException as exc:
        return "DENIED:" + type(exc).__name__
'''


# --- processes ---------------------------------------------------------------------------------------

def test_fork_bomb_is_capped_and_the_arena_answers_meanwhile(arena) -> None:
    code = ("import os, time\nprint(os.readlink('/proc/self/ns/pid'), flush=True)\nn = 0\ntry:\n"
            "    while True:\n        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n"
            "        n += 1\nexcept OSError as exc:\n    print('forks', n, type(exc).__name__, flush=True)\n"
            "time.sleep(0.5)\n")
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("run", py(code)))
    worker.start()
    answered = [answers(arena, "/during-fork-bomb") for _ in range(5)]
    worker.join()
    assert all(answered)
    run = result["run"]
    assert run.status == "ok", run.stderr
    ns, line = run.stdout.splitlines()[:2]
    _, forks, error = line.split()
    assert error == "BlockingIOError"  # EAGAIN from RLIMIT_NPROC
    assert 0 < int(forks) < LIMITS.max_processes
    assert pid_namespace_members(ns) == []  # the 30-second sleepers died with the sandbox


def test_shell_fork_bomb_ends_and_leaves_nothing(arena) -> None:
    require_runner("bash")
    code = "readlink /proc/self/ns/pid\nbomb() { bomb | bomb & }\nbomb\nsleep 1\necho survived\n"
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("run", run_code(code, "bash", limits=LIMITS)))
    worker.start()
    answered = [answers(arena, "/during-shell-bomb") for _ in range(5)]
    worker.join()
    assert all(answered)
    run = result["run"]
    assert run.status in ("ok", "timeout", "output_limit", "runtime_error"), run.stderr
    ns = run.stdout.splitlines()[0]
    assert ns.startswith("pid:[")
    assert pid_namespace_members(ns) == []


def test_background_process_is_killed_when_the_program_exits() -> None:
    code = ("import os, subprocess, sys\nprint(os.readlink('/proc/self/ns/pid'))\n"
            "subprocess.Popen(['sleep', '60'], start_new_session=True, stdout=subprocess.DEVNULL)\n"
            "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        import time\n        time.sleep(60)\n"
            "    os._exit(0)\nprint('main exits')\n")
    run = py(code)
    # Had the sandbox waited for the background processes, this would be a timeout.
    assert run.status == "ok", run.stderr
    ns = run.stdout.splitlines()[0]
    assert run.stdout.splitlines()[1] == "main exits"
    assert pid_namespace_members(ns) == []


def test_infinite_loop_stops_at_the_wall_clock() -> None:
    run = py("import time\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.1)\n",
             limits=RunLimits(wall_s=1.0, cpu_s=5.0, max_processes=16))
    assert run.status == "timeout" and run.signal == "SIGKILL"
    assert run.stdout == "started\n"  # output up to the kill is kept


def test_busy_loop_stops_at_the_cpu_limit() -> None:
    run = py("while True:\n    pass\n", limits=RunLimits(wall_s=5.0, cpu_s=1.0, max_processes=16))
    assert run.status == "cpu_limit" and run.signal in ("SIGXCPU", "SIGKILL")
    assert run.cpu_s >= 0.9


# --- memory and output ------------------------------------------------------------------------------

def test_ten_gigabyte_allocation_fails() -> None:
    run = py("x = bytearray(10 * 1024 ** 3)\nprint('allocated', len(x))\n")
    assert run.status == "memory_limit", (run.status, run.stderr)
    assert "MemoryError" in run.stderr and "allocated" not in run.stdout


def test_ten_gigabytes_of_shared_memory_fail_too() -> None:
    # Shared anonymous memory is not "data" to RLIMIT_DATA; the address-space limit stops it.
    run = py("import mmap\nm = mmap.mmap(-1, 10 * 1024 ** 3)\nm[::4096] = b'x' * (10 * 1024 ** 3 // 4096)\n"
             "print('mapped')\n")
    assert run.status == "memory_limit", (run.status, run.stderr)
    assert "mapped" not in run.stdout


def test_growing_allocation_in_c_is_stopped() -> None:
    require_runner("c")
    code = ("#include <stdlib.h>\n#include <string.h>\n#include <stdio.h>\nint main(void) {\n"
            "  size_t total = 0;\n  for (;;) { char *p = malloc(64 << 20); if (!p) { printf(\"refused at %zu MB\\n\", "
            "total >> 20); return 0; }\n    memset(p, 1, 64 << 20); total += 64 << 20; "
            "if (total > (10UL << 30)) return 9; }\n}\n")
    run = run_code(code, "c", limits=LIMITS)
    assert run.status == "ok", run.stderr
    refused_at = int(run.stdout.split()[2])
    assert refused_at <= LIMITS.memory_mb


def test_hundred_megabytes_of_output_are_cut(arena) -> None:
    run = py("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * (1 << 20))\n")
    assert run.status == "output_limit" and run.truncated
    marker = TRUNCATION_MARKER.format(limit=LIMITS.max_output_bytes)
    assert run.stdout.endswith(marker)
    assert len(run.stdout) - len(marker) <= LIMITS.max_output_bytes
    assert answers(arena)


def test_output_on_both_streams_shares_one_cap() -> None:
    run = py("import sys\nwhile True:\n    print('o' * 1000)\n    print('e' * 1000, file=sys.stderr)\n")
    assert run.status == "output_limit" and run.truncated
    marker_len = len(TRUNCATION_MARKER.format(limit=LIMITS.max_output_bytes))
    assert len(run.stdout) + len(run.stderr) - marker_len <= LIMITS.max_output_bytes


# --- network -----------------------------------------------------------------------------------------

def test_no_connection_to_the_arenas_own_port(arena) -> None:
    port = arena.server_address[1]
    out = report(PROBE + f'''
import socket
def connect():
    s = socket.create_connection(("127.0.0.1", {port}), timeout=1)
    s.sendall(b"GET /from-sandbox HTTP/1.0\\r\\n\\r\\n")
    return s.recv(100)
print(json.dumps({{"connect": attempt(connect)}}))
''')
    assert out["connect"].startswith("DENIED:")
    assert "/from-sandbox" not in _Arena.paths


def test_no_route_to_the_outside() -> None:
    # The program checks for a network first and only tries to connect when there is no route out, so a
    # broken sandbox cannot make this test send a packet anywhere. 192.0.2.1 is TEST-NET-1 (RFC 5737).
    out = report(PROBE + '''
routes = open("/proc/net/route").read().splitlines()[1:]
interfaces = sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else []
result = {"routes": routes, "interfaces": interfaces}
if not routes:
    import socket
    result["connect"] = attempt(lambda: socket.create_connection(("192.0.2.1", 80), timeout=1))
    result["dns"] = attempt(lambda: socket.getaddrinfo("example.com", 80))
print(json.dumps(result))
''')
    assert out["routes"] == [], f"the sandbox has a route out: {out['routes']}"
    assert out["connect"].startswith("DENIED:")
    assert out["dns"].startswith("DENIED:")


# --- files and environment --------------------------------------------------------------------------

def test_secrets_of_the_host_are_out_of_sight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "codearena.db"
    store.write_text("VOTE-STORE-SECRET")
    models = tmp_path / "models.toml"
    models.write_text('[models.x]\napi_key_env = "OPENAI_API_KEY"\n# MODELS-SECRET\n')
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    targets = {"shadow": "/etc/shadow", "store": str(store), "models": str(models),
               "project": str(ROOT / "pyproject.toml"), "home": os.path.expanduser("~"),
               "work": "/work", "project_dir": str(ROOT)}
    run = py(PROBE + f'''
targets = {targets!r}
out = {{}}
for name, path in targets.items():
    out[name] = attempt(lambda p=path: os.listdir(p) if os.path.isdir(p) else open(p).read())
out["env"] = dict(os.environ)
'''
             # One line of the probe, split only in the source.
             'out["proc_environ"] = {p: attempt(lambda p=p: open(f"/proc/{p}/environ", "rb").read().decode()) '
             'for p in os.listdir("/proc") if p.isdigit()}\n'
             '''print(json.dumps(out))
''')
    assert run.status == "ok", run.stderr
    assert FAKE_KEY not in run.stdout and "VOTE-STORE-SECRET" not in run.stdout and "MODELS-SECRET" not in run.stdout
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for name in targets:
        assert out[name].startswith("DENIED:"), (name, out[name])
    assert set(out["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL"}


def test_no_writes_outside_the_temp_dir(tmp_path: Path) -> None:
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    out = report(PROBE + f'''
out = {{}}
for path in ["/usr/evil", "/etc/evil", "/evil", "/dev/evil", "/dev/shm/evil", "/proc/evil", "/bin/evil",
             "{host_dir}/evil", "/etc/passwd"]:
    out[path] = attempt(lambda p=path: open(p, "a").write("x"))
out["/tmp"] = attempt(lambda: open("/tmp/fine", "w").write("ok"))
print(json.dumps(out))
''')
    assert out.pop("/tmp") == "OK:2"
    for path, outcome in out.items():
        assert outcome.startswith("DENIED:"), (path, outcome)
    assert list(host_dir.iterdir()) == []


def test_symlinks_in_the_temp_dir_lead_nowhere(tmp_path: Path) -> None:
    secret = tmp_path / "votes.db"
    secret.write_text("SYMLINK-SECRET")
    out = report(PROBE + f'''
os.symlink("{secret}", "/tmp/to_store")
os.symlink("/etc/shadow", "/tmp/to_shadow")
os.symlink("/", "/tmp/root")
os.symlink("/proc/1/root", "/tmp/init_root")
out = {{
    "store": attempt(lambda: open("/tmp/to_store").read()),
    "shadow": attempt(lambda: open("/tmp/to_shadow").read()),
    "work": attempt(lambda: os.listdir("/tmp/root/work")),
    "home": attempt(lambda: os.listdir("/tmp/root/root")),
    "init_root_store": attempt(lambda: open("/tmp/init_root{secret}").read()),
    "write_through": attempt(lambda: open("/tmp/root/usr/evil", "w").write("x")),
    "hardlink": attempt(lambda: os.link("/etc/passwd", "/tmp/passwd_link")),
}}
print(json.dumps(out))
''')
    for name, outcome in out.items():
        assert outcome.startswith("DENIED:"), (name, outcome)
    assert "SYMLINK-SECRET" not in json.dumps(out)


def test_the_sandbox_runs_unprivileged() -> None:
    out = report(PROBE + '''
import resource
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
'''
                 # Two lines of the probe, split only in the source.
                 'print(json.dumps({"uid": os.getuid(), "cap_eff": status["CapEff"].strip(), '
                 '"nproc": resource.getrlimit(resource.RLIMIT_NPROC),\n'
                 '                  "raise": attempt(lambda: resource.setrlimit(resource.RLIMIT_NPROC, '
                 '(10**6, 10**6)))}))\n')
    assert out["uid"] != 0
    assert int(out["cap_eff"], 16) == 0
    assert out["nproc"] == [LIMITS.max_processes, LIMITS.max_processes]
    assert out["raise"].startswith("DENIED:")  # a hard limit cannot be raised from inside
    assert sandbox_status().host_uid != 0


def test_unavailable_sandbox_refuses_and_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    monkeypatch.setenv("CODEARENA_BWRAP", str(tmp_path / "no-bwrap-here"))
    try:
        status = sandbox_status(refresh=True)
        assert not status.available and "bwrap not found" in status.reason
        list_runners(refresh=True)
        run = py(f"open({str(marker)!r}, 'w').write('ran')\n")
        assert run.status == "unavailable" and "bwrap" in run.stderr and not run.ran
        assert not marker.exists()
    finally:
        monkeypatch.undo()
        sandbox_status(refresh=True)
        list_runners(refresh=True)
    assert sandbox_status().available


def test_unsafe_mode_runs_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_code("print('unsandboxed')\n", "python", limits=LIMITS, unsafe_no_sandbox=True)
    assert run.status == "ok" and run.stdout == "unsandboxed\n"
    assert run.sandbox == "none (unsafe)"
