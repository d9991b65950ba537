"""Active vs uniform pair sampling: votes needed for the same certainty (simulation).

True ratings of M models spaced as a real leaderboard (normal quantiles, sd 100 Elo: a few Elo apart in the
crowded middle, tens at the ends), votes drawn from Davidson's ties model (nu 0.5: about 20% ties between
equal models). Both strategies start from the same uniform warm-up (2 votes per pair), then draw votes in
batches (2% of the votes so far, which is also the resolution of the counts) from their pair
probabilities: uniform over pairs, or ratings.active.pair_probabilities recomputed after every batch,
told the same goal as the stopping rule. After each batch the half-ties BT fit and its sandwich
covariance decide whether to stop. Goals:
  separate: every adjacent pair (in the fitted order) is separated under the simultaneous max-t of
            ratings.tiers (every model its own tier);
  precise:  the widest 95% CI is narrower than +-TARGET Elo;
  either:   the first of the two (the issue's criterion).
With 100 models spaced like a real leaderboard the middle ones are ~2.5 Elo apart: separating all of
them takes tens of millions of votes whatever the sampler, so "separate" runs for 20 models only.

    python bench/bench_active_sampling.py                  # 20 and 100 models, 5 seeds, every goal
    python bench/bench_active_sampling.py --models 20 --seeds 5 --goals separate
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ratings.active import SamplingPolicy, bt_covariance, pair_probabilities  # noqa: E402
from ratings.bt import ELO_SCALE, half_wins, newton_half, with_prior  # noqa: E402
from ratings.tiers import max_t_critical  # noqa: E402

NU = 0.5
Z95 = 1.959963984540054


def true_ratings(m: int, sd_elo: float = 100.0) -> np.ndarray:
    """Log-strengths at normal quantiles: crowded in the middle, spread at the ends, like a leaderboard."""
    nd = NormalDist()
    elo = np.array([sd_elo * nd.inv_cdf((i + 0.5) / m) for i in range(m)])[::-1]
    return elo / ELO_SCALE


def draw_votes(rng: np.random.Generator, theta: np.ndarray, counts: np.ndarray, pi: np.ndarray, pj: np.ndarray,
               wins: np.ndarray, ties: np.ndarray) -> None:
    """Add counts[k] Davidson votes on pair (pi[k], pj[k]) to the win/tie matrices, in place."""
    d = (theta[pi] - theta[pj]) / 2.0
    z = np.exp(d) + np.exp(-d) + NU
    probs = np.stack([np.exp(d) / z, NU / z, np.exp(-d) / z], axis=1)
    out = rng.multinomial(counts.astype(np.int64), probs)
    np.add.at(wins, (pi, pj), out[:, 0])
    np.add.at(wins, (pj, pi), out[:, 2])
    np.add.at(ties, (pi, pj), out[:, 1])
    np.add.at(ties, (pj, pi), out[:, 1])


def fit(wins: np.ndarray, ties: np.ndarray, theta0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # A small prior keeps early, sparse rounds finite; it is negligible once pairs have votes.
    w = with_prior(wins, ties, 1.0)
    theta = newton_half(half_wins(w, ties)[None], theta0[None])[0]
    return theta, bt_covariance(wins, ties, theta)


def stopped(theta: np.ndarray, cov: np.ndarray, target_elo: float | None, rng: np.random.Generator,
            separate: bool) -> str | None:
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    if target_elo is not None and Z95 * se.max() * ELO_SCALE < target_elo:
        return "precise"
    if not separate:
        return None
    order = np.argsort(-theta)
    c = np.zeros((len(theta) - 1, len(theta)))
    c[np.arange(len(theta) - 1), order[:-1]] = 1.0
    c[np.arange(len(theta) - 1), order[1:]] = -1.0
    dcov = c @ cov @ c.T
    dse = np.sqrt(np.maximum(np.diag(dcov), 1e-300))
    corr = dcov / np.outer(dse, dse)
    vals, vecs = np.linalg.eigh(corr)
    draws = rng.standard_normal((4000, len(dse))) @ (vecs * np.sqrt(np.clip(vals, 0, None))).T
    crit = max_t_critical(draws)
    if np.all((c @ theta) / dse > crit):
        return "separated"
    return None


def run(m: int, seed: int, strategy: str, target_elo: float | None, budget: int, policy: SamplingPolicy,
        separate: bool = True) -> tuple[int, str]:
    rng = np.random.default_rng(seed)
    check_rng = np.random.default_rng(seed + 10_000)
    truth = true_ratings(m)
    pi, pj = np.triu_indices(m, 1)
    wins = np.zeros((m, m))
    ties = np.zeros((m, m))
    # Warm-up shared by both strategies (same seed, same draws): 2 votes per pair.
    draw_votes(rng, truth, np.full(len(pi), 2), pi, pj, wins, ties)
    total = 2 * len(pi)
    theta, cov = fit(wins, ties, np.zeros(m))
    while total < budget:
        batch = max(200, int(0.02 * total))
        if strategy == "uniform":
            p = np.full(len(pi), 1.0 / len(pi))
        else:
            n_pair = wins + wins.T + ties
            p = pair_probabilities(n_pair, theta, cov, policy)[pi, pj]
        counts = rng.multinomial(batch, p / p.sum())
        draw_votes(rng, truth, counts, pi, pj, wins, ties)
        total += batch
        theta, cov = fit(wins, ties, theta)
        why = stopped(theta, cov, target_elo, check_rng, separate)
        if why:
            return total, why
    return total, "budget"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, nargs="+", default=[20, 100])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--goals", nargs="+", choices=("separate", "precise", "either"), default=None,
                   help="default: every goal for 20 models, precise and either for more")
    p.add_argument("--target", type=float, nargs="+", default=None,
                   help="widest-CI target (+-Elo) per --models entry (default 10 for 20 models, 15 for 100)")
    p.add_argument("--budget", type=int, default=3_000_000, help="stop a run at this many votes")
    args = p.parse_args()
    targets = args.target or [10.0 if m <= 20 else 15.0 for m in args.models]
    summary = []
    for m, target in zip(args.models, targets, strict=True):
        goals = args.goals or (["separate", "precise", "either"] if m <= 20 else ["precise", "either"])
        for goal in goals:
            tgt = None if goal == "separate" else target
            # No model is new in the simulation; the policy is told the goal the stopping rule checks.
            policy = SamplingPolicy(new_model_battles=0, target_ci_elo=tgt)
            t0 = time.perf_counter()
            rows = []
            for seed in range(args.seeds):
                u = run(m, seed, "uniform", tgt, args.budget, policy, separate=goal != "precise")
                a = run(m, seed, "active", tgt, args.budget, policy, separate=goal != "precise")
                rows.append((seed, *u, *a))
            what = {"separate": "every adjacent pair separated (simultaneous 95%)",
                    "precise": f"widest 95% CI < +-{target:g} Elo",
                    "either": f"every adjacent pair separated or widest 95% CI < +-{target:g} Elo"}[goal]
            print(f"\n{m} models, goal {goal}: {what} ({time.perf_counter() - t0:.1f} s)")
            print(f"{'seed':>6} {'uniform':>10} {'(stop)':10} {'active':>10} {'(stop)':10} {'saving':>7}")
            for seed, u, why_u, a, why_a in rows:
                print(f"{seed:>6} {u:>10,} {why_u:10} {a:>10,} {why_a:10} {1 - a / u:>7.1%}")
            med_u = float(np.median([r[1] for r in rows]))
            med_a = float(np.median([r[3] for r in rows]))
            saving = 1 - med_a / med_u
            print(f"{'median':>6} {med_u:>10,.0f} {'':10} {med_a:>10,.0f} {'':10} {saving:>7.1%}")
            capped = any("budget" in (r[2], r[4]) for r in rows)
            summary.append((m, goal, saving, capped))
    print("\ngoal '>= 30% fewer votes' (median over seeds):")
    for m, goal, saving, capped in summary:
        verdict = "budget reached, no verdict" if capped else ("met" if saving >= 0.30 else "NOT met")
        print(f"  {m:>4} models, {goal:8s}: {saving:6.1%} fewer -> {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
