"""Answer generation: one model over a prompt set, into a ``model_answer`` JSONL (and optionally the store).

Resumable: prompts already answered by this model in the output file are skipped, and each answer is
appended and flushed as soon as it is complete, so a crash loses only the answers in flight. Prompts run
concurrently up to the model's ``concurrency``; multi-turn prompts (MT-bench) feed each reply back before
the next user turn.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from serving.answers import answer_row, append_row, done_question_ids
from serving.backends.base import Backend, BackendError, Completion, Message, SamplingParams
from serving.latency import completion_timing


class PromptLike(Protocol):
    id: str
    messages: list[dict[str, str]]
    followups: list[str]


class AnswerStore(Protocol):
    """Where generated answers are also kept (votes.store.VoteStore is one)."""

    def add_answers(self, rows: Iterable[dict[str, Any]], *, replace: bool = False) -> Any: ...


class GenerateError(ValueError):
    """Generation cannot start (output folder missing, model unusable); nothing was written."""


@dataclass
class GenerateReport:
    model: str
    out: Path
    total: int  # prompts asked for
    skipped: int  # already answered in ``out`` before this run
    generated: int = 0
    tokens: int = 0  # completion tokens, where the backend reports them
    seconds: float = 0.0  # wall time of this run's generation
    failures: list[tuple[str, str]] = field(default_factory=list)  # (prompt id, cause)
    answers: dict[str, str] = field(default_factory=dict)  # prompt id -> first turn, of this run's answers

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Answer:
    prompt_id: str
    turns: list[str]
    completions: list[Completion]


async def answer_prompt(backend: Backend, prompt: PromptLike, params: SamplingParams | None = None) -> Answer:
    """All turns of one prompt: the first from its messages, each follow-up after the previous reply."""
    messages: list[Message] = list(prompt.messages)
    completions: list[Completion] = []
    for followup in [None, *getattr(prompt, "followups", [])]:
        if followup is not None:
            messages = [*messages, {"role": "assistant", "content": completions[-1].text},
                        {"role": "user", "content": followup}]
        completions.append(await backend.complete(messages, params))
    return Answer(prompt.id, [c.text for c in completions], completions)


async def agenerate(backend: Backend, prompts: Sequence[PromptLike], out: str | Path, *,
                    params: SamplingParams | None = None, store: AnswerStore | None = None, progress: bool = True,
                    source: str = "generate") -> GenerateReport:
    """Answer every prompt not yet in ``out``; see the module docstring. ``store``: a VoteStore or None."""
    out = Path(out)
    if not out.parent.is_dir():
        raise GenerateError(f"output folder {out.parent} does not exist")
    if out.is_dir():
        raise GenerateError(f"{out} is a folder; give a .jsonl file path")
    model_id = backend.name
    done = done_question_ids(out, model_id)
    unique: dict[str, PromptLike] = {}
    for p in prompts:
        unique.setdefault(str(p.id), p)
    pending = [p for pid, p in unique.items() if pid not in done]
    report = GenerateReport(model=model_id, out=out, total=len(unique), skipped=len(unique) - len(pending))
    if not pending:
        return report

    from tqdm.auto import tqdm

    limit = asyncio.Semaphore(max(1, backend.spec.concurrency))
    bar = tqdm(total=len(pending), desc=f"generate {model_id}", unit="prompt", disable=not progress)
    fh: IO[str] | None = None
    start = time.perf_counter()

    async def one(prompt: PromptLike) -> Answer | tuple[str, str]:
        async with limit:
            try:
                return await answer_prompt(backend, prompt, params)
            except BackendError as exc:
                return (str(prompt.id), exc.cause)

    try:
        for next_done in asyncio.as_completed([one(p) for p in pending]):
            result = await next_done
            if isinstance(result, tuple):
                report.failures.append(result)
                bar.set_postfix_str(f"{len(report.failures)} failed")
                bar.update(1)
                continue
            lens = [c.completion_tokens for c in result.completions]
            timings = [completion_timing(c) for c in result.completions]
            timing_dicts = [t.to_dict() if t is not None else None for t in timings]
            row = answer_row(result.prompt_id, model_id, result.turns, lens, timing_dicts)
            if fh is None:  # opened on the first answer: a run that fails at once leaves no file behind
                fh = _open_for_append(out)
            append_row(fh, row)
            if store is not None:
                store.add_answers([{
                    "model": model_id, "question_id": result.prompt_id, "turns": result.turns, "source": source,
                    "meta": {"answer_id": row["answer_id"], "token_len": lens,
                             "seconds": [c.seconds for c in result.completions], "file": str(out),
                             # One per turn (None where untimed): votes.latency.timings_from_meta reads it.
                             "timing": timing_dicts},
                }], replace=True)
            report.generated += 1
            report.answers[result.prompt_id] = result.turns[0]
            report.tokens += sum(n or 0 for n in lens)
            report.seconds = time.perf_counter() - start
            bar.set_postfix_str(f"{report.tokens_per_s:.1f} tok/s")
            bar.update(1)
    finally:
        report.seconds = time.perf_counter() - start
        bar.close()
        if fh is not None:
            fh.close()
    return report


def _open_for_append(path: Path) -> IO[str]:
    """Append mode. A torn last line (a crash mid-write) is cut off first: it is not an answer, the resume
    scan already ignored it, and leaving it would break every reader of the file."""
    if path.exists():
        with path.open("r+b") as fh:
            end = fh.seek(0, 2)
            pos = end
            while pos > 0:
                step = min(pos, 1 << 16)
                fh.seek(pos - step)
                block = fh.read(step)
                cut = block.rfind(b"\n")
                if cut >= 0:
                    pos = pos - step + cut + 1
                    break
                pos -= step
            if pos != end:
                fh.truncate(pos)
    return path.open("a", encoding="utf-8")


def generate_answers(backend: Backend, prompts: Sequence[PromptLike], out: str | Path, **kwargs: Any) -> GenerateReport:
    """Blocking wrapper of :func:`agenerate` that also releases the backend."""

    async def main() -> GenerateReport:
        try:
            return await agenerate(backend, prompts, out, **kwargs)
        finally:
            await backend.aclose()

    return asyncio.run(main())
