"""Which two models meet in an anonymous battle.

A pair is drawn with probability proportional to ``w_a * w_b`` (the product of the two models' weights, as
Chatbot Arena's sampler does), then the sides are shuffled so that position says nothing about identity.
Every configured model gets a non-zero default weight: a model that is never sampled never gets a rating.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_WEIGHT = 1.0


class SamplingError(ValueError):
    """Weights that cannot be used (unknown model, not a positive number, fewer than two models)."""


@dataclass(frozen=True)
class PairSampler:
    """Immutable weighted pair sampler over the usable models."""

    weights: tuple[tuple[str, float], ...]
    # Pair probabilities that replace the weights' (active sampling, ratings.active), sorted-name pairs.
    chosen: tuple[tuple[tuple[str, str], float], ...] = ()

    @classmethod
    def build(cls, models: Iterable[str], overrides: Mapping[str, float] | None = None) -> PairSampler:
        """Default weight for every model, replaced by ``overrides``; an override for an unknown model or a
        weight <= 0 is an error (a zero weight would silently drop a model from the ranking)."""
        names = list(dict.fromkeys(models))
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise SamplingError(f"weight given for unknown model(s) {', '.join(unknown)}; "
                                f"configured: {', '.join(names) or 'none'}")
        pairs = []
        for name in names:
            w = float(overrides.get(name, DEFAULT_WEIGHT))
            if not w > 0:
                raise SamplingError(f"weight of {name!r} must be > 0, got {w}")
            pairs.append((name, w))
        return cls(tuple(pairs))

    @property
    def models(self) -> list[str]:
        return [name for name, _ in self.weights]

    def restricted(self, usable: Iterable[str]) -> PairSampler:
        """The same weights over the models that can answer now."""
        keep = set(usable)
        return PairSampler(tuple((n, w) for n, w in self.weights if n in keep), self.chosen)

    def with_probabilities(self, probabilities: Mapping[tuple[str, str], float]) -> PairSampler:
        """The same models, pairs drawn with ``probabilities`` (unordered pairs; active sampling)."""
        return PairSampler(self.weights, tuple((tuple(sorted(k)), float(v)) for k, v in probabilities.items()))

    def pair_probabilities(self) -> dict[tuple[str, str], float]:
        """Probability of each unordered pair (sorted names) of the usable models, summing to 1."""
        items = self.weights
        raw: dict[tuple[str, str], float] = {}
        for i, (a, wa) in enumerate(items):
            for b, wb in items[i + 1:]:
                raw[tuple(sorted((a, b)))] = wa * wb
        if self.chosen:
            # Active probabilities for the pairs they know; a pair they do not (a model back from being
            # down, or new) gets the largest of them, so it is sampled soon rather than never.
            chosen = dict(self.chosen)
            fill = max(chosen.values(), default=1.0)
            raw = {k: chosen.get(k, fill) for k in raw}
        total = sum(raw.values())
        return {k: v / total for k, v in raw.items()} if total else {}

    def sample_with_probability(self, rng: random.Random | None = None) -> tuple[str, str, float]:
        """(model_a, model_b, probability of that unordered pair): sides in random order."""
        if len(self.weights) < 2:
            raise SamplingError(f"a battle needs two usable models; {len(self.weights)} usable")
        rng = rng or random
        probs = self.pair_probabilities()
        pairs = list(probs)
        a, b = rng.choices(pairs, weights=[probs[p] for p in pairs], k=1)[0]
        return ((a, b) if rng.random() < 0.5 else (b, a)) + (probs[(a, b)],)

    def sample(self, rng: random.Random | None = None) -> tuple[str, str]:
        """(model_a, model_b): two distinct models, sides in random order."""
        a, b, _ = self.sample_with_probability(rng)
        return a, b


def parse_weights(items: Iterable[str]) -> dict[str, float]:
    """``NAME=WEIGHT`` strings (the CLI's ``--weight``) to a dict, with an error naming the bad item."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep or not name.strip():
            raise SamplingError(f"--weight {item!r}: expected NAME=WEIGHT, e.g. smollm2-135m=2")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise SamplingError(f"--weight {item!r}: {value!r} is not a number") from None
    return out
