"""Start the arena: load models, prompts and the store, build the app, bind, print the URL, block."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from arena_ui.arena import Arena, ArenaConfig
from arena_ui.ratelimit import RateLimits
from arena_ui.sampling import parse_weights


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
    config = ArenaConfig(
        models=load_models(opts.models), prompts=load_prompts(opts.prompts), db=opts.db,
        weights=parse_weights(opts.weights),
        limits=RateLimits(votes_per_minute=opts.votes_per_minute, battles_per_minute=opts.battles_per_minute),
        leaderboard_refresh_s=opts.leaderboard_refresh_s,
    )
    if not config.prompts:
        raise ValueError(f"--prompts {opts.prompts}: no prompts loaded")
    return Arena(config)


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
    demo.launch(server_name=opts.host, server_port=opts.port, prevent_thread_lock=True, css=CSS,
                ssr_mode=False, quiet=True, footer_links=["api"], show_error=True)
    host = "127.0.0.1" if opts.host in ("0.0.0.0", "::") else opts.host
    print(f"CodeArena arena running on http://{host}:{opts.port}/ (bound to {opts.host}:{opts.port}; "
          f"{len(arena.usable_models)} of {len(arena.status)} models usable; votes in {arena.store.path})",
          flush=True)
    for s in arena.status.values():
        if not s.usable:
            print(f"  model {s.name} unavailable: {s.reason}", flush=True)
    if arena.readiness():
        print(f"  warning: {arena.readiness()}", flush=True)
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
