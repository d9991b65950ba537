"""Drive VLLMBackend on a model folder and write what it returned as JSON (run inside the vLLM venv).

Usage: python run_backend.py MODEL_DIR OUT_JSON

tests/test_vllm_backend.py runs this with the vLLM environment's python and asserts on the JSON; the
script itself only records, so a wrong answer fails the test rather than this script.
vLLM spawns its engine process, hence the ``__main__`` guard.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from serving.backends import make_backend
from serving.backends.base import BackendError, Message, ModelSpec, SamplingParams

CHATS: list[list[Message]] = [
    [{"role": "user", "content": "write a function that returns the sum of two numbers"}],
    [{"role": "user", "content": "reverse a string in python"}],
    [
        {"role": "user", "content": "sort a list"},
        {"role": "assistant", "content": "def sort ( x ) : return x"},
        {"role": "user", "content": "test that code"},
    ],
]
# Small engine: the CPU KV cache and context are sized for a 512-position toy model.
OPTIONS: dict[str, Any] = {"max_model_len": 256, "enforce_eager": True}
SHORT_MAX_TOKENS = 3


def params(seed: int) -> SamplingParams:
    return SamplingParams(temperature=1.0, top_p=1.0, max_tokens=8, seed=seed)


def as_dicts(completions: list[Any]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(c) for c in completions]


async def error_of(spec: ModelSpec) -> dict[str, Any]:
    backend = make_backend(spec)
    try:
        await backend.complete(CHATS[0], params(1))
    except BackendError as exc:
        return {"type": "BackendError", "model": exc.model, "message": str(exc),
                "availability": list(backend.availability())}
    except Exception as exc:  # recorded so the test shows what leaked instead of a BackendError
        return {"type": type(exc).__name__, "message": str(exc)}
    return {"type": None, "message": "no error"}


async def main(model_dir: Path, out: Path) -> None:
    spec = ModelSpec(name="tiny-llama", backend="vllm", model=str(model_dir), options=OPTIONS)
    backend = make_backend(spec)
    result: dict[str, Any] = {"backend_class": type(backend).__name__,
                              "backend_file": sys.modules[type(backend).__module__].__file__,
                              "availability": list(backend.availability())}

    start = time.perf_counter()
    single = await backend.complete(CHATS[0], params(1234))
    result["first_call_s"] = time.perf_counter() - start  # includes the engine start
    result["complete"] = dataclasses.asdict(single)
    result["stream"] = [delta async for delta in backend.stream(CHATS[0], params(1234))]

    start = time.perf_counter()
    result["batch"] = as_dicts(await backend.complete_many(CHATS, params(1234)))
    result["batch_s"] = time.perf_counter() - start
    result["batch_again"] = as_dicts(await backend.complete_many(CHATS, params(1234)))
    result["batch_other_seed"] = as_dicts(await backend.complete_many(CHATS, params(99)))
    result["empty_batch"] = as_dicts(await backend.complete_many([], params(1)))

    # Concurrent callers with different sampling params: the engine thread may merge them into one
    # LLM.chat call, and each caller must still get its own answer under its own params.
    calls_before = backend.engine_calls
    short = SamplingParams(temperature=1.0, max_tokens=SHORT_MAX_TOKENS, seed=5)
    result["concurrent"] = as_dicts(list(await asyncio.gather(
        backend.complete(CHATS[0], params(1234)), backend.complete(CHATS[1], short),
        backend.complete(CHATS[2], params(1234)))))
    result["concurrent_engine_calls"] = backend.engine_calls - calls_before

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    result["template_prompt_tokens"] = [
        len(tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)["input_ids"])
        for chat in CHATS
    ]

    with_system = make_backend(dataclasses.replace(spec, name="tiny-llama-sys",
                                                   system_prompt="you are a python code assistant"))
    # A second engine on the same folder: close the first one so two do not hold memory at once.
    await backend.aclose()
    result["with_system"] = dataclasses.asdict(await with_system.complete(CHATS[0], params(1234)))
    await with_system.aclose()

    result["missing_folder"] = await error_of(
        ModelSpec(name="ghost", backend="vllm", model=str(model_dir.parent / "no-such-model")))
    broken = model_dir.parent / "broken-model"
    broken.mkdir(exist_ok=True)
    (broken / "config.json").write_text(json.dumps({"model_type": "not-a-real-architecture"}))
    result["broken_config"] = await error_of(
        ModelSpec(name="broken", backend="vllm", model=str(broken), options=OPTIONS))

    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: run_backend.py MODEL_DIR OUT_JSON")
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
