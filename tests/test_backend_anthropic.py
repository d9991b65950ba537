"""The Anthropic backend: the real ``anthropic`` client against a local server speaking the Messages API."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from serving.backends import make_backend
from serving.backends.base import BackendError, ModelSpec, SamplingParams
from tests.fake_anthropic import FakeAnthropic

PROMPT = [{"role": "user", "content": "Write add(a, b) in Python."}]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("CODEARENA_TEST_ANTHROPIC_KEY", "test-key-123")


def spec(url: str, **changes) -> ModelSpec:
    base = ModelSpec(name="claude", backend="anthropic", model="claude-test", base_url=url,
                     api_key_env="CODEARENA_TEST_ANTHROPIC_KEY", system_prompt="You write Python.",
                     params=SamplingParams(temperature=0.3, max_tokens=64, top_p=1.0, seed=5),
                     max_retries=2, timeout_s=10)
    return replace(base, **changes)


def collect(backend) -> list[str]:
    async def go():
        try:
            return [c async for c in backend.stream(PROMPT)]
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_streams_the_sse_text_and_sends_a_proper_request(key):
    with FakeAnthropic() as fake:
        chunks = collect(make_backend(spec(fake.url)))
        completion = asyncio.run(make_backend(spec(fake.url)).complete(PROMPT))
    assert "".join(chunks) == fake.reply and len(chunks) > 3
    assert completion.text == fake.reply and completion.completion_tokens == len(chunks)
    assert completion.finish_reason == "end_turn"
    request = fake.requests[0]
    headers = request["headers"]  # the key from the named variable; header style depends on the client version
    assert "test-key-123" in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    body = request["body"]
    assert body["system"] == "You write Python."  # system text goes in its own field
    assert body["messages"] == PROMPT and body["model"] == "claude-test"
    assert (body["max_tokens"], body["stream"]) == (64, True)
    assert "temperature" not in body and "seed" not in body  # the client has no such fields any more


def test_options_extra_body_is_sent_verbatim(key):
    with FakeAnthropic() as fake:
        asyncio.run(make_backend(spec(fake.url, options={"extra_body": {"temperature": 0.2}})).complete(PROMPT))
    assert fake.requests[0]["body"]["temperature"] == 0.2


def test_overloaded_and_5xx_answers_are_retried(key):
    with FakeAnthropic(fail_first=[529, 500]) as fake:
        text = asyncio.run(make_backend(spec(fake.url)).complete(PROMPT)).text
    assert text == fake.reply and len(fake.requests) == 3


def test_retries_exhausted_is_an_error_with_the_status(key):
    with FakeAnthropic(fail_first=[429, 429, 429]) as fake:
        with pytest.raises(BackendError, match=r"'claude'.*HTTP 429 from http://127.0.0.1:\d+ \(rate limited"):
            asyncio.run(make_backend(spec(fake.url)).complete(PROMPT))
    assert len(fake.requests) == 3  # the first try and max_retries=2


def test_error_mid_stream_is_marked_with_the_partial_text(key):
    with FakeAnthropic(error_after_chunks=3) as fake:
        with pytest.raises(BackendError, match=r"'claude'.*after 12 characters") as info:
            collect(make_backend(spec(fake.url)))
    assert info.value.partial == fake.reply[:12]


def test_connection_cut_mid_stream_is_not_a_silent_truncation(key):
    with FakeAnthropic(drop_after_chunks=2) as fake:
        with pytest.raises(BackendError, match=r"'claude'.*ended before message_stop \(after 8 characters\)") as info:
            collect(make_backend(spec(fake.url)))
    assert info.value.partial == fake.reply[:8]


def test_missing_key_variable_is_named(monkeypatch):
    monkeypatch.delenv("CODEARENA_TEST_ANTHROPIC_KEY", raising=False)
    backend = make_backend(spec("http://127.0.0.1:9"))
    assert backend.availability() == (False, "environment variable CODEARENA_TEST_ANTHROPIC_KEY (api_key_env) "
                                             "is not set")
    with pytest.raises(BackendError, match="CODEARENA_TEST_ANTHROPIC_KEY"):
        asyncio.run(backend.complete(PROMPT))
