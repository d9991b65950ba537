"""The arena's server-side rules without a browser: pair sampling, identity-leak flags, rate limits and
the battle registry (one vote per complete battle of the same session, stored in a real SQLite file)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from arena_ui.battle import BattleRegistry, Phase, PromptInfo, VoteRefused
from arena_ui.leak import find_identity_claim, leak_flags
from arena_ui.ratelimit import RateLimited, SlidingWindowLimiter
from arena_ui.sampling import PairSampler, SamplingError, parse_weights
from votes import VoteStore

# -- sampling -------------------------------------------------------------------------------------------


def test_every_model_is_sampled_by_default_and_sides_are_shuffled():
    sampler = PairSampler.build(["a", "b", "c", "d"])
    rng = random.Random(0)
    draws = [sampler.sample(rng) for _ in range(4000)]
    seen = Counter(m for pair in draws for m in pair)
    assert set(seen) == {"a", "b", "c", "d"}
    assert all(a != b for a, b in draws)
    # position carries no identity: each model is model_a about half the time it plays
    for m in "abcd":
        as_a = sum(1 for a, _ in draws if a == m)
        assert 0.4 < as_a / seen[m] < 0.6


def test_weights_change_pair_frequencies():
    sampler = PairSampler.build(["a", "b", "c"], {"a": 4})
    probs = sampler.pair_probabilities()
    assert probs[("a", "b")] == pytest.approx(4 / 9)
    assert probs[("b", "c")] == pytest.approx(1 / 9)
    rng = random.Random(1)
    counts = Counter(tuple(sorted(sampler.sample(rng))) for _ in range(9000))
    assert counts[("a", "b")] / 9000 == pytest.approx(4 / 9, abs=0.03)


def test_bad_weights_are_refused_with_the_reason():
    with pytest.raises(SamplingError, match="unknown model"):
        PairSampler.build(["a", "b"], {"zz": 1})
    with pytest.raises(SamplingError, match="must be > 0"):
        PairSampler.build(["a", "b"], {"a": 0})
    with pytest.raises(SamplingError, match="two usable models"):
        PairSampler.build(["a", "b"]).restricted(["a"]).sample()
    with pytest.raises(SamplingError, match="NAME=WEIGHT"):
        parse_weights(["oops"])
    assert parse_weights(["qwen=2", "x=0.5"]) == {"qwen": 2.0, "x": 0.5}


# -- identity leaks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [
    "I am Claude, an AI assistant. Here is the function:",
    "Sure! I'm ChatGPT. def f(): pass",
    "As a language model developed by OpenAI, I cannot browse.",
    "I was trained by Google DeepMind.",
    "My name is Qwen and I will help.",
    "my name is Llama",
    "As an AI developed by OpenAI, I cannot run code.",
    "I was trained by Google",
    "I'm an AI assistant created by Anthropic.",
    "I am a large language model, trained by Google.",
    "As Gemini, I would write it like this.",
    "OpenAI trained me on public code.",
    # a version right after the name, where \b before the digit used to hide the claim
    "I'm Qwen2.5-Coder.",
    "I am SmolLM2, a language model by Hugging Face.",
    "I am Llama3.",
    "As Qwen2.5, I would use a dict here.",
])
def test_self_identification_is_flagged(answer):
    assert find_identity_claim(answer) is not None


@pytest.mark.parametrize("answer", [
    "```python\nimport openai\nclient = openai.OpenAI()\n```\nThis calls the API.",
    "Use `anthropic.Anthropic()` to create a client.",
    "The Google style guide says to use 4 spaces.",
    "Phi is the golden ratio; Philadelphia is a city.",
    # prose about models and makers, not about the speaker: the review's false positives
    "First download the model from Hugging Face.",
    "This script calls a language model from OpenAI via their API.",
    "The embedding model by Google maps text to vectors.",
    "I recommend the model from Hugging Face; I am using a model from OpenAI for the summary.",
    "As a result, the Google API returns JSON.",
    "As an OpenAI customer, you pay per token.",
    "I'm a fan of meta-programming in Ruby.",
])
def test_code_and_library_names_are_not_flagged(answer):
    assert find_identity_claim(answer) is None


def test_leak_flags_name_the_side_and_use_the_configured_names():
    assert leak_flags("fine", "Hello, I am smollm2-135m.", ["qwen", "smollm2-135m"]) == ["identity_leak:model_b"]
    assert leak_flags("I'm Claude.", "I was developed by Anthropic.", []) == ["identity_leak:model_a",
                                                                              "identity_leak:model_b"]
    assert leak_flags("I'm Claude.", "a library developed by Anthropic", []) == ["identity_leak:model_a"]


# -- rate limit -----------------------------------------------------------------------------------------


def test_rate_limit_is_per_client_and_slides():
    now = [0.0]
    lim = SlidingWindowLimiter(2, 60, clock=lambda: now[0])
    lim.hit("1.1.1.1")
    lim.hit("1.1.1.1")
    with pytest.raises(RateLimited, match="try again in 60 s"):
        lim.hit("1.1.1.1", "votes")
    lim.hit("2.2.2.2")  # another client is not affected
    now[0] = 61.0
    lim.hit("1.1.1.1")
    unlimited = SlidingWindowLimiter(0)
    for _ in range(1000):
        unlimited.hit("x")


# -- battle registry ------------------------------------------------------------------------------------


def _open(reg: BattleRegistry, owner: str = "s1") -> str:
    return reg.open(owner=owner, voter="v", model_a="m1", model_b="m2", mode="anonymous",
                    prompt=PromptInfo("write fizzbuzz", prompt_id="p1", category="algo", language="python"))


def test_vote_needs_a_complete_battle_of_the_same_session(db_path):
    store = VoteStore(db_path)
    reg = BattleRegistry(store)
    token = _open(reg)
    with pytest.raises(VoteRefused, match="still being written"):
        reg.vote(token, "s1", "model_a")
    reg.finish_turn(token, "s1", "answer one", "answer two")
    with pytest.raises(VoteRefused, match="no live battle"):
        reg.vote(token, "another-session", "model_a")
    with pytest.raises(VoteRefused, match="no live battle"):
        reg.vote("made-up-token", "s1", "model_a")
    result = reg.vote(token, "s1", "model_b")
    assert (result.model_a, result.model_b) == ("m1", "m2")
    with pytest.raises(VoteRefused):
        reg.vote(token, "s1", "model_a")  # one vote per battle
    rows = VoteStore(db_path).battles_frame()
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["winner"], row["source"], row["mode"], row["prompt_id"], row["category"]) \
        == ("model_b", "human", "anonymous", "p1", "algo")
    assert (row.answer_a, row.answer_b, row.turn) == ("answer one", "answer two", 1)


def test_follow_up_turns_are_stored_as_conversations(db_path):
    reg = BattleRegistry(VoteStore(db_path))
    token = _open(reg)
    reg.finish_turn(token, "s1", "a1", "b1")
    s = reg.add_turn(token, "s1", "now in rust")
    assert s.phase is Phase.GENERATING and s.turn == 2
    reg.finish_turn(token, "s1", "a2", "b2")
    battle = reg.vote(token, "s1", "tie").battle
    assert battle.turn == 2
    assert [m["content"] for m in battle.conversation_b] == ["write fizzbuzz", "b1", "now in rust", "b2"]


def test_failed_battle_takes_no_vote_and_unknown_winner_is_refused(db_path):
    store = VoteStore(db_path)
    reg = BattleRegistry(store)
    token = _open(reg)
    with pytest.raises(VoteRefused, match="unknown vote"):
        reg.vote(token, "s1", "model_c")
    reg.finish_turn(token, "s1", "partial", "", error="Model B failed: connection refused")
    with pytest.raises(VoteRefused, match="a model failed"):
        reg.vote(token, "s1", "model_a")
    assert store.count() == 0


def test_old_battles_expire(db_path):
    now = [0.0]
    reg = BattleRegistry(VoteStore(db_path), ttl_s=100, max_battles=3, clock=lambda: now[0])
    tokens = [_open(reg) for _ in range(3)]
    _open(reg)  # over max_battles: the oldest goes
    assert reg.peek(tokens[0], "s1") is None and reg.peek(tokens[1], "s1") is not None
    now[0] = 500
    _open(reg)
    assert len(reg) == 1


def test_identity_leak_is_flagged_on_the_stored_vote_but_not_for_the_prompt(db_path):
    store = VoteStore(db_path)
    reg = BattleRegistry(store)
    token = reg.open(owner="s1", voter="v", model_a="m1", model_b="m2", mode="anonymous",
                     prompt=PromptInfo("I am ChatGPT's user: write code that imports openai"))
    reg.finish_turn(token, "s1", "```python\nimport openai\n```", "As an AI developed by Anthropic, here it is.")
    reg.vote(token, "s1", "model_a")
    assert next(store.iter_battles()).flags == ["identity_leak:model_b"]


def test_streaming_updates_grow_sparser_as_more_battles_stream():
    from types import SimpleNamespace

    from arena_ui.arena import Arena

    arena = SimpleNamespace(_live_streams=0)
    interval = Arena.update_interval.fget
    assert interval(arena) == 0.05
    arena._live_streams = 50
    assert 0.25 <= interval(arena) <= 0.5  # 50 streams: a few updates a second each, not 20
    arena._live_streams = 10_000
    assert interval(arena) == 1.0
