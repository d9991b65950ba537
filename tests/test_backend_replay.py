"""Replay backend over the real Arena-Hard and MT-bench pregenerated answers."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from serving.backends import make_backend
from serving.backends.base import BackendError, ModelSpec
from tests.conftest import require_shared


def _first_lines(path, n=3):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def _collect(backend, messages):
    async def go():
        return [chunk async for chunk in backend.stream(messages)]

    return asyncio.run(go())


@pytest.fixture
def arena_hard():
    root = require_shared("arena-hard-v0.1")
    spec = ModelSpec(name="gpt-4o", backend="replay", model=str(root / "model_answer/gpt-4o-2024-05-13.jsonl"),
                     options={"questions": str(root / "question.jsonl")})
    return root, make_backend(spec)


def test_replays_the_stored_answer_for_a_prompt_matched_by_text(arena_hard):
    root, backend = arena_hard
    question = _first_lines(root / "question.jsonl", 1)[0]
    answers = {json.loads(line)["question_id"]: json.loads(line)
               for line in open(root / "model_answer/gpt-4o-2024-05-13.jsonl", encoding="utf-8")}
    expected = answers[question["question_id"]]["choices"][0]["turns"][0]["content"]

    chunks = _collect(backend, [{"role": "user", "content": question["turns"][0]["content"]}])

    assert len(chunks) > 10, "a long answer arrives in several chunks, like a stream"
    assert "".join(chunks) == expected
    completion = asyncio.run(backend.complete([{"role": "user", "content": question["turns"][0]["content"]}]))
    assert completion.text == expected and completion.model == "gpt-4o"
    assert backend.availability() == (True, "")


def test_unknown_prompt_is_an_error_naming_the_model(arena_hard):
    _, backend = arena_hard
    with pytest.raises(BackendError, match="'gpt-4o'.*not among the replay questions"):
        _collect(backend, [{"role": "user", "content": "a prompt nobody pregenerated"}])


def test_pinned_question_id_and_answer_for(arena_hard):
    root, backend = arena_hard
    qid = _first_lines(root / "question.jsonl", 2)[1]["question_id"]
    pinned = make_backend(ModelSpec(name="pinned", backend="replay", model=backend.spec.model,
                                    options={"question_id": qid}))
    text = asyncio.run(pinned.complete([{"role": "user", "content": "whatever the UI shows"}])).text
    assert text == backend.answer_for(qid)
    with pytest.raises(BackendError, match="no answer for question 'nope'"):
        backend.answer_for("nope")


def test_multi_turn_mt_bench_replays_the_second_turn():
    root = require_shared("mt-bench-answers")
    spec = ModelSpec(name="gpt-4", backend="replay", model=str(root / "model_answer/gpt-4.jsonl"),
                     options={"questions": str(root / "question.jsonl")})
    backend = make_backend(spec)
    question = _first_lines(root / "question.jsonl", 1)[0]  # MT-bench: turns are bare strings, ids ints
    turn1 = backend.answer_for(str(question["question_id"]), 1)
    turn2 = backend.answer_for(str(question["question_id"]), 2)
    chat = [{"role": "user", "content": question["turns"][0]}, {"role": "assistant", "content": turn1},
            {"role": "user", "content": question["turns"][1]}]
    assert "".join(_collect(backend, chat)) == turn2 != turn1


def test_chars_per_s_paces_the_stream(arena_hard):
    root, backend = arena_hard
    question = _first_lines(root / "question.jsonl", 1)[0]
    qid = question["question_id"]
    text = backend.answer_for(qid)
    cps = len(text) / 0.5  # the whole answer in about half a second
    slow = make_backend(ModelSpec(name="slow", backend="replay", model=backend.spec.model,
                                  options={"question_id": qid, "chars_per_s": cps}))
    start = time.perf_counter()
    assert "".join(_collect(slow, [{"role": "user", "content": "x"}])) == text
    assert time.perf_counter() - start >= 0.4


def test_missing_files_make_the_model_unavailable(tmp_path):
    backend = make_backend(ModelSpec(name="ghost", backend="replay", model=str(tmp_path / "none.jsonl"),
                                     options={"questions": str(tmp_path / "q.jsonl")}))
    ok, reason = backend.availability()
    assert not ok and "none.jsonl" in reason
    with pytest.raises(BackendError, match="ghost.*no such file"):
        backend.answer_for("1")


def test_malformed_answer_file_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": 1, "choices": [{"turns": ["ok"]}]}\n{"question_id": 2, "choices": []}\n')
    backend = make_backend(ModelSpec(name="bad", backend="replay", model=str(bad), options={"question_id": 1}))
    with pytest.raises(BackendError, match=r"bad.jsonl:line 2: .choices. must be a non-empty list"):
        backend.answer_for("1")


def test_replay_specs_make_one_model_per_answer_file():
    from serving.models import replay_specs

    root = require_shared("arena-hard-v0.1")
    specs = replay_specs(root / "model_answer", root / "question.jsonl")
    assert len(specs) == 12 and "gpt-4o-2024-05-13" in specs
    question = _first_lines(root / "question.jsonl", 1)[0]
    chat = [{"role": "user", "content": question["turns"][0]["content"]}]
    answers = {name: asyncio.run(make_backend(s).complete(chat)).text for name, s in specs.items()}
    assert len(set(answers.values())) == 12  # twelve real models, twelve different answers


@pytest.mark.parametrize("concurrency", [1, 2])
def test_concurrency_limit_holds_back_extra_streams(arena_hard, concurrency):
    _, backend = arena_hard
    qid = backend.question_ids()[0]
    limited = make_backend(ModelSpec(name="limited", backend="replay", model=backend.spec.model,
                                     concurrency=concurrency, options={"question_id": qid, "chars_per_s": 2000}))
    chat = [{"role": "user", "content": "x"}]

    async def go() -> bool:
        first, second = limited.stream(chat), limited.stream(chat)
        await first.__anext__()  # the first stream holds a slot while it is being read
        try:
            await asyncio.wait_for(second.__anext__(), timeout=0.3)
            started = True
        except asyncio.TimeoutError:
            started = False
        await first.aclose()
        await second.aclose()
        return started

    assert asyncio.run(go()) is (concurrency == 2)
