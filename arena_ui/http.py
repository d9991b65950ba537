"""The arena's HTTP edge: our own ASGI app in front of Gradio, served by uvicorn on a socket we bind.

Why not ``Blocks.launch()``: it leaves three trust decisions to defaults that do not fit a public arena.
- Forwarded headers: uvicorn trusts ``X-Forwarded-For`` from loopback by default, so any local client (or a
  proxy that passes the header through) picks the address the rate limit and the voter hash key on. Here they
  are trusted only from the proxies named by ``--trusted-proxy``; with none named, the socket's peer is the
  client.
- Uploads: Gradio's upload route takes files of any size although the arena has no upload; it is refused.
- Headers: every response carries a Content-Security-Policy: scripts only from the arena (inline ones by
  their hashes), no image, font, frame or form target outside it, no plugins. With answers rendered inert
  (``arena_ui.render``) this is the second wall against an answer that tries to act on the page.
  One exception, stricter still: an HTML answer's own page (``/answer-page/<key>``, see ``arena_ui.pages``)
  gets :data:`ANSWER_PAGE_CSP` instead: a sandbox (opaque origin), its inline scripts and styles, no network.
Request bodies are capped as well (a prompt is the largest thing a client sends).
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import threading
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from arena_ui.pages import PAGE_PREFIX

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)

# What the page may load, beyond its inline scripts (added per page by hash).
CSP_BASE = {
    "default-src": "'self'",
    "script-src": "'self'",
    # Gradio sets styles inline everywhere; answers cannot add any (render.py escapes every tag).
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "media-src": "'self' blob:",
    "worker-src": "'self' blob:",
    "frame-src": "'self'",
    "form-action": "'self'",
    "base-uri": "'self'",
    "object-src": "'none'",
    "frame-ancestors": "'self'",
}
UPLOAD_PATHS = ("/gradio_api/upload", "/upload")

# An HTML answer's page, shown in a sandboxed iframe of the arena page. "sandbox allow-scripts" gives it an
# opaque origin even when opened on its own (no cookies, storage or reading of the arena); it may run and
# style itself, load images/fonts/media only from data: or blob: URLs it makes, connect nowhere, submit no
# form, open no frame, and be framed only by the arena. The arena page's frame-src 'self' (above) keeps the
# frame from being navigated to another site. Matches serving.execution.extract.DEFAULT_CSP, which the page
# also carries in a meta tag.
ANSWER_PAGE_CSP = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
                   "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; media-src data: blob:; "
                   "connect-src 'none'; frame-src 'none'; worker-src 'none'; form-action 'none'; "
                   "base-uri 'none'; frame-ancestors 'self'")


def csp_header(script_hashes: Sequence[str] = ()) -> str:
    policy = dict(CSP_BASE)
    if script_hashes:
        policy["script-src"] += " " + " ".join(f"'sha256-{h}'" for h in script_hashes)
    return "; ".join(f"{k} {v}" for k, v in policy.items())


def inline_script_hashes(html: bytes) -> list[str]:
    """sha256 (base64) of each inline ``<script>`` of a page, as a CSP ``'sha256-...'`` source wants them."""
    return [base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() for m in _INLINE_SCRIPT.finditer(html)]


class RequestTooLarge(Exception):
    pass


@dataclass(frozen=True)
class EdgePolicy:
    max_body_bytes: int = 1 << 20
    # Path prefix -> the whole CSP of the responses under it (instead of the arena page's).
    path_csp: tuple[tuple[str, str], ...] = ((PAGE_PREFIX, ANSWER_PAGE_CSP),)
    extra_headers: tuple[tuple[bytes, bytes], ...] = (
        (b"x-content-type-options", b"nosniff"),
        # The page's address never leaves with a request the page makes (a link an answer holds, say).
        (b"referrer-policy", b"no-referrer"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    )


class ArenaEdge:
    """ASGI middleware: security headers, no uploads, bounded request bodies."""

    def __init__(self, app: ASGIApp, policy: EdgePolicy | None = None) -> None:
        self.app = app
        self.policy = policy or EdgePolicy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if scope.get("method") == "POST" and path.rstrip("/").endswith(UPLOAD_PATHS):
            await _plain(send, 403, "This arena accepts no file uploads.")
            return
        length = _content_length(scope)
        if length is not None and length > self.policy.max_body_bytes:
            await _plain(send, 413, f"Request body over {self.policy.max_body_bytes} bytes.")
            return
        await self.app(scope, self._bounded(receive), self._with_headers(send, path))

    def _bounded(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.policy.max_body_bytes

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # A chunked body with no Content-Length: cut it off instead of buffering it.
                    raise RequestTooLarge(f"request body over {limit} bytes")
            return message

        return bounded

    def _with_headers(self, send: Send, path: str = "") -> Send:
        start: Message | None = None
        body: list[bytes] = []
        own_csp = next((csp for prefix, csp in self.policy.path_csp if path.startswith(prefix)), None)

        async def sender(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                html = any(k.lower() == b"content-type" and b"text/html" in v.lower() for k, v in headers)
                if not html or own_csp is not None:
                    message["headers"] = self._secured(headers, (), own_csp)
                    await send(message)
                    return
                start = message  # an HTML page: its inline scripts' hashes go into its CSP, so hold it
                return
            if start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            page = b"".join(body)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(page)).encode()))
            start["headers"] = self._secured(headers, inline_script_hashes(page))
            await send(start)
            await send({"type": "http.response.body", "body": page, "more_body": False})

        return sender

    def _secured(self, headers: list[tuple[bytes, bytes]], hashes: Sequence[str],
                 csp: str | None = None) -> list[tuple[bytes, bytes]]:
        ours = {b"content-security-policy", *(k for k, _ in self.policy.extra_headers)}
        kept = [(k, v) for k, v in headers if k.lower() not in ours]
        policy = csp if csp is not None else csp_header(hashes)
        return [*kept, (b"content-security-policy", policy.encode()), *self.policy.extra_headers]


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class PortInUseError(OSError):
    """The port cannot be bound; the message says which and what to do."""


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a busy port or a foreign address is our clear error (and
    there is no window between a check and the real bind)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ValueError(f"--host {host}: not an address this machine can bind ({exc.strerror})") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    # SO_REUSEADDR, as uvicorn sets it: a port left in TIME_WAIT by a previous run is not busy.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        import errno

        if exc.errno == errno.EADDRNOTAVAIL:
            raise ValueError(f"--host {host}: not an address of this machine (use 127.0.0.1, 0.0.0.0 for "
                             "every interface, or one of this machine's addresses)") from exc
        if exc.errno == errno.EACCES:
            raise ValueError(f"--port {port} on {host}: permission denied (ports below 1024 need "
                             "privileges): choose another with --port") from exc
        if exc.errno != errno.EADDRINUSE:
            raise ValueError(f"--host {host} --port {port}: cannot bind ({exc.strerror or exc})") from exc
        raise PortInUseError(f"port {port} on {host} is in use: choose another with --port") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass
class HttpServer:
    """uvicorn on a socket bound beforehand, in a thread of its own; ``stop()`` ends it."""

    app: ASGIApp
    sock: socket.socket
    trusted_proxies: tuple[str, ...] = ()
    _server: Any = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self, timeout_s: float = 60.0) -> None:
        import time

        import uvicorn

        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="on",
            # Forwarded headers from the named proxies only; none named: the peer address is the client.
            proxy_headers=bool(self.trusted_proxies),
            forwarded_allow_ips=list(self.trusted_proxies) if self.trusted_proxies else None,
            # Ctrl-C must end the server even while browser tabs hold their event streams open.
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self.sock]},
                                        name="arena-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the web server stopped while starting (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start within {timeout_s:.0f} s")
            time.sleep(0.02)

    def stop(self, timeout_s: float = 15.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        self.sock.close()


SHUTDOWN_GRACE_S = 5.0


def parse_trusted_proxies(values: Sequence[str]) -> tuple[str, ...]:
    """Addresses or networks (``10.0.0.0/8``) of proxies whose ``X-Forwarded-For`` is believed."""
    import ipaddress

    out = []
    for value in values:
        v = value.strip()
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise ValueError(f"--trusted-proxy {value!r}: not an IP address or network (e.g. 127.0.0.1, "
                             "10.0.0.0/8)") from None
        out.append(v)
    return tuple(out)
