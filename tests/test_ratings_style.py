"""Style control: feature extraction on real-looking answers, and recovery of a planted style bias."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ratings import rate
from ratings.style import STYLE_FEATURES, StyleError, answer_style

ANSWER = """## Solution

Here is **one way**:

- read the input
- sort it

```python
def f(xs):
    # a list inside code is not a markdown list:
    # - item
    return sorted(xs)
```

1. call `f`
2. print it
"""


def test_answer_style_counts_markdown_outside_code_and_code_separately() -> None:
    s = answer_style(ANSWER)
    assert s["headers"] == 1
    assert s["lists"] == 4
    assert s["bold"] == 1
    assert s["code_blocks"] == 1
    assert s["code_lines"] == 4
    assert s["tokens"] > 30
    assert answer_style(None) == dict.fromkeys(STYLE_FEATURES, 0)


def _biased_battles(n: int, seed: int) -> pd.DataFrame:
    """Four equally strong models; voters prefer the answer with more code blocks."""
    rng = np.random.default_rng(seed)
    models = np.array(["m0", "m1", "m2", "m3"])
    a = rng.integers(0, 4, n)
    b = (a + rng.integers(1, 4, n)) % 4
    # m0 writes many code blocks, m3 few: a naive ranking credits m0 for style alone.
    blocks_of = np.array([4, 2, 2, 0])
    ca = rng.poisson(blocks_of[a] + 0.5)
    cb = rng.poisson(blocks_of[b] + 0.5)
    diff = np.divide(ca - cb, ca + cb, out=np.zeros(n), where=(ca + cb) > 0)
    p = 1 / (1 + np.exp(-1.5 * diff))
    winner = np.where(rng.random(n) < p, "model_a", "model_b")

    def text(k: int) -> str:
        return "Answer.\n" + "".join("```python\nx = 1\n```\n" for _ in range(k))

    return pd.DataFrame({"model_a": models[a], "model_b": models[b], "winner": winner,
                         "answer_a": [text(k) for k in ca], "answer_b": [text(k) for k in cb]})


def test_style_control_removes_a_planted_code_block_bias() -> None:
    df = _biased_battles(12_000, seed=0)
    naive = rate(df).table.set_index("model")["rating"]
    res = rate(df, style_control=True)
    adjusted = res.table.set_index("model")["rating"]
    assert naive["m0"] - naive["m3"] > 100  # the bias is real in the naive ranking
    assert abs(adjusted["m0"] - adjusted["m3"]) < 30  # and gone once style is controlled
    coef = res.style.set_index("feature")
    assert coef.loc["code_blocks", "ci_low"] > 0
    assert abs(coef.loc["headers", "coef"]) < 1e-6  # no spread, no effect


def test_precomputed_style_columns_are_used_without_answers() -> None:
    df = _biased_battles(3_000, seed=1)
    from ratings.style import style_columns

    cols = style_columns(df)
    pre = pd.concat([df[["model_a", "model_b", "winner"]], cols], axis=1)
    a = rate(df, style_control=True).table.set_index("model")["rating"]
    b = rate(pre, style_control=True).table.set_index("model")["rating"]
    assert np.allclose(a, b.loc[a.index])


def test_missing_answers_is_a_clear_error() -> None:
    df = pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "a"], "winner": ["model_a", "tie"]})
    with pytest.raises(StyleError, match="answer_a"):
        rate(df, style_control=True)
    df["answer_a"] = ["x", None]
    df["answer_b"] = ["y", "z"]
    with pytest.raises(StyleError, match="row 1"):
        rate(df, style_control=True)
    # Counted "k of n battles", not "row 0 and 2 rows in all" (which read as two different things).
    df["answer_a"] = [None, None]
    with pytest.raises(StyleError, match=r"2 of 2 battles have no answer_a/answer_b text \(first: row 0\)"):
        rate(df, style_control=True)


def test_style_bootstrap_gives_intervals() -> None:
    df = _biased_battles(2_000, seed=2)
    res = rate(df, style_control=True, bootstrap=10, seed=0)
    assert res.samples.shape == (10, 4)
    t = res.table
    assert np.all(t["ci_low"] <= t["rating"]) and np.all(t["rating"] <= t["ci_high"])
