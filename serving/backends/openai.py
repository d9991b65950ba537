"""Any OpenAI-compatible server through the ``openai`` client: OpenAI itself, ``vllm serve``, llama.cpp's
server, Ollama. The client retries 429/5xx and connection errors with exponential backoff
(``spec.max_retries``); ``spec.timeout_s`` bounds each request."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from serving.backends._remote import RemoteBackend, api_key, key_problem, probe
from serving.backends.base import BackendError, Completion, Message, SamplingParams

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIBackend(RemoteBackend):
    DEFAULT_BASE_URL = DEFAULT_BASE_URL
    SDK = "openai"

    def _make_client(self) -> Any:
        from openai import AsyncOpenAI

        return AsyncOpenAI(base_url=self.base_url, api_key=api_key(self.spec, required=self.spec.base_url is None),
                           timeout=self.spec.timeout_s, max_retries=self.spec.max_retries)

    def availability(self) -> tuple[bool, str]:
        problem = key_problem(self.spec, required=self.spec.base_url is None) or probe(self.base_url)
        return (not problem), problem

    def _request(self, messages: list[Message], params: SamplingParams | None) -> dict[str, Any]:
        p = params or self.spec.params
        kwargs: dict[str, Any] = {"model": self.spec.model, "messages": self.with_system(messages),
                                  "temperature": p.temperature, "top_p": p.top_p, "max_tokens": p.max_tokens}
        if p.seed is not None:
            kwargs["seed"] = p.seed
        return kwargs

    async def stream(self, messages: list[Message], params: SamplingParams | None = None) -> AsyncIterator[str]:
        client = self._clients.get()
        received: list[str] = []
        async with self._limit.get():
            try:
                stream = await client.chat.completions.create(**self._request(messages, params), stream=True)
                finish: str | None = None
                async with stream:
                    async for chunk in stream:
                        if not chunk.choices:
                            continue
                        finish = chunk.choices[0].finish_reason or finish
                        if chunk.choices[0].delta.content:
                            received.append(chunk.choices[0].delta.content)
                            yield chunk.choices[0].delta.content
                if finish is None:
                    # The connection closed before the server said the answer was over: a cut, not an end.
                    raise BackendError(self.name, f"stream from {self.base_url} ended without a finish reason "
                                       f"(after {len(''.join(received))} characters)", partial="".join(received))
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001 - transport errors mid-stream too: never a silent cut
                raise self._error(exc, "".join(received)) from exc

    async def complete(self, messages: list[Message], params: SamplingParams | None = None) -> Completion:
        client = self._clients.get()
        start = time.perf_counter()
        async with self._limit.get():
            try:
                resp = await client.chat.completions.create(**self._request(messages, params))
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._error(exc, "") from exc
        choice = resp.choices[0]
        usage = resp.usage
        return Completion(text=choice.message.content or "", model=self.name,
                          prompt_tokens=usage.prompt_tokens if usage else None,
                          completion_tokens=usage.completion_tokens if usage else None,
                          seconds=time.perf_counter() - start, finish_reason=choice.finish_reason)

    async def aclose(self) -> None:
        client = self._clients.pop_current()
        if client is not None:
            await client.close()
