"""Anthropic's Messages API through the ``anthropic`` client (streaming over SSE).

System text goes in the request's ``system`` field, not in the messages. The client retries 429/5xx/529
with exponential backoff (``spec.max_retries``). Of the sampling params only ``max_tokens`` is sent: the
installed client (anthropic 2.x) no longer has ``temperature``/``top_p`` and ``seed`` never existed there.
A model that still takes them gets them from ``options.extra_body`` (e.g. ``{temperature = 0.2}``), sent
verbatim.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from serving.backends._remote import RemoteBackend, api_key, key_problem
from serving.backends.base import BackendError, Completion, Message, SamplingParams

DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicBackend(RemoteBackend):
    DEFAULT_BASE_URL = DEFAULT_BASE_URL
    SDK = "anthropic"

    def _make_client(self) -> Any:
        from anthropic import AsyncAnthropic

        return AsyncAnthropic(api_key=api_key(self.spec, required=True), base_url=self.base_url,
                              timeout=self.spec.timeout_s, max_retries=self.spec.max_retries)

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

    async def stream(self, messages: list[Message], params: SamplingParams | None = None) -> AsyncIterator[str]:
        client = self._clients.get()
        received: list[str] = []
        async with self._limit.get():
            try:
                async with client.messages.stream(**self._request(messages, params)) as events:
                    async for text in events.text_stream:
                        if text:
                            received.append(text)
                            yield text
                    stop_reason = events.current_message_snapshot.stop_reason
                if stop_reason is None:
                    # No message_delta/message_stop arrived: the connection was cut, the answer is incomplete.
                    raise BackendError(self.name, f"stream from {self.base_url} ended before message_stop "
                                       f"(after {len(''.join(received))} characters)", partial="".join(received))
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001 - mid-stream errors too: never a silent truncation
                raise self._error(exc, "".join(received)) from exc

    async def complete(self, messages: list[Message], params: SamplingParams | None = None) -> Completion:
        client = self._clients.get()
        start = time.perf_counter()
        async with self._limit.get():
            try:
                resp = await client.messages.create(**self._request(messages, params))
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._error(exc, "") from exc
        text = "".join(getattr(block, "text", "") for block in resp.content)
        return Completion(text=text, model=self.name, prompt_tokens=resp.usage.input_tokens,
                          completion_tokens=resp.usage.output_tokens, seconds=time.perf_counter() - start,
                          finish_reason=resp.stop_reason)

    async def aclose(self) -> None:
        client = self._clients.pop_current()
        if client is not None:
            await client.close()
