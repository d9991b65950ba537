"""Running the answers' code in a battle, server side (no Gradio): the settings, the one run queue of the
arena, what can run here, and what each side's Run button and output panel show.

Runs go through one :class:`serving.execution.RunQueue` per arena, so a crowd pressing Run waits for slots
instead of starving the web app: a run waits without blocking the event loop and executes in a worker
thread, in the sandbox. Whether the sandbox works and which runners start in it is probed once, in a
thread at start (``list_runners`` takes about a second), never on a request.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from arena_ui.battle import BattleSession, Phase, RunTicket
from arena_ui.pages import PageStore
from arena_ui.run_view import RUNNING, idle_markdown, language_name, run_markdown
from serving.execution import (
    Extraction,
    RunQueue,
    extract_code,
    list_runners,
    run_extraction,
    sandbox_status,
)
from votes.runs import BattleRun, CodeRun, RunLimits

log = logging.getLogger(__name__)

OFF = "Running code is turned off on this arena."


@dataclass(frozen=True)
class RunSettings:
    """How the arena runs answers: on or off, slots and queue, the limits of one run, and how often."""

    enabled: bool = True
    concurrency: int | None = None  # runs at once; None: half the cores
    queue_size: int = 32  # runs that may wait for a slot; past it a press is answered "busy"
    limits: RunLimits = field(default_factory=RunLimits)
    max_runs_per_side: int = 3  # per turn: a voter may run an answer again (different timing), not forever
    runs_per_minute: int = 30  # per client address (0 = unlimited), as votes and battles are limited

    def __post_init__(self) -> None:
        if self.concurrency is not None and (not isinstance(self.concurrency, int) or self.concurrency < 1):
            raise ValueError(f"--run-concurrency must be a whole number of at least 1, got {self.concurrency!r}")
        if not isinstance(self.queue_size, int) or self.queue_size < 0:
            raise ValueError(f"--run-queue must be a whole number of at least 0, got {self.queue_size!r}")
        if not isinstance(self.max_runs_per_side, int) or self.max_runs_per_side < 1:
            raise ValueError(f"max_runs_per_side must be at least 1, got {self.max_runs_per_side!r}")
        if not isinstance(self.runs_per_minute, int) or self.runs_per_minute < 0:
            raise ValueError(f"--runs-per-minute must be >= 0 (0 = unlimited), got {self.runs_per_minute!r}")


@dataclass(frozen=True)
class RunAvailability:
    usable: bool
    reason: str  # why not, for the panels
    languages: frozenset[str] | None  # languages with a working runner; None until the probe has finished


@dataclass(frozen=True)
class SideView:
    """What one side's Run button and output panel show now."""

    can_run: bool
    label: str  # the button's text
    markdown: str  # the output panel
    page_key: str | None = None  # an HTML answer's page to show in the frame (arena_ui.pages)


class NothingToRun(ValueError):
    """A run asked for an answer that has nothing this arena can run (the button was off)."""


class RunService:
    """The arena's runs: one queue, one probe, the HTML pages voters asked to see."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.queue = RunQueue(settings.concurrency, settings.queue_size) if settings.enabled else None
        self.pages = PageStore()
        self._languages: frozenset[str] | None = None
        self._reason = ""  # set when the probe found the sandbox unusable
        self._probed = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what can run here ------------------------------------------------------------------------
    def start(self) -> None:
        """Probe the sandbox and the runners in a thread (a second or two), so no request waits for it."""
        if not self.settings.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._probe, name="arena-run-probe", daemon=True)
        self._thread.start()

    def _probe(self) -> None:
        try:
            status = sandbox_status()
            if not status.available:
                self._reason = f"Running code is off here: no sandbox ({status.reason})."
                self._languages = frozenset()
            else:
                self._languages = frozenset(i.language for i in list_runners() if i.available)
                if not self._languages:
                    self._reason = "Running code is off here: no language's runner starts in the sandbox."
        except Exception as exc:  # noqa: BLE001 - a probe that fails turns the buttons off, not the arena
            log.exception("probing the sandbox")
            self._reason = f"Running code is off here: the sandbox check failed ({exc})."
            self._languages = frozenset()
        finally:
            self._probed.set()

    def wait_probed(self, timeout_s: float = 120.0) -> bool:
        return self._probed.wait(timeout_s)

    def availability(self) -> RunAvailability:
        if not self.settings.enabled:
            return RunAvailability(False, OFF, frozenset())
        if not self._probed.is_set():
            # Not known yet: let runs be asked for; the worker thread finds out (the same cached probe).
            return RunAvailability(True, "", None)
        return RunAvailability(not self._reason, self._reason, self._languages)

    def describe(self) -> str:
        """One line for the operator's console."""
        a = self.availability()
        if not a.usable:
            return a.reason
        langs = ", ".join(language_name(lang) for lang in sorted(a.languages or ())) or "probing..."
        q = self.queue
        assert q is not None
        return f"code runs: {langs} ({q.max_concurrent} at once, up to {q.max_queued} waiting)"

    # -- running --------------------------------------------------------------------------------
    def extraction(self, answer: str, language: str | None) -> Extraction:
        return extract_code(answer, language_hint=language, runnable=self.availability().languages)

    def runnable(self, extraction: Extraction) -> str | None:
        """None when the button may run (or, for an HTML page, show) this extraction; else why not."""
        if not self.settings.enabled:
            return OFF
        if extraction.kind == "none":
            return f"nothing to run: {extraction.reason}"
        if extraction.kind == "html":
            return None  # rendered by the voter's browser, in its sandboxed frame: no server sandbox needed
        a = self.availability()
        if not a.usable:
            return a.reason
        if a.languages is not None and extraction.language not in a.languages:
            return f"nothing to run here: {language_name(extraction.language)} has no runner on this arena"
        return None

    async def run(self, ticket: RunTicket) -> BattleRun:
        """Run (or, for an HTML page, render) the ticket's answer. Raises NothingToRun, or QueueFull when
        the queue is full; everything the code does is in the returned record."""
        extraction = self.extraction(ticket.answer, ticket.language)
        why_not = self.runnable(extraction)
        if why_not is not None:
            raise NothingToRun(why_not)
        limits = self.settings.limits
        if extraction.kind == "html":
            run = CodeRun(language="html", status="rendered", limits=limits, code=extraction.code,
                          blocks=extraction.blocks)
            return BattleRun(side=ticket.side, turn=ticket.turn, run=run, started_at=ticket.started_at)
        asked = time.monotonic()

        def work() -> tuple[CodeRun, float]:
            waited = time.monotonic() - asked
            return run_extraction(extraction, limits=limits), waited

        assert self.queue is not None
        run, waited = await self.queue.run(work)
        return BattleRun(side=ticket.side, turn=ticket.turn, run=run, started_at=ticket.started_at,
                         queued_s=round(waited, 4))

    # -- what the panels show --------------------------------------------------------------------
    def view(self, s: BattleSession, side: str) -> SideView:
        """One side of a live battle: the latest run of this turn, else what Run would do (or why not)."""
        if s.phase is not Phase.READY:
            return SideView(False, "Run", "")
        extraction = self.extraction(s.answer(side), s.prompt.language)
        label = "Show page" if extraction.kind == "html" else "Run"
        runs = s.runs_of(side)
        why_not = self.runnable(extraction)
        at_most = self.settings.max_runs_per_side
        can_run = why_not is None and side not in s.running and len(runs) < at_most
        if side in s.running:
            return SideView(False, label, RUNNING)
        if runs:
            latest = runs[-1]
            note = f"This answer has run {len(runs)} times, the most allowed." if len(runs) >= at_most else ""
            key = self.pages.put(latest.run.code) if latest.run.status == "rendered" else None
            again = label if latest.run.status == "rendered" else "Run again"
            return SideView(can_run, again, run_markdown(latest, note=note), key)
        if extraction.kind == "code" and not self.availability().usable:
            return SideView(False, label, self.availability().reason)
        return SideView(can_run, label, idle_markdown(extraction, self.availability().languages,
                                                      self.settings.limits))
