"""Tokens/s of `codearena generate` against a bare llama-cpp loop on the same prompts and the same loaded
model (goal: generate >= 95% of bare). Greedy decoding, so both produce the same tokens.

    .venv/bin/python bench/bench_generate.py [--model smollm2-135m] [--limit 5] [--max-tokens 64] [--rounds 3]

Rounds alternate bare/generate so that load from other processes hits both alike; the best round of each
is reported, plus every round's figures. The bare loop runs on the same thread as generate's calls: with
llama.cpp's OpenMP build a second calling thread alone costs ~40% (see serving/backends/llamacpp.py), which
would measure thread placement instead of generate's overhead.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from serving.backends import make_backend
from serving.backends.base import SamplingParams
from serving.backends.llamacpp import LlamaCppBackend, load_engine
from serving.generate import generate_answers
from serving.models import get_model, load_models
from serving.prompts import load_prompts


def bare_loop(llama, backend: LlamaCppBackend, prompts, params: SamplingParams) -> tuple[int, float]:
    """What a user would write by hand: one create_chat_completion per prompt, nothing else."""
    tokens = 0
    start = time.perf_counter()
    for p in prompts:
        out = llama.create_chat_completion(messages=backend.with_system(p.messages), temperature=params.temperature,
                                           top_p=params.top_p, max_tokens=params.max_tokens, seed=params.seed)
        tokens += out["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - start


def via_generate(spec, prompts, params: SamplingParams, out_dir: Path, round_no: int) -> tuple[int, float]:
    backend = make_backend(spec)
    report = generate_answers(backend, prompts, out_dir / f"round{round_no}.jsonl", params=params, progress=False)
    assert not report.failures, report.failures
    return report.tokens, report.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--models", default=None, help="models.toml (default: built-in models)")
    parser.add_argument("--prompts", default="builtin")
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    spec = get_model(load_models(args.models), args.model)
    if spec.backend != "llamacpp":
        raise SystemExit(f"{args.model} uses backend {spec.backend}; this bench compares against bare llama.cpp")
    # Single-prompt-at-a-time on both sides: the comparison is the overhead of generate, not batching.
    spec = replace(spec, concurrency=1)
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, top_p=1.0, seed=0)
    prompts = load_prompts(args.prompts, limit=args.limit)
    backend = make_backend(spec)
    assert isinstance(backend, LlamaCppBackend)
    llama = load_engine(spec).llama  # the very instance generate uses: same weights, threads, context
    on_worker = load_engine(spec).worker

    def bare(batch):
        return on_worker.submit(bare_loop, llama, backend, batch, params).result()

    bare(prompts[:1])  # warm-up (first-call allocations)

    bare_rates, gen_rates = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            bt, bs = bare(prompts)
            gt, gs = via_generate(spec, prompts, params, Path(tmp), r)
            bare_rates.append(bt / bs)
            gen_rates.append(gt / gs)
            print(f"round {r + 1}: bare {bt} tok in {bs:.2f} s = {bt / bs:.1f} tok/s | "
                  f"generate {gt} tok in {gs:.2f} s = {gt / gs:.1f} tok/s")
    best_bare, best_gen = max(bare_rates), max(gen_rates)
    print(f"model {spec.name}, {len(prompts)} prompts x {args.max_tokens} max tokens, {args.rounds} rounds")
    print(f"bare llama-cpp : best {best_bare:.1f} tok/s, median {statistics.median(bare_rates):.1f}")
    print(f"codearena gen  : best {best_gen:.1f} tok/s, median {statistics.median(gen_rates):.1f}")
    print(f"generate / bare: {100 * best_gen / best_bare:.1f}% (best), "
          f"{100 * statistics.median(gen_rates) / statistics.median(bare_rates):.1f}% (median); goal >= 95%")


if __name__ == "__main__":
    main()
