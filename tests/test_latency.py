"""Answer latency: the record (votes.latency), measuring it (serving.latency), carrying it from the arena's
streams to the vote, the per-model medians (ratings.latency) and `codearena rate --format json`."""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest

from arena_ui.battle import BattleRegistry, PromptInfo
from arena_ui.streams import stream_pair
from codearena.cli import main
from ratings.latency import LATENCY_COLUMNS, battle_timings_frame, median_latency, timings_frame
from serving.backends import make_backend
from serving.backends.base import CallReport, Completion, ModelSpec
from serving.latency import AnswerClock, completion_timing
from votes import Battle, VoteStore
from votes.latency import (
    AnswerTiming,
    BattleTimings,
    TimingRecordError,
    battle_with_timings,
    timings_from_meta,
)


def test_timing_record_round_trips_and_refuses_nonsense():
    t = AnswerTiming(total_s=2.0, ttft_s=0.5, tokens=40, tokens_source="server", endpoint="http://a/v1")
    assert t.tokens_per_s == 20.0
    stored = json.loads(json.dumps(t.to_dict()))
    assert stored["tokens_per_s"] == 20.0 and AnswerTiming.from_dict(stored) == t
    assert AnswerTiming(total_s=1.0).tokens_per_s is None
    for bad, message in [
        ({"total_s": -1}, "non-negative"),
        ({"total_s": 1.0, "ttft_s": 2.0}, "after the end"),
        ({"total_s": 1.0, "tokens": 2.5}, "whole number"),
        ({"total_s": float("nan")}, "non-negative"),
        ({"total_s": 1.0, "tokens_source": "guess"}, "tokens_source"),
        ({"total_s": 1.0, "speed": 3}, "unknown timing field"),
        ({"ttft_s": 1.0}, "needs total_s"),
    ]:
        with pytest.raises(TimingRecordError, match=message):
            AnswerTiming.from_dict(bad)
    battle = BattleTimings.of([t, None], [AnswerTiming(total_s=1.0)])
    assert len(battle.a) == 1 and BattleTimings.from_dict(json.loads(json.dumps(battle.to_dict()))) == battle
    assert timings_from_meta({"timing": [t.to_dict(), None]}) == [t]
    assert timings_from_meta({"token_len": [3]}) == [] and timings_from_meta(None) == []


def test_clock_times_the_stream_and_prefers_the_servers_count():
    ticks = iter([10.0, 10.5, 11.0])
    clock = AnswerClock(clock=lambda: next(ticks))
    for text in ("", "def", " f", "():"):  # an empty delta is not the first token
        clock.saw(text)
    timing = clock.timing(CallReport(endpoint="http://b/v1", completion_tokens=5))
    assert timing == AnswerTiming(total_s=1.0, ttft_s=0.5, tokens=5, tokens_source="server",
                                  endpoint="http://b/v1")
    ticks = iter([0.0, 0.5, 2.0])
    counted = AnswerClock(clock=lambda: next(ticks))
    counted.saw("x")
    counted.saw("y")
    assert counted.timing() == AnswerTiming(total_s=2.0, ttft_s=0.5, tokens=2, tokens_source="chunks")
    assert completion_timing(Completion(text="x", model="m", seconds=0.0)) is None  # replay: untimed
    done = completion_timing(Completion(text="x", model="m", seconds=2.0, completion_tokens=8, endpoint="e"))
    assert (done.ttft_s, done.tokens_per_s, done.tokens_source, done.endpoint) == (None, 4.0, "server", "e")


def replay(tmp_path, name: str, text: str) -> ModelSpec:
    path = tmp_path / f"{name}.jsonl"
    path.write_text(json.dumps({"question_id": "q1", "model_id": name,
                                "choices": [{"index": 0, "turns": [{"content": text}]}]}) + "\n")
    return ModelSpec(name=name, backend="replay", model=str(path), options={"question_id": "q1",
                                                                          "chars_per_s": 4000})


def test_arena_stream_timings_reach_the_vote(tmp_path):
    a = make_backend(replay(tmp_path, "alpha", "def add(a, b):\n    return a + b\n" * 4))
    b = make_backend(replay(tmp_path, "beta", "lambda a, b: a + b\n" * 3))
    prompt = [{"role": "user", "content": "add two numbers"}]

    async def go():
        return [s async for s in stream_pair(a, b, prompt, prompt)][-1]

    last = asyncio.run(go())
    assert last.done and not last.failed
    for timing in (last.timing_a, last.timing_b):
        assert 0 < timing.ttft_s < timing.total_s and timing.tokens > 1 and timing.tokens_source == "chunks"
        assert timing.endpoint is None  # a replayed file, no server

    store = VoteStore(tmp_path / "votes.db")
    registry = BattleRegistry(store)
    token = registry.open(owner="s", voter="v", model_a="alpha", model_b="beta", mode="anonymous",
                          prompt=PromptInfo(text="add two numbers"))
    registry.finish_turn(token, "s", last.text_a, last.text_b, timing_a=last.timing_a, timing_b=last.timing_b)
    result = registry.vote(token, "s", "model_a")
    assert result.timings == BattleTimings((last.timing_a,), (last.timing_b,))
    # stored with the vote (schema v2), and read back as the same timings
    assert store.get(result.battle.id).timings == result.timings.to_dict()
    assert BattleTimings.from_dict(store.get(result.battle.id).timings) == result.timings
    untimed = Battle(model_a="x", model_b="y", winner="tie")
    assert battle_with_timings(untimed, BattleTimings()) is untimed


def test_median_latency_per_model():
    frame = timings_frame([
        ("m1", AnswerTiming(total_s=1.0, ttft_s=0.1, tokens=10)),
        ("m1", AnswerTiming(total_s=3.0, ttft_s=0.3, tokens=30)),
        ("m1", AnswerTiming(total_s=100.0, tokens=100)),  # a stuck answer moves the median little
        ("m2", AnswerTiming(total_s=2.0)),
    ])
    table = median_latency(frame)
    assert list(table.columns) == list(LATENCY_COLUMNS) and list(table["model"]) == ["m1", "m2"]
    m1, m2 = (table.iloc[i] for i in range(2))
    assert (m1.answers, m1.ttft_answers, m1.ttft_s, m1.total_s, m1.tokens_per_s) == (3, 2, 0.2, 3.0, 10.0)
    assert (m2.answers, m2.ttft_answers, m2.total_s) == (1, 0, 2.0)
    assert pd.isna(m2.ttft_s) and pd.isna(m2.tokens_per_s)
    assert len(median_latency(timings_frame([]))) == 0


def test_battle_timings_column_is_read_per_side():
    timings = BattleTimings((AnswerTiming(total_s=1.0, ttft_s=0.2),), (AnswerTiming(total_s=4.0),))
    battles = pd.DataFrame({"model_a": ["m1", "m2"], "model_b": ["m2", "m1"],
                            "timings": [json.dumps(timings.to_dict()), None]})
    frame = battle_timings_frame(battles)
    assert sorted(zip(frame["model"], frame["total_s"], strict=True)) == [("m1", 1.0), ("m2", 4.0)]
    assert set(frame["origin"]) == {"battle"}
    assert len(battle_timings_frame(battles.drop(columns="timings"))) == 0


def test_rate_json_shows_median_latency_beside_the_rating(tmp_path, capsys):
    db = tmp_path / "votes.db"
    store = VoteStore(db)
    store.add_many([Battle(model_a="m1", model_b="m2", winner=w) for w in ["model_a", "model_b", "model_a"] * 4])

    def rate_rows() -> dict[str, dict]:
        assert main(["rate", str(db), "--format", "json"]) == 0
        return {r["model"]: r for r in json.loads(capsys.readouterr().out)}

    assert "median_total_s" not in rate_rows()["m1"]  # nothing timed: the rows are as before
    store.add_answers([
        {"model": "m1", "question_id": str(i), "turns": ["x"],
         "meta": {"timing": [AnswerTiming(total_s=float(i), tokens=10 * i).to_dict()]}} for i in (1, 2, 3)
    ])
    store.close()
    rows = rate_rows()
    assert (rows["m1"]["timed_answers"], rows["m1"]["median_total_s"], rows["m1"]["median_tokens_per_s"]) == \
        (3, 2.0, 10.0)
    assert rows["m1"]["median_ttft_s"] is None  # generated answers are not streamed
    assert rows["m2"]["timed_answers"] == 0 and rows["m2"]["median_total_s"] is None
    assert rows["m1"]["rating"] > rows["m2"]["rating"]  # beside the rating, not instead of it


def test_throttled_snapshots_do_not_hold_back_the_end_of_the_answers(tmp_path):
    # Snapshots at most every 5 s (as when many battles stream): the complete answers still arrive at once,
    # each snapshot holds everything written so far, and the last one is the whole text.
    text_a, text_b = "def add(a, b):\n    return a + b\n" * 20, "lambda a, b: a + b\n" * 30
    a, b = make_backend(replay(tmp_path, "alpha", text_a)), make_backend(replay(tmp_path, "beta", text_b))
    prompt = [{"role": "user", "content": "add two numbers"}]

    async def go():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        snaps = [s async for s in stream_pair(a, b, prompt, prompt, min_interval_s=5.0)]
        return snaps, loop.time() - t0

    snaps, took = asyncio.run(go())
    assert took < 2.0, f"the answers (~0.2 s of text at 4,000 chars/s) took {took:.1f} s to complete"
    assert snaps[-1].done and (snaps[-1].text_a, snaps[-1].text_b) == (text_a, text_b)
    assert all(text_a.startswith(s.text_a) and text_b.startswith(s.text_b) for s in snaps)
