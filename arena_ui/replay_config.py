"""A models.toml for an arena over pregenerated answers (the ``replay`` backend): what the browser tests,
the load benchmark and a demo without any model use. Answers are FastChat ``model_answer`` files; prompts are
matched by text against the benchmark's ``question.jsonl``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def write_replay_models(path: str | Path, answers_dir: str | Path, questions: str | Path, models: Iterable[str],
                        *, chars_per_s: float = 0.0, extra: str = "") -> Path:
    """Write ``path`` with one replay entry per model (answers_dir/<model>.jsonl); ``extra`` is appended
    verbatim (e.g. a broken remote entry for a failure test)."""
    path = Path(path)
    blocks = []
    for name in models:
        answers = Path(answers_dir) / f"{name}.jsonl"
        if not answers.is_file():
            raise FileNotFoundError(f"{answers}: no answers for model {name!r}")
        options = {"questions": str(questions)}
        if chars_per_s:
            options["chars_per_s"] = chars_per_s
        opts = ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items())
        blocks.append(f'[[models]]\nname = {json.dumps(name)}\nbackend = "replay"\nmodel = {json.dumps(str(answers))}\n'
                      f"concurrency = 64\noptions = {{ {opts} }}\n")
    path.write_text("\n".join(blocks) + ("\n" + extra if extra else ""), encoding="utf-8")
    return path
