"""Several `codearena serve` replicas on one PostgreSQL store behind a real load balancer (HAProxy from
Debian's packages), for the replica tests and the load benchmark.

The load balancer's one duty beyond spreading load: sticky sessions. A Gradio session lives in the replica
that served its page (the battle's token is in a server-side ``gr.State``; a streamed answer is one event on
one replica's queue), so every request of a session must reach that replica. HAProxy pins a client with a
cookie it inserts on the first response (``cookie ... insert``); browsers keep it, and so does
``gradio_client`` (it keeps the cookies of its config request). When a replica dies, its clients are sent
to another one (``option redispatch``) and start a new session there: they lose the battle they were in,
never a stored vote.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def haproxy_config(port: int, replicas: list[int], *, check_ms: int = 500) -> str:
    """An HAProxy config: 127.0.0.1:``port`` in front of the replicas on ``replicas`` (ports), sticky by
    cookie, a dead replica out after two failed checks."""
    servers = "\n".join(f"    server r{i} 127.0.0.1:{p} check cookie r{i}" for i, p in enumerate(replicas))
    return f"""global
    maxconn 4096

defaults
    mode http
    option forwardfor
    option redispatch
    retries 2
    timeout connect 2s
    timeout client 300s
    timeout server 300s
    timeout tunnel 1h

frontend arena
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    cookie CODEARENA_REPLICA insert indirect nocache httponly
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter {check_ms}ms fall 2 rise 1
{servers}
"""


def require_haproxy() -> str:
    path = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.path.exists(p)), None)
    if path is None:
        why = "haproxy is not installed (apt-get install haproxy)"
        if os.environ.get("CODEARENA_REQUIRE_POSTGRES") == "1":
            pytest.fail(why + "; the replica tests need it under CODEARENA_REQUIRE_POSTGRES=1")
        pytest.skip(why)
    return path


@dataclass
class Replica:
    port: int
    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


def start_replica(db: str, models_toml: Path, prompts: Path, port: int, *extra: str,
                  timeout_s: float = 180) -> Replica:
    cmd = [sys.executable, "-m", "codearena", "serve", "--models", str(models_toml), "--prompts", str(prompts),
           "--db", db, "--port", str(port), "--votes-per-minute", "0", "--battles-per-minute", "0", "--no-run",
           "--trusted-proxy", "127.0.0.1", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    replica = Replica(port, proc)

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            replica.output.append(line)

    threading.Thread(target=drain, daemon=True).start()
    return replica


def wait_ready(replicas: list[Replica], timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    for r in replicas:
        while not any("running on" in line for line in r.output):
            if not r.alive:
                raise RuntimeError(f"replica on {r.port} exited {r.proc.returncode}: {''.join(r.output)[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica on {r.port} did not start: {''.join(r.output)[-3000:]}")
            time.sleep(0.2)


def stop(replica: Replica) -> None:
    if replica.alive:
        replica.proc.send_signal(signal.SIGINT)
        try:
            replica.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            replica.proc.kill()
            replica.proc.wait(timeout=10)


class Deployment:
    """``n`` replicas on the store ``db`` behind HAProxy; ``url`` is the load balancer's."""

    def __init__(self, tmp: Path, db: str, models_toml: Path, prompts: Path, n: int = 3, *extra: str) -> None:
        haproxy = require_haproxy()
        ports = [free_port() for _ in range(n)]
        self.replicas = [start_replica(db, models_toml, prompts, p, *extra) for p in ports]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        config = tmp / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, ports))
        try:
            wait_ready(self.replicas)
            self.proxy = subprocess.Popen([haproxy, "-f", str(config), "-db"], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True)
            self._wait_proxy()
        except BaseException:
            self.close()
            raise

    def _wait_proxy(self, timeout_s: float = 30) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proxy.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.proxy.stderr.read() if self.proxy.stderr else ''}")
            try:
                if httpx.get(self.url + "config", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("haproxy did not answer")

    def kill(self, i: int) -> None:
        """SIGKILL replica ``i``: no shutdown, no flush, its connections simply gone."""
        self.replicas[i].proc.kill()
        self.replicas[i].proc.wait(timeout=10)

    def close(self) -> None:
        proxy = getattr(self, "proxy", None)
        if proxy is not None and proxy.poll() is None:
            proxy.terminate()
            try:
                proxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proxy.kill()
        for r in self.replicas:
            stop(r)
