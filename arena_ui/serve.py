"""Start the arena: load models, prompts and the store, build the app, bind, print the URL, block."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import importlib.util
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arena_ui.arena import Arena, ArenaConfig, InputLimits
from arena_ui.http import ArenaEdge, EdgePolicy, HttpServer, bind_socket, parse_trusted_proxies
from arena_ui.ratelimit import RateLimits
from arena_ui.runs import RunSettings
from arena_ui.sampling import PairSampler, parse_weights
from votes.location import DEFAULT_DB

HEALTH_PATH = "/healthz"
# Young collections every 50,000 allocations, not 700: a page update's short-lived objects are freed
# before a collection sees them, so fewer survive into the old generation whose collections pause the loop.
GC_THRESHOLDS = (50_000, 20, 20)
SHORT_EVENT_SLOTS = 64  # votes, prompt picks, ...: beside the streaming battles and the code runs


@dataclass(frozen=True)
class ServeOptions:
    models: str | None = None
    prompts: str | None = None
    db: str | Path = DEFAULT_DB
    host: str = "127.0.0.1"
    port: int = 7860
    weights: list[str] = field(default_factory=list)
    votes_per_minute: int = 30
    battles_per_minute: int = 30
    leaderboard_refresh_s: float = 30.0
    concurrency: int = 64
    queue_size: int = 2000
    trusted_proxies: list[str] = field(default_factory=list)
    max_prompt_chars: int = 20_000
    max_turns: int = 8
    sampling: str = "uniform"
    run_enabled: bool = True  # --no-run turns the Run buttons off
    run_concurrency: int | None = None  # --run-concurrency: runs at once (None: half the cores)
    run_queue: int = 32  # --run-queue: runs waiting for a slot, past which a press is answered "busy"
    runs_per_minute: int = 30  # --runs-per-minute: Run presses per client address (0 = unlimited)


def make_arena(opts: ServeOptions) -> Arena:
    """Everything the app needs, checked before anything binds a port (bad files fail with exit 2)."""
    from serving.models import load_models
    from serving.prompts import load_prompts

    if opts.port < 0 or opts.port > 65535:
        raise ValueError(f"--port {opts.port}: not a TCP port")
    parse_trusted_proxies(opts.trusted_proxies)
    runs = RunSettings(enabled=opts.run_enabled, concurrency=opts.run_concurrency, queue_size=opts.run_queue,
                       runs_per_minute=opts.runs_per_minute)
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
        input_limits=InputLimits(max_prompt_chars=opts.max_prompt_chars, max_turns=opts.max_turns),
        sampling=opts.sampling,
        runs=runs,
    )
    if not config.prompts:
        raise ValueError(f"--prompts {opts.prompts}: no prompts loaded")
    # Every option is checked before Arena opens (and so creates) the store: `--weight nope=2` must not
    # leave an empty codearena.db behind.
    PairSampler.build(config.models, config.weights)
    return Arena(config)


def check_port_free(host: str, port: int) -> None:
    """Bind and release (host, port) as the server will, before the models load (which takes a while): a
    busy port or an address this machine does not have is the commonest reason serve cannot start."""
    if port != 0:
        bind_socket(host, port).close()


def _skip_absent_matplotlib() -> None:
    """Gradio tries ``import matplotlib`` twice around every event's postprocessing; when it is not
    installed, each failed import scans sys.path (measured: ~12% of the server's CPU under load). A None
    entry in sys.modules makes that import fail at once; nothing changes when matplotlib is installed."""
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]


@dataclass
class RunningArena:
    """A launched arena: the Gradio app and the HTTP server in front of it."""

    demo: Any
    server: HttpServer

    @property
    def port(self) -> int:
        return self.server.port


def build_http_app(arena: Arena, opts: ServeOptions):
    """Our ASGI app: the arena's edge (``arena_ui.http``) in front of the Gradio app mounted at ``/``."""
    import gradio as gr
    from fastapi import FastAPI

    from arena_ui.app import CSS, THEME, build_app

    # Gradio summarises its last 10,000 events into a pandas frame after *every* event, for a monitoring
    # page this app does not serve: measured as ~10% of the arena's CPU at 20 battles/s. Once per 1,000
    # events, over the last 1,000, unless the operator's environment says otherwise.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
    demo = build_app(arena)
    demo.queue(default_concurrency_limit=opts.concurrency, max_size=opts.queue_size)
    # Gradio's queue runs at most ``max_threads`` events at once, streams included: 40, unless launch() sets
    # it, and a mounted app is never launched. With 40 battles streaming, every vote and prompt pick waited
    # for one of them to end (measured: a prompt pick's p50 7 s at 20 battles/s). Room for --concurrency
    # streams, SHORT_EVENT_SLOTS short events and every run the run queue admits (each holds its event while
    # it waits for the sandbox) besides: what launch(max_threads=...) sets, both fields.
    queue = arena.runs.queue
    slots = opts.concurrency + SHORT_EVENT_SLOTS + (queue.max_concurrent + queue.max_queued if queue else 0)
    demo.max_threads = slots
    demo._queue.max_thread_count = slots
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    add_health_check(app)
    add_answer_pages(app, arena)
    app = gr.mount_gradio_app(app, demo, path="/", footer_links=["api"], ssr_mode=False, show_error=True,
                              css=CSS, theme=THEME, max_file_size=1, server_name=opts.host,
                              server_port=opts.port)
    edge = ArenaEdge(app, EdgePolicy(max_body_bytes=max(1 << 20, 8 * opts.max_prompt_chars)))
    return demo, edge




def add_health_check(app: Any) -> None:
    """``GET /healthz``: 200 while this replica's server answers, for a load balancer's checks. Gradio's
    ``/config`` answers too, but deep-copies the whole page description each time (~20 ms of CPU)."""
    from fastapi import Response

    async def healthz() -> Response:  # no worker thread: it does no blocking work
        return Response("ok\n", media_type="text/plain", headers={"Cache-Control": "no-store"})

    app.add_api_route(HEALTH_PATH, healthz, methods=["GET"], include_in_schema=False)


def add_answer_pages(app: Any, arena: Arena) -> None:
    """``GET /answer-page/<key>``: the HTML answers voters asked to see (arena_ui.pages), before Gradio's routes."""
    from fastapi import Response

    from arena_ui.pages import PAGE_HEADERS, PAGE_PREFIX

    def answer_page(key: str) -> Response:
        body = arena.runs.pages.get(key)
        if body is None:
            return Response("No such page.", status_code=404, media_type="text/plain")
        return Response(body, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    app.add_api_route(PAGE_PREFIX + "{key}", answer_page, methods=["GET"], include_in_schema=False)


def _say_when_probed(arena: Arena) -> None:
    """The sandbox probe runs in a thread (arena.runs.start); its outcome is one line on the console."""
    def wait_and_print() -> None:
        if arena.runs.wait_probed():
            print(f"  {arena.runs.describe()}", flush=True)

    if arena.config.runs.enabled:
        threading.Thread(target=wait_and_print, name="arena-run-probe-report", daemon=True).start()


def launch(arena: Arena, opts: ServeOptions, *, block: bool = True, tune_gc: bool = False) -> RunningArena:
    """Build, bind and serve; returns once the server answers (after Ctrl-C when ``block``). ``tune_gc``:
    set this process's garbage collector for serving (what `codearena serve` does; an embedding process,
    a test suite, keeps its own settings)."""
    _skip_absent_matplotlib()
    sock = bind_socket(opts.host, opts.port)
    try:
        arena.start()
        demo, edge = build_http_app(arena, opts)
        server = HttpServer(edge, sock, trusted_proxies=parse_trusted_proxies(opts.trusted_proxies))
        server.start()
    except BaseException:
        sock.close()
        raise
    running = RunningArena(demo, server)
    interrupted = False
    try:
        stopping = _stop_on_signals() if block else None  # before "running on": a signal from then on is handled
        if tune_gc:
            # What start-up built (Gradio, FastAPI, pandas, the prompts: most of the heap) lives as long as
            # the process; frozen, the collector stops walking it in every full collection. Measured at 20
            # battles/s: full collections of 80-290 ms, each a pause of every stream and vote, were the p99.
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
        _report_started(arena, opts, running)
        while stopping is not None and not stopping.is_set():
            time.sleep(0.25)
    except KeyboardInterrupt:
        interrupted = True  # however early it comes (even while the lines above print)
    if block or interrupted:
        close(arena, running)
    if interrupted and not block:
        raise KeyboardInterrupt
    return running


@dataclass
class _Stopping:
    """Set by a signal handler: a plain flag, since a handler that took a lock (threading.Event.set) could
    find it held by the very thread it interrupted."""

    requested: bool = False

    def is_set(self) -> bool:
        return self.requested


def _stop_on_signals() -> _Stopping:
    """A flag set by SIGINT (Ctrl-C) or SIGTERM (`docker stop`, systemd, a process manager). Handled here
    rather than left to Python's default: a process started with SIGINT ignored (from a background job of a
    non-interactive shell, as CI runs) would otherwise never stop on Ctrl-C, and SIGTERM would end it with
    no clean shutdown. A second signal while closing ends the process at once (exit status 130)."""
    stopping = _Stopping()

    def on_signal(signum: int, frame: object) -> None:
        if stopping.requested:
            os._exit(130)
        stopping.requested = True

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
    except ValueError:  # not the main thread: signals cannot reach this wait; Ctrl-C goes to the main thread
        pass
    return stopping


def _report_started(arena: Arena, opts: ServeOptions, running: RunningArena) -> None:
    host = "127.0.0.1" if opts.host in ("0.0.0.0", "::") else opts.host
    port = running.port
    print(f"CodeArena arena running on http://{host}:{port}/ (bound to {opts.host}:{port}; "
          f"{len(arena.usable_models)} of {len(arena.status)} models usable; votes in {arena.store.location})",
          flush=True)
    for s in arena.status.values():
        if not s.usable:
            print(f"  model {s.name} unavailable: {s.reason}", flush=True)
    _say_when_probed(arena)
    if arena.readiness():
        # Not arena.readiness() itself: it repeats the unavailable models listed just above.
        print(f"  warning: battles need at least two usable models; {len(arena.usable_models)} of "
              f"{len(arena.status)} are usable (the Battle tab says so until that changes)", flush=True)


def close(arena: Arena, running: RunningArena) -> None:
    running.server.stop()
    running.demo.close(verbose=False)
    # Its own thread and loop: the caller may already run a loop (Playwright's sync API, a notebook).
    # A daemon, so that a backend whose close hangs cannot hold the process past the 10 s.
    worker = threading.Thread(target=asyncio.run, args=(arena.aclose(),), name="arena-close", daemon=True)
    worker.start()
    worker.join(timeout=10)


def serve(opts: ServeOptions) -> int:
    # `kill -USR1 <pid>` prints every thread's stack to stderr: what a stuck arena is doing, without a debugger.
    try:
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    except (AttributeError, ValueError, OSError):  # no real stderr (embedded, detached): no stack dumps
        pass
    arena = make_arena(opts)
    launch(arena, opts, tune_gc=True)
    return 0
