"""The in-process llama.cpp backend with the real built-in SmolLM2 weights (short generations)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from serving.backends import make_backend
from serving.backends.base import BackendError, ModelSpec, SamplingParams
from serving.backends.llamacpp import load_engine
from serving.weights import BUILTIN_WEIGHTS, resolve_weights

pytest.importorskip("llama_cpp")

GREEDY = SamplingParams(temperature=0.0, max_tokens=24, top_p=1.0, seed=1)
PROMPT = [{"role": "user", "content": "Write a Python function that reverses a string."}]


def assert_counts_agree(completion, max_tokens: int) -> None:
    assert 0 < completion.completion_tokens <= max_tokens
    assert completion.finish_reason in ("length", "stop")
    assert (completion.finish_reason == "length") == (completion.completion_tokens == max_tokens)


def smol(name: str = "smol", **changes) -> ModelSpec:
    spec = ModelSpec(name=name, backend="llamacpp", model="builtin:smollm2-135m", params=GREEDY,
                     options={"n_ctx": 1024})
    return replace(spec, **changes)


def test_stream_and_complete_give_the_same_greedy_answer():
    backend = make_backend(smol())

    async def go():
        chunks = [c async for c in backend.stream(PROMPT)]
        return chunks, await backend.complete(PROMPT)

    chunks, completion = asyncio.run(go())
    assert len(chunks) > 5 and "".join(chunks) == completion.text
    assert "def" in completion.text  # a real model answering a coding prompt with code
    # How many tokens a model writes before it stops differs between CPUs; what must hold is that the
    # count and the reason agree: cut at max_tokens means exactly max_tokens, a stop means fewer.
    assert_counts_agree(completion, GREEDY.max_tokens)
    assert completion.model == "smol" and completion.seconds > 0


def test_specs_over_the_same_weights_share_one_loaded_model():
    a, b = make_backend(smol("a")), make_backend(smol("b", system_prompt="Be terse."))
    engine_a = asyncio.run(a.engine())
    engine_b = asyncio.run(b.engine())
    assert engine_a is engine_b


def test_concurrent_calls_are_serialised_and_correct():
    backend = make_backend(smol(concurrency=3))

    async def go():
        return await asyncio.gather(*(backend.complete(PROMPT) for _ in range(3)))

    texts = {c.text for c in asyncio.run(go())}
    assert len(texts) == 1  # greedy decoding: interleaved access to one llama would corrupt these


def test_cancelled_stream_stops_and_the_model_stays_usable():
    backend = make_backend(smol())
    long = replace(GREEDY, max_tokens=400)

    async def go():
        before = await backend.complete(PROMPT)
        agen = backend.stream(PROMPT, long)
        first = await agen.__anext__()
        await agen.aclose()  # the consumer walks away after one token
        return before, first, await asyncio.wait_for(backend.complete(PROMPT), timeout=60)

    before, first, after = asyncio.run(go())
    # greedy: the model answers exactly as it did before the abandoned stream
    assert first and after.text == before.text and after.completion_tokens == before.completion_tokens


def test_timeout_is_a_backend_error_with_the_partial_text():
    backend = make_backend(smol(timeout_s=0.3))
    with pytest.raises(BackendError, match="'smol'.*timed out after 0.3 s") as info:
        asyncio.run(backend.complete(PROMPT, replace(GREEDY, max_tokens=2000)))
    assert isinstance(info.value.partial, str)


def test_altered_weights_are_refused_before_loading(tmp_path):
    real = resolve_weights("builtin:smollm2-135m")
    wrong = "0" * 64
    spec = smol(model=str(real), options={"sha256": wrong})
    ok, reason = make_backend(spec).availability()
    assert not ok and "altered" in reason
    with pytest.raises(BackendError, match=f"'smol'.*sha256 {BUILTIN_WEIGHTS['smollm2-135m'].sha256}, "
                                           f"expected {wrong}"):
        load_engine(spec)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    spec = smol(model=str(tmp_path / "nowhere.gguf"))
    assert make_backend(spec).availability() == (False, f"weights file {tmp_path / 'nowhere.gguf'} not found")
    with pytest.raises(BackendError, match="nowhere.gguf not found"):
        asyncio.run(make_backend(spec).complete(PROMPT))


def test_a_file_that_is_not_gguf_fails_with_the_model_name(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model" * 100)
    with pytest.raises(BackendError, match="'smol'.*llama.cpp cannot load"):
        load_engine(smol(model=str(junk)))
