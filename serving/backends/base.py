"""The one interface every model backend implements (llamacpp, openai, anthropic, vllm, replay).

Async, with streaming and non-streaming calls. A backend that fails raises :class:`BackendError` naming
the model and the cause; one that fails mid-stream raises it after the text already yielded, so callers
can show a marked error rather than a silently truncated answer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]  # OpenAI chat format: {"role": "system"|"user"|"assistant", "content": str}


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    max_tokens: int = 1024
    top_p: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One entry of models.toml. Remote backends name the env var that holds the key, never the key."""

    name: str
    backend: str  # llamacpp | openai | anthropic | vllm | replay
    model: str  # model id, local path, or (replay) a model_answer JSONL path
    params: SamplingParams = field(default_factory=SamplingParams)
    system_prompt: str | None = None
    base_url: str | None = None
    # Several servers of this one model (a pool): requests go to the least busy healthy one. Used instead of
    # base_url; see serving.backends.pool.
    base_urls: tuple[str, ...] = ()
    api_key_env: str | None = None
    concurrency: int = 1  # requests in flight at once for this model
    timeout_s: float = 600.0
    max_retries: int = 3
    options: dict[str, Any] = field(default_factory=dict)  # backend-specific extras (n_ctx, n_threads, ...)


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float | None = None
    finish_reason: str | None = None
    first_token_s: float | None = None  # where the backend saw the first token (not over non-streaming HTTP)
    endpoint: str | None = None  # the server that answered (remote backends)


@dataclass
class CallReport:
    """What a backend tells its caller about one streamed call beyond the text, filled in during the call:
    the endpoint that served it and, where the server counts them, the completion tokens."""

    endpoint: str | None = None
    completion_tokens: int | None = None


class BackendError(RuntimeError):
    """A model call that failed, with the model's name and the cause in the message."""

    def __init__(self, model: str, cause: str, *, partial: str = "") -> None:
        super().__init__(f"model {model!r}: {cause}")
        self.model = model
        self.cause = cause
        self.partial = partial  # text streamed before the failure, if any


class Backend(ABC):
    """Base class: subclasses implement ``stream``; ``complete`` joins the stream unless overridden."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    def availability(self) -> tuple[bool, str]:
        """(usable now, reason when not). Cheap: no generation."""
        return True, ""

    @abstractmethod
    def stream(self, messages: list[Message], params: SamplingParams | None = None) -> AsyncIterator[str]:
        """Yield text deltas of the assistant's reply."""

    def stream_reported(self, messages: list[Message], params: SamplingParams | None = None, *,
                        report: CallReport) -> AsyncIterator[str]:
        """:meth:`stream`, also filling ``report`` where the backend knows more than the text (remote
        backends: the endpoint, the server's token count). By default the text is all there is."""
        return self.stream(messages, params)

    async def complete(self, messages: list[Message], params: SamplingParams | None = None) -> Completion:
        import time

        start = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        report = CallReport()
        async for delta in self.stream_reported(messages, params, report=report):
            if first is None and delta:
                first = time.perf_counter() - start
            parts.append(delta)
        return Completion(text="".join(parts), model=self.name, seconds=time.perf_counter() - start,
                          completion_tokens=report.completion_tokens, first_token_s=first,
                          endpoint=report.endpoint)

    #: Whether :meth:`complete_with_grammar` constrains output (llama.cpp's GBNF grammars).
    supports_grammar: bool = False

    async def complete_with_grammar(self, messages: list[Message], params: SamplingParams,
                                    grammar: str) -> Completion:
        """A reply constrained to the GBNF ``grammar``; backends that cannot constrain their output answer
        with a plain completion (callers check :attr:`supports_grammar` when it matters)."""
        return await self.complete(messages, params)

    async def aclose(self) -> None:
        """Release clients, servers or in-process engines (nothing to release by default)."""
        return None

    def with_system(self, messages: list[Message]) -> list[Message]:
        if self.spec.system_prompt and not any(m.get("role") == "system" for m in messages):
            return [{"role": "system", "content": self.spec.system_prompt}, *messages]
        return list(messages)
