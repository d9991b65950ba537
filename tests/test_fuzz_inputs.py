"""Fuzz: random bytes and random JSON into every importer format, `rate` and `validate` (issue 9).

Whatever the file holds, the command ends with a documented exit status (0, or 2 with an ``error:`` line;
`import` also 1: nothing readable, or rows stored under another source) and never an uncaught exception:
in-process, an exception escaping ``main`` fails the test with the example that caused it. A failed import
creates no store. One test runs cases in a subprocess, where a crash in C (a segfault) shows as a signal.

Each test fuzzes for CODEARENA_FUZZ_SECONDS seconds (default 3): set it higher to search longer.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codearena.cli import main
from votes.importers import FORMATS

ROOT = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("CODEARENA_FUZZ_SECONDS", "3"))

# Keys the importers and readers look at, so random rows reach past the first check.
KEYS = ["model_a", "model_b", "winner", "turn", "tstamp", "question_id", "judge", "conversation_a",
        "conversation_b", "anony", "language", "category", "source", "flags", "id", "prompt", "answer_a",
        "answer_b", "mode", "idx", "cmp_key", "annotator1", "annotator2", "annotator3", "instruction", "input",
        "response1", "response2", "motivation_app", "pandalm_result", "games", "score", "swapped", "points",
        "error", "model", "baseline", "uid", "model_id", "choices", "turns", "content", "role", "answer_id",
        "user_prompt", "rating", "ci_low", "ci_high", "bootstrap"]
WORDS = ["model_a", "model_b", "tie", "tie (bothbad)", "m1", "m2", "m3", "m1_m2", "A>>B", "[[B>A]]", "A=B",
         "user", "assistant", "human", "judge:x", "import:y", "anonymous", "named", "=cmd", "-1", "'x", "\x1b[31m",
         "\u202e", "\ud800", "", " ", "0", "1", "2", "Tie", "NaN", "inf", "1e20"]

scalars = st.one_of(
    st.none(), st.booleans(), st.sampled_from(WORDS), st.text(max_size=12),
    st.integers(min_value=-(10**30), max_value=10**30), st.sampled_from([0, 1, 2, 3]),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6),
                                                                           inner, max_size=4),
    max_leaves=12)
deep = st.integers(min_value=1, max_value=3_000).map(lambda n: "[" * n + "]" * n)


@st.composite
def rows(draw) -> list[dict]:
    out = []
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        row = draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8))
        if draw(st.booleans()):  # most rows look like battles, so deeper code runs
            row.update({"model_a": draw(st.sampled_from(["m1", "m2", "m3"])),
                        "model_b": draw(st.sampled_from(["m1", "m2", "m3", "m4"])),
                        "winner": draw(st.sampled_from(["model_a", "model_b", "tie", "tie (bothbad)"]))})
        out.append(row)
    return out


def _dumps(row: dict, deep_text: str | None) -> str:
    text = json.dumps(row)  # NaN and Infinity literals included, as Python writes them
    if deep_text is not None and text.endswith("}"):
        text = text[:-1] + ("," if row else "") + f'"extra": {deep_text}}}'
    return text


@st.composite
def files(draw, suffixes: tuple[str, ...]) -> tuple[str, bytes]:
    """(suffix, content): random bytes, JSONL / a JSON list / CSV / Parquet of random rows, maybe corrupted."""
    suffix = draw(st.sampled_from(suffixes))
    kind = draw(st.sampled_from(["bytes", "rows", "rows", "rows"]))
    if kind == "bytes":
        return suffix, draw(st.binary(max_size=400))
    data = draw(rows())
    deep_text = draw(st.none() | deep)
    if suffix == ".csv":
        import pandas as pd

        buf = io.StringIO()
        try:
            pd.DataFrame([{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()}
                          for r in data]).to_csv(buf, index=False)
        except UnicodeEncodeError:  # pandas' text columns cannot hold a lone surrogate: write it ourselves
            buf = io.StringIO("model_a,model_b,winner\n" + "".join(f"{r.get('model_a')},\ud800,tie\n" for r in data))
        content = buf.getvalue().encode("utf-8", "surrogatepass")
    elif suffix == ".parquet":
        import pandas as pd

        buf = io.BytesIO()
        try:
            pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in data]
                         ).to_parquet(buf, index=False)
        except Exception:  # noqa: BLE001 - rows pyarrow cannot write are no input for our readers
            return suffix, draw(st.binary(max_size=400))
        content = buf.getvalue()
    elif suffix == ".json" and draw(st.booleans()):
        content = ("[" + ",\n".join(_dumps(r, deep_text) for r in data) + "]").encode("utf-8", "surrogatepass")
    else:
        content = "".join(_dumps(r, deep_text) + "\n" for r in data).encode("utf-8", "surrogatepass")
    if content and draw(st.booleans()):  # flip a few bytes: truncated JSON, bad UTF-8, stray brackets
        mutable = bytearray(content)
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            mutable[draw(st.integers(min_value=0, max_value=len(mutable) - 1))] = draw(st.integers(0, 255))
        content = bytes(mutable)
    return suffix, content


def run_cli(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(args)
    return rc, err.getvalue()


def check(rc: int, err: str, allowed: set[int]) -> None:
    assert rc in allowed, (rc, err)
    assert "Traceback" not in err, err
    if rc == 2:
        assert [line for line in err.splitlines() if line.startswith("error: ")], err


def fuzz_for(seconds: float, strategy: st.SearchStrategy, body: Callable) -> None:
    """Run ``body`` on examples of ``strategy`` in rounds of 20 until ``seconds`` have passed (at least one
    round): the bound is time, not a count, so a slow machine fuzzes less but never runs long."""
    @settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def round_(case) -> None:
        body(case)

    end = time.monotonic() + seconds
    while True:
        round_()
        if time.monotonic() > end:
            return


@pytest.mark.parametrize("fmt", FORMATS)
def test_fuzz_import(fmt: str) -> None:
    suffixes = (".jsonl", ".json", ".csv", ".parquet") if fmt == "arena-battles" else (".jsonl", ".json")

    def body(case: tuple[str, bytes]) -> None:
        suffix, content = case
        with tempfile.TemporaryDirectory() as tmp:
            f, db = Path(tmp) / f"in{suffix}", Path(tmp) / "votes.db"
            f.write_bytes(content)
            rc, err = run_cli(["import", fmt, str(f), "--db", str(db)])
            check(rc, err, {0, 1, 2})
            if rc == 2:
                assert not db.exists(), err  # a failed import creates no store

    fuzz_for(SECONDS, files(suffixes), body)


def test_fuzz_pandalm_judge_file() -> None:
    def body(case: tuple[tuple[str, bytes], tuple[str, bytes]]) -> None:
        (s1, test), (s2, judge) = case
        with tempfile.TemporaryDirectory() as tmp:
            f, j = Path(tmp) / f"test{s1}", Path(tmp) / f"judge{s2}"
            f.write_bytes(test)
            j.write_bytes(judge)
            rc, err = run_cli(["import", "pandalm", str(f), "--judge-file", str(j), "--judge-name", "gpt",
                               "--db", str(Path(tmp) / "votes.db")])
            check(rc, err, {0, 1, 2})

    fuzz_for(SECONDS, st.tuples(files((".json", ".jsonl")), files((".json", ".jsonl"))), body)


def test_fuzz_rate() -> None:
    def body(case: tuple[str, bytes]) -> None:
        suffix, content = case
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / f"battles{suffix}"
            f.write_bytes(content)
            rc, err = run_cli(["rate", str(f)])
            check(rc, err, {0, 2})

    fuzz_for(SECONDS, files((".jsonl", ".json", ".csv", ".parquet")), body)


def test_fuzz_validate() -> None:
    def body(case: tuple[tuple[str, bytes], tuple[str, bytes]]) -> None:
        (s1, ref), (s2, cand) = case
        with tempfile.TemporaryDirectory() as tmp:
            r, c = Path(tmp) / f"ref{s1}", Path(tmp) / f"cand{s2}"
            r.write_bytes(ref)
            c.write_bytes(cand)
            rc, err = run_cli(["validate", "--reference", str(r), "--candidate", str(c), "--bootstrap", "0"])
            check(rc, err, {0, 2})

    suffixes = (".jsonl", ".json", ".csv", ".parquet")
    fuzz_for(SECONDS, st.tuples(files(suffixes), files(suffixes)), body)


# Crashes in C (pyarrow, pandas) kill the process: only a subprocess shows them.
SUBPROCESS_CASES = {
    "deep-5000": '{"model_a": "a", "model_b": "b", "winner": "model_a", "extra": ' + "[" * 5000 + "]" * 5000
                 + "}\n" + '{"model_a": "b", "model_b": "a", "winner": "tie"}\n',
    "deep-dicts": '{"model_a": "a", "model_b": "b", "winner": "model_a", "x": ' + '{"k":' * 3000 + "1"
                  + "}" * 3000 + "}\n",
    "deep-conversation": json.dumps({"model_a": "a", "model_b": "b", "winner": "model_a"})[:-1]
                         + ', "conversation_a": [' + "[" * 4000 + "]" * 4000 + "]}\n",
}


@pytest.mark.parametrize(("case", "command"), [("deep-5000", "rate"), ("deep-5000", "validate"),
                                               ("deep-5000", "import"), ("deep-dicts", "rate"),
                                               ("deep-conversation", "rate")])
def test_fuzz_cases_in_a_subprocess(tmp_path: Path, case: str, command: str) -> None:
    f = tmp_path / "battles.jsonl"
    f.write_text(SUBPROCESS_CASES[case], encoding="utf-8")
    args = {"rate": ["rate", str(f)],
            "validate": ["validate", "--reference", str(f), "--candidate", str(f), "--bootstrap", "0"],
            "import": ["import", "arena-battles", str(f), "--db", str(tmp_path / "v.db")]}[command]
    res = subprocess.run([sys.executable, "-m", "codearena", *args], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert res.returncode in (0, 2), (res.returncode, res.stderr[-2000:])  # a segfault is -11 (shell: 139)
    assert "Traceback" not in res.stderr
