"""Running the answers of judged pairs before the judge sees them (``duel``/``judge --execute``).

Each distinct answer (text and prompt language) runs once per duel, however many pairs it is in, through
one :class:`serving.execution.RunQueue` that bounds how many run at once; a progress bar counts them. The
runs are whatever the sandbox makes of the code (a crash, a timeout, "no code"): results, never errors.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from serving.judge import PairTask
from votes.runs import CodeRun, RunLimits


@dataclass(frozen=True)
class ExecuteSettings:
    """How the answers run: the sandbox's limits, and how many at once (None: $CODEARENA_RUN_CONCURRENCY,
    else half the cores, as the arena's run queue)."""

    limits: RunLimits = field(default_factory=RunLimits)
    concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"run concurrency must be at least 1, got {self.concurrency}")


def execution_unavailable() -> str | None:
    """Why answers cannot run here (no sandbox: bubblewrap missing or namespaces forbidden), or None.

    An execution-aware judge that saw no run at all would only be the plain judge under another name, so
    the duel refuses before anything runs instead."""
    from serving.execution import sandbox_status

    status = sandbox_status()
    return None if status.available else f"no sandbox to run the answers' code: {status.reason}"


def _concurrency(settings: ExecuteSettings) -> int:
    from serving.execution.queue import CONCURRENCY_ENV, default_concurrency

    if settings.concurrency is not None:
        return settings.concurrency
    env = os.environ.get(CONCURRENCY_ENV)
    try:
        return max(1, int(env)) if env else default_concurrency()
    except ValueError as exc:
        raise ValueError(f"${CONCURRENCY_ENV}: {exc}") from exc


class AnswerRunner:
    """Runs answers once each and attaches both runs to every pair that shows them."""

    def __init__(self, settings: ExecuteSettings | None = None) -> None:
        from serving.execution import RunQueue

        self.settings = settings or ExecuteSettings()
        # No refusals: a duel's runs wait their turn (the arena's queue refuses; a batch job need not).
        self.queue = RunQueue(_concurrency(self.settings), max_queued=sys.maxsize)
        self._runs: dict[tuple[str, str | None], CodeRun] = {}

    @property
    def runs_done(self) -> int:
        return len(self._runs)

    async def run_one(self, answer: str, language: str | None) -> CodeRun:
        """The run of one answer (the prompt's language is the hint for untagged blocks), cached."""
        from serving.execution import run_answer_async

        key = (answer, language)
        if key not in self._runs:
            self._runs[key] = await run_answer_async(answer, language_hint=language, limits=self.settings.limits,
                                                     queue=self.queue)
        return self._runs[key]

    async def attach(self, tasks: Sequence[PairTask], *, progress: bool = True) -> list[PairTask]:
        """``tasks`` with ``runs`` set: model_a's answer's run and model_b's."""
        from tqdm.auto import tqdm

        wanted = dict.fromkeys(k for t in tasks for k in ((t.answer_a, t.language), (t.answer_b, t.language)))
        todo = [k for k in wanted if k not in self._runs]
        bar = tqdm(total=len(todo), desc="run code", unit="answer", disable=not progress or not todo)

        async def one(key: tuple[str, str | None]) -> None:
            await self.run_one(*key)
            bar.update(1)

        try:
            await asyncio.gather(*(one(k) for k in todo))
        finally:
            bar.close()
        return [replace(t, runs=(self._runs[(t.answer_a, t.language)], self._runs[(t.answer_b, t.language)]))
                for t in tasks]
