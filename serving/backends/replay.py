"""Replay backend: answers read from a ``model_answer`` JSONL, for arenas over pregenerated answers.

``spec.model`` is the JSONL path. A chat is matched to a question by the text of its first user message
against ``options["questions"]`` (a ``question.jsonl``), or pinned with ``options["question_id"]``; the
number of user messages picks the turn, so multi-turn MT-bench answers replay too. Streaming is simulated
by chunking the stored text (``options["chars_per_s"]`` adds a delay, for demos and load tests).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

from serving.answers import AnswerFileError, AnswerRecord, Question, read_answers, read_questions
from serving.backends._limits import LoopSemaphore
from serving.backends.base import Backend, BackendError, Completion, Message, ModelSpec, SamplingParams

# Word-sized chunks (a word plus the whitespace after it) look like a model streaming tokens.
_CHUNK_RE = re.compile(r"\S+\s*|\s+")


def _key(text: str) -> str:
    return text.strip()


class ReplayBackend(Backend):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._answers: dict[str, AnswerRecord] | None = None
        self._by_prompt: dict[str, str] | None = None
        self._limit = LoopSemaphore(spec.concurrency)

    # -- data --------------------------------------------------------------------------------------
    def _load(self) -> dict[str, AnswerRecord]:
        if self._answers is None:
            try:
                self._answers = read_answers(self.spec.model)
            except AnswerFileError as exc:
                raise BackendError(self.name, f"cannot read replay answers: {exc}") from exc
        return self._answers

    def _prompt_index(self) -> dict[str, str]:
        if self._by_prompt is None:
            qpath = self.spec.options.get("questions")
            if not qpath:
                raise BackendError(self.name, "replay needs options.questions (a question.jsonl) to match "
                                   "prompts by text, or options.question_id")
            try:
                questions: dict[str, Question] = read_questions(qpath)
            except AnswerFileError as exc:
                raise BackendError(self.name, f"cannot read replay questions: {exc}") from exc
            self._by_prompt = {_key(q.turns[0]): q.question_id for q in questions.values()}
        return self._by_prompt

    def question_ids(self) -> list[str]:
        return list(self._load())

    def answer_for(self, question_id: str, turn: int = 1) -> str:
        """The stored answer to ``question_id`` at ``turn`` (1-based)."""
        rec = self._load().get(str(question_id))
        if rec is None:
            raise BackendError(self.name, f"no answer for question {question_id!r} in {self.spec.model}")
        if not 1 <= turn <= len(rec.turns):
            raise BackendError(self.name, f"question {question_id!r} has {len(rec.turns)} answered turn(s), "
                               f"turn {turn} was asked")
        return rec.turns[turn - 1]

    def question_id_for(self, messages: list[Message]) -> str:
        pinned = self.spec.options.get("question_id")
        if pinned is not None:
            return str(pinned)
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        if not users:
            raise BackendError(self.name, "no user message to match against the replay questions")
        qid = self._prompt_index().get(_key(users[0]))
        if qid is None:
            raise BackendError(self.name, f"prompt not among the replay questions ({users[0][:60]!r}...)")
        return qid

    def _answer(self, messages: list[Message]) -> str:
        turn = sum(1 for m in messages if m.get("role") == "user")
        return self.answer_for(self.question_id_for(messages), max(turn, 1))

    # -- Backend -----------------------------------------------------------------------------------
    def availability(self) -> tuple[bool, str]:
        path = Path(self.spec.model)
        if not path.is_file():
            return False, f"answer file {path} not found"
        qpath = self.spec.options.get("questions")
        if qpath and not Path(qpath).is_file():
            return False, f"questions file {qpath} not found"
        if not qpath and self.spec.options.get("question_id") is None:
            return False, "set options.questions (a question.jsonl) or options.question_id"
        return True, ""

    async def stream(self, messages: list[Message], params: SamplingParams | None = None) -> AsyncIterator[str]:
        text = self._answer(messages)
        cps = float(self.spec.options.get("chars_per_s") or 0)
        loop = asyncio.get_running_loop()
        async with self._limit.get():
            start, sent = loop.time(), 0
            for chunk in _CHUNK_RE.findall(text):
                sent += len(chunk)
                if cps > 0:
                    # Each piece is due when a model writing cps characters a second would have written
                    # it: a busy event loop delays pieces but not the pace (as a model's server keeps
                    # generating while its client is slow), and pieces already due go out together.
                    delay = start + sent / cps - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                yield chunk

    async def complete(self, messages: list[Message], params: SamplingParams | None = None) -> Completion:
        if self.spec.options.get("chars_per_s"):
            return await super().complete(messages, params)
        return Completion(text=self._answer(messages), model=self.name, seconds=0.0, finish_reason="stop")
