"""The import formats by name, without importing any of them: what `codearena import --help` lists
(building the CLI's parser must not load pandas)."""

from __future__ import annotations

# Arena-Hard v0.1's default baseline: its model_judgment rows name only the candidate model.
ARENA_HARD_BASELINE = "gpt-4-0314"

BATTLE_FORMAT_NAMES: tuple[str, ...] = ("arena-battles", "mt-bench-human", "pandalm", "codearena-judgments")
FORMATS: tuple[str, ...] = (*BATTLE_FORMAT_NAMES, "answers")
