"""Measuring an answer's latency (votes.latency.AnswerTiming) from where the caller stands: a streamed
answer is timed as it arrives, a completed one from what the backend reports."""

from __future__ import annotations

import time
from collections.abc import Callable

from serving.backends.base import CallReport, Completion
from votes.latency import AnswerTiming


class AnswerClock:
    """Times one streamed answer: started when made, :meth:`saw` for each delta, :meth:`timing` at the end.
    Times include any wait for a free slot and any move to another endpoint: what the user waited."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._start = clock()
        self._first: float | None = None
        self.deltas = 0

    def saw(self, text: str) -> None:
        if not text:
            return
        if self._first is None:
            self._first = self._clock()
        self.deltas += 1

    def timing(self, report: CallReport | None = None) -> AnswerTiming:
        end = self._clock()
        server_tokens = report.completion_tokens if report is not None else None
        if server_tokens is not None:
            tokens, source = server_tokens, "server"
        else:
            tokens, source = self.deltas, "chunks"
        return AnswerTiming(total_s=end - self._start,
                            ttft_s=None if self._first is None else self._first - self._start,
                            tokens=tokens, tokens_source=source,
                            endpoint=report.endpoint if report is not None else None)


def completion_timing(completion: Completion) -> AnswerTiming | None:
    """A completed answer's timing; None when the backend did not time it (a replayed answer says 0 s)."""
    if completion.seconds is None or completion.seconds <= 0:
        return None
    first = completion.first_token_s
    if first is not None:
        first = min(first, completion.seconds)
    tokens = completion.completion_tokens
    return AnswerTiming(total_s=completion.seconds, ttft_s=first, tokens=tokens,
                        tokens_source="server" if tokens is not None else None, endpoint=completion.endpoint)
