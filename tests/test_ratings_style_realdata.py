"""Style features on real answers (Arena-Hard v0.1, 500 prompts) against the counts Arena-Hard ships."""

from __future__ import annotations

import json

import numpy as np

from ratings.style import answer_style


def test_markdown_counts_agree_with_arena_hard_metadata(shared_data) -> None:
    path = shared_data("arena-hard-v0.1/model_answer/gpt-4o-2024-05-13.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ours, theirs = [], []
    for r in rows:
        meta = r["conv_metadata"]
        ours.append(answer_style(r["choices"][0]["turns"][0]["content"]))
        theirs.append({"tokens": meta["token_len"], "headers": sum(meta["header_count"].values()),
                       "lists": sum(meta["list_count"].values()), "bold": sum(meta["bold_count"].values())})
    assert len(rows) == 500
    for f in ("headers", "lists", "bold"):
        same = np.mean([o[f] == t[f] for o, t in zip(ours, theirs, strict=True)])
        assert same > 0.97, (f, same)
    # Our tokens are word/punctuation pieces, theirs tiktoken's: different units, same ordering.
    rho = np.corrcoef([o["tokens"] for o in ours], [t["tokens"] for t in theirs])[0, 1]
    assert rho > 0.95
    assert sum(o["code_blocks"] > 0 for o in ours) > 100  # many Arena-Hard prompts are coding
