"""Any OpenAI-compatible server through the ``openai`` client: OpenAI itself, ``vllm serve``, llama.cpp's
server, Ollama. The client retries 429/5xx and connection errors with exponential backoff
(``spec.max_retries``); ``spec.timeout_s`` bounds each request. A model with ``base_urls`` is a pool of
such servers (serving.backends.pool): a failed request moves to the next endpoint instead of retrying.

``options.stream_usage = true`` asks the server for its token count at the end of a stream
(``stream_options.include_usage``: OpenAI, vLLM); off by default, since a strict server may refuse an
option it does not know. Without it a streamed answer's tokens are its counted deltas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from serving.backends._remote import RemoteBackend, StreamEnd, api_key, key_problem
from serving.backends.base import Completion, Message, SamplingParams

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIBackend(RemoteBackend):
    DEFAULT_BASE_URL = DEFAULT_BASE_URL
    SDK = "openai"

    @property
    def _key_required(self) -> bool:
        # Only OpenAI itself (no base_url given) rejects calls without a key; local servers ignore it.
        return self.spec.base_url is None and not self.spec.base_urls

    def _make_client(self, base_url: str, max_retries: int) -> Any:
        from openai import AsyncOpenAI

        return AsyncOpenAI(base_url=base_url, api_key=api_key(self.spec, required=self._key_required),
                           timeout=self.spec.timeout_s, max_retries=max_retries)

    def availability(self) -> tuple[bool, str]:
        problem = key_problem(self.spec, required=self._key_required) or self.probe_endpoints()
        return (not problem), problem

    def _request(self, messages: list[Message], params: SamplingParams | None) -> dict[str, Any]:
        p = params or self.spec.params
        kwargs: dict[str, Any] = {"model": self.spec.model, "messages": self.with_system(messages),
                                  "temperature": p.temperature, "top_p": p.top_p, "max_tokens": p.max_tokens}
        if p.seed is not None:
            kwargs["seed"] = p.seed
        return kwargs

    async def _stream_texts(self, client: Any, request: dict[str, Any], end: StreamEnd) -> AsyncIterator[str]:
        extra = {"stream_options": {"include_usage": True}} if self.spec.options.get("stream_usage") else {}
        stream = await client.chat.completions.create(**request, stream=True, **extra)
        async with stream:
            async for chunk in stream:
                usage = getattr(chunk, "usage", None)
                if usage is not None and usage.completion_tokens is not None:
                    end.completion_tokens = usage.completion_tokens
                if not chunk.choices:
                    continue
                end.reason = chunk.choices[0].finish_reason or end.reason
                if chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

    async def _create(self, client: Any, request: dict[str, Any]) -> Any:
        return await client.chat.completions.create(**request)

    def _completion(self, resp: Any, seconds: float) -> Completion:
        choice, usage = resp.choices[0], resp.usage
        return Completion(text=choice.message.content or "", model=self.name,
                          prompt_tokens=usage.prompt_tokens if usage else None,
                          completion_tokens=usage.completion_tokens if usage else None,
                          seconds=seconds, finish_reason=choice.finish_reason)
