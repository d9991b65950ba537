"""The MT-bench expert human votes (real data) through the whole rating path."""

from __future__ import annotations

from ratings import rate
from ratings.source import load_battles


def test_mt_bench_human_votes_reproduce_the_papers_order(shared_data) -> None:
    path = shared_data("mt-bench-human/human_judgments_turn1.jsonl")
    battles = load_battles(path).battles
    res = rate(battles, bootstrap=100, seed=0)
    order = res.table["model"].tolist()
    # MT-bench paper, human votes: GPT-4 > Claude-v1 > GPT-3.5 > Vicuna-13B > Alpaca-13B > LLaMA-13B.
    assert order[0] == "gpt-4"
    assert order[-1] == "llama-13b"
    assert order.index("gpt-3.5-turbo") < order.index("vicuna-13b-v1.2") < order.index("alpaca-13b")
    assert res.n_battles == 1689
    assert res.table["rank_ub"].iloc[0] == 1
    dav = rate(battles, ties="davidson")
    assert 0.1 < dav.nu < 2.0
