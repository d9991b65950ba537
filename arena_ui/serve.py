"""Start the arena: load models, prompts and the store, build the app, bind, print the URL, block."""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from arena_ui.arena import Arena, ArenaConfig
from arena_ui.ratelimit import RateLimits
from arena_ui.sampling import PairSampler, parse_weights


@dataclass(frozen=True)
class ServeOptions:
    models: str | None = None
    prompts: str | None = None
    db: str | Path = "codearena.db"
    host: str = "127.0.0.1"
    port: int = 7860
    weights: list[str] = field(default_factory=list)
    votes_per_minute: int = 30
    battles_per_minute: int = 30
    leaderboard_refresh_s: float = 30.0
    concurrency: int = 64
    queue_size: int = 2000


def make_arena(opts: ServeOptions) -> Arena:
    """Everything the app needs, checked before anything binds a port (bad files fail with exit 2)."""
    from serving.models import load_models
    from serving.prompts import load_prompts

    if opts.port < 0 or opts.port > 65535:
        raise ValueError(f"--port {opts.port}: not a TCP port")
    # Before the models load (which can take a while): a busy port is the commonest reason serve cannot start.
    check_port_free(opts.host, opts.port)
    if opts.concurrency < 1:
        raise ValueError(f"--concurrency {opts.concurrency}: must be at least 1")
    if not opts.leaderboard_refresh_s > 0 or opts.leaderboard_refresh_s == float("inf"):
        raise ValueError(f"--leaderboard-refresh {opts.leaderboard_refresh_s}: expected seconds > 0")
    config = ArenaConfig(
        models=load_models(opts.models), prompts=load_prompts(opts.prompts), db=opts.db,
        weights=parse_weights(opts.weights),
        limits=RateLimits(votes_per_minute=opts.votes_per_minute, battles_per_minute=opts.battles_per_minute),
        leaderboard_refresh_s=opts.leaderboard_refresh_s,
    )
    if not config.prompts:
        raise ValueError(f"--prompts {opts.prompts}: no prompts loaded")
    # Every option is checked before Arena opens (and so creates) the store: `--weight nope=2` must not
    # leave an empty codearena.db behind.
    PairSampler.build(config.models, config.weights)
    return Arena(config)


class PortInUseError(OSError):
    """The port cannot be bound; the message says which and what to do."""


def port_in_use_message(host: str, port: int) -> str:
    return f"port {port} on {host} is in use: choose another with --port"


def check_port_free(host: str, port: int) -> None:
    """Bind and release (host, port) as the server will (SO_REUSEADDR, as uvicorn sets it, so a port left in
    TIME_WAIT by a previous run does not count as busy); Gradio's own message for a busy port is about its
    internal port range and GRADIO_SERVER_PORT, which says nothing to a `codearena serve` user."""
    if port == 0:
        return  # any free port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ValueError(f"--host {host}: not an address this machine can bind ({exc.strerror})") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            # Only EADDRINUSE is a busy port; binding 8.8.8.8 fails with EADDRNOTAVAIL, port 80 with EACCES.
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ValueError(f"--host {host}: not an address of this machine (use 127.0.0.1, 0.0.0.0 for "
                                 "every interface, or one of this machine's addresses)") from exc
            if exc.errno == errno.EACCES:
                raise ValueError(f"--port {port} on {host}: permission denied (ports below 1024 need "
                                 "privileges): choose another with --port") from exc
            if exc.errno != errno.EADDRINUSE:
                raise ValueError(f"--host {host} --port {port}: cannot bind ({exc.strerror or exc})") from exc
            raise PortInUseError(port_in_use_message(host, port)) from exc


def _skip_absent_matplotlib() -> None:
    """Gradio tries ``import matplotlib`` twice around every event's postprocessing; when it is not
    installed, each failed import scans sys.path (measured: ~12% of the server's CPU under load). A None
    entry in sys.modules makes that import fail at once; nothing changes when matplotlib is installed."""
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]


def launch(arena: Arena, opts: ServeOptions, *, block: bool = True):
    """Build and launch; returns the Blocks (already closed when ``block`` and the user hit Ctrl-C)."""
    from arena_ui.app import CSS, build_app

    _skip_absent_matplotlib()

    arena.start()
    demo = build_app(arena)
    demo.queue(default_concurrency_limit=opts.concurrency, max_size=opts.queue_size)
    try:
        demo.launch(server_name=opts.host, server_port=opts.port, prevent_thread_lock=True, css=CSS,
                    ssr_mode=False, quiet=True, footer_links=["api"], show_error=True)
    except OSError as exc:
        # Taken between check_port_free and now; Gradio's message names its own port range instead.
        close(arena, demo)
        if "Cannot find empty port" in str(exc):
            raise PortInUseError(port_in_use_message(opts.host, opts.port)) from exc
        raise
    host = "127.0.0.1" if opts.host in ("0.0.0.0", "::") else opts.host
    print(f"CodeArena arena running on http://{host}:{opts.port}/ (bound to {opts.host}:{opts.port}; "
          f"{len(arena.usable_models)} of {len(arena.status)} models usable; votes in {arena.store.path})",
          flush=True)
    for s in arena.status.values():
        if not s.usable:
            print(f"  model {s.name} unavailable: {s.reason}", flush=True)
    if arena.readiness():
        # Not arena.readiness() itself: it repeats the unavailable models listed just above.
        print(f"  warning: battles need at least two usable models; {len(arena.usable_models)} of "
              f"{len(arena.status)} are usable (the Battle tab says so until that changes)", flush=True)
    if block:
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            close(arena, demo)
    return demo


def close(arena: Arena, demo) -> None:
    demo.close()
    # Its own thread and loop: the caller may already run a loop (Playwright's sync API, a notebook).
    worker = threading.Thread(target=asyncio.run, args=(arena.aclose(),), name="arena-close")
    worker.start()
    worker.join(timeout=30)


def serve(opts: ServeOptions) -> int:
    arena = make_arena(opts)
    launch(arena, opts)
    return 0
