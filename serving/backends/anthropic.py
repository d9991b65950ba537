"""Anthropic's Messages API through the ``anthropic`` client (streaming over SSE).

System text goes in the request's ``system`` field, not in the messages. The client retries 429/5xx/529
with exponential backoff (``spec.max_retries``). Of the sampling params only ``max_tokens`` is sent: the
installed client (anthropic 2.x) no longer has ``temperature``/``top_p`` and ``seed`` never existed there.
A model that still takes them gets them from ``options.extra_body`` (e.g. ``{temperature = 0.2}``), sent
verbatim.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from serving.backends._remote import RemoteBackend, StreamEnd, api_key, key_problem
from serving.backends.base import Completion, Message, SamplingParams

DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicBackend(RemoteBackend):
    DEFAULT_BASE_URL = DEFAULT_BASE_URL
    SDK = "anthropic"

    def _make_client(self, base_url: str, max_retries: int) -> Any:
        from anthropic import AsyncAnthropic

        return AsyncAnthropic(api_key=api_key(self.spec, required=True), base_url=base_url,
                              timeout=self.spec.timeout_s, max_retries=max_retries)

    def availability(self) -> tuple[bool, str]:
        # No probe: the real endpoint is a paid API; a missing key is what a listing can tell cheaply.
        problem = key_problem(self.spec, required=True)
        return (not problem), problem

    def _request(self, messages: list[Message], params: SamplingParams | None) -> dict[str, Any]:
        p = params or self.spec.params
        full = self.with_system(messages)
        system = "\n\n".join(m["content"] for m in full if m.get("role") == "system")
        kwargs: dict[str, Any] = {
            "model": self.spec.model, "max_tokens": p.max_tokens,
            "messages": [{"role": m["role"], "content": m["content"]} for m in full if m.get("role") != "system"],
        }
        if system:
            kwargs["system"] = system
        extra = self.spec.options.get("extra_body")
        if extra:
            kwargs["extra_body"] = dict(extra)
        return kwargs

    STREAM_END = "message_stop"

    async def _stream_texts(self, client: Any, request: dict[str, Any], end: StreamEnd) -> AsyncIterator[str]:
        async with client.messages.stream(**request) as events:
            async for text in events.text_stream:
                yield text
            # None: no message_delta/message_stop arrived, the connection was cut.
            snapshot = events.current_message_snapshot
            end.reason = snapshot.stop_reason
            usage = getattr(snapshot, "usage", None)
            end.completion_tokens = getattr(usage, "output_tokens", None)

    async def _create(self, client: Any, request: dict[str, Any]) -> Any:
        return await client.messages.create(**request)

    def _completion(self, resp: Any, seconds: float) -> Completion:
        text = "".join(getattr(block, "text", "") for block in resp.content)
        return Completion(text=text, model=self.name, prompt_tokens=resp.usage.input_tokens,
                          completion_tokens=resp.usage.output_tokens, seconds=seconds,
                          finish_reason=resp.stop_reason)
