"""Throughput of `codearena import arena-battles` and of `validate` on a synthetic Chatbot Arena file.

    python bench/bench_import_validate.py [--rows 100000] [--models 20] [--bootstrap 200]

Prints rows/s for a first import, a second (idempotent, adds nothing) import, and the time of a full
validation (per-vote agreement + two bootstrapped leaderboards) between the file's votes and a noisy copy.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from ratings.validate import Side, validate  # noqa: E402
from votes.importers import ImportOptions, import_path  # noqa: E402
from votes.store import VoteStore  # noqa: E402


def synthetic(path: Path, rows: int, models: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    strength = np.linspace(2.0, -2.0, models)
    a = rng.integers(0, models, rows)
    b = (a + rng.integers(1, models, rows)) % models
    p = 1 / (1 + np.exp(strength[b] - strength[a]))
    u = rng.random(rows)
    winner = np.where(u < 0.1, "tie", np.where(u < 0.1 + 0.9 * p, "model_a", "model_b"))
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            fh.write(json.dumps({"question_id": f"q{i}", "model_a": f"m{a[i]:02d}", "model_b": f"m{b[i]:02d}",
                                 "winner": str(winner[i]), "tstamp": float(i), "judge": f"u{i % 997}"}) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "battles.jsonl"
        synthetic(f, args.rows, args.models, seed=0)
        store = VoteStore(Path(tmp) / "bench.db")
        for label in ("first import", "re-import"):
            t = time.perf_counter()
            rep = import_path(store, "arena-battles", f, ImportOptions(dataset="bench"))
            dt = time.perf_counter() - t
            print(f"{label}: {args.rows} rows in {dt:.2f} s ({args.rows / dt:,.0f} rows/s); added {rep.added}, "
                  f"already present {rep.skipped}")
        human = store.battles_frame("import:bench")
        judge = human.copy()
        flip = np.random.default_rng(1).random(len(judge)) < 0.2
        judge.loc[flip, "winner"] = judge.loc[flip, "winner"].map(
            {"model_a": "model_b", "model_b": "model_a", "tie": "tie"})
        judge["id"] = judge["id"] + "-judge"
        judge["voter"] = None
        t = time.perf_counter()
        rep = validate(Side("human", human), Side("judge:noisy", judge), bootstrap=args.bootstrap, seed=0)
        dt = time.perf_counter() - t
        print(f"validate {len(human)} vs {len(judge)} votes, {args.models} models, bootstrap {args.bootstrap}: "
              f"{dt:.2f} s; agreement w/ tie {rep.vote_agreement.agreement_with_tie:.3f}, "
              f"spearman {rep.spearman:.3f}")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
