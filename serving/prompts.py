"""Prompts for duels and the arena: CodeArena (hub or local file), Arena-Hard and MT-bench question files,
and a small built-in sample of coding prompts that works offline.

One loader, ``load_prompts``, detects each row's format by its fields, so a user can point it at whichever
question file they have. Every error names the file and the line (or Parquet row) at fault.
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from serving.hub import HubError, download_hub_file, parse_hub_ref
from votes.files import parse_json, read_text

BUILTIN = "builtin"
SAMPLE_RESOURCE = "codearena_sample.jsonl"

# Names users type for the same language; the filter compares canonical lower-case names.
LANGUAGE_ALIASES: dict[str, str] = {
    "py": "python", "python3": "python", "js": "javascript", "node": "javascript", "ts": "typescript",
    "cpp": "c++", "cxx": "c++", "golang": "go", "rs": "rust", "sh": "bash", "shell": "bash",
    "postgresql": "sql", "mysql": "sql", "sqlite": "sql", "c#": "csharp", "cs": "csharp",
}


class PromptsError(ValueError):
    """A prompts source that cannot be used; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class Prompt:
    """One question. ``messages`` is the conversation to answer (OpenAI format), ending with a user turn."""

    id: str
    messages: list[dict[str, str]]
    category: str | None = None
    subcategory: str | None = None
    language: str | None = None
    difficulty: str | None = None
    source: str = BUILTIN
    task_type: str | None = None  # CodeArena's fine task type, before mapping to (category, subcategory)
    # Later user turns of a multi-turn benchmark (MT-bench turn 2); they need the model's earlier replies.
    followups: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The first user turn: what a judge and the arena show as the prompt."""
        for message in self.messages:
            if message.get("role") == "user":
                return message.get("content", "")
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "messages": self.messages, "category": self.category,
            "subcategory": self.subcategory, "language": self.language, "difficulty": self.difficulty,
            "source": self.source, "task_type": self.task_type, "followups": self.followups,
        }


# -- public API --------------------------------------------------------------------------------------


def load_prompts(
    src: str | os.PathLike[str] | None = None,
    *,
    category: str | None = None,
    language: str | None = None,
    difficulty: str | None = None,
    limit: int | None = None,
    seed: int | None = None,
    levels: str | os.PathLike[str] | None = None,
) -> list[Prompt]:
    """Load, filter and (with ``seed``) reproducibly sample prompts.

    ``src``: ``None``/``"builtin"`` (the packaged sample), ``"hub"`` or ``"hf:OWNER/NAME[/FILE]"`` (the
    Hugging Face hub through ``$HF_ENDPOINT``, cached), or a path to a CodeArena JSONL/Parquet, Arena-Hard
    or MT-bench ``question.jsonl``. ``levels``: CodeArena's ``tasktype_to_levels.json``, which maps a row's
    fine task type to its (category, subcategory) when the row does not carry them itself.
    Filters compare case-insensitively; ``category`` matches the category or the subcategory, whole or as
    whole words of it (see :func:`category_matches`).
    ``seed`` shuffles with a private RNG (same seed, same prompts); without it the file order is kept.
    """
    if limit is not None and limit < 1:
        raise PromptsError(f"limit must be a positive number of prompts, got {limit}")
    level_map = load_levels(levels) if levels is not None else None
    prompts = list(_iter_source(src, level_map))
    prompts = filter_prompts(prompts, category=category, language=language, difficulty=difficulty)
    if seed is not None:
        prompts = random.Random(seed).sample(prompts, len(prompts))
    return prompts[:limit] if limit is not None else prompts


def filter_prompts(
    prompts: Iterable[Prompt], *, category: str | None = None, language: str | None = None,
    difficulty: str | None = None,
) -> list[Prompt]:
    out = []
    want_lang = canonical_language(language) if language else None
    for p in prompts:
        if category and not category_matches(category, p):
            continue
        if want_lang and canonical_language(p.language or "") != want_lang:
            continue
        if difficulty and (p.difficulty or "").casefold() != difficulty.casefold():
            continue
        out.append(p)
    return out


def category_matches(wanted: str, prompt: Prompt) -> bool:
    """``wanted`` names the prompt's category or subcategory, or is a whole word (or words) of it, ignoring
    case: Arena-Hard's clusters are long titles ("Python Coding Challenges"), so a user asking for "coding"
    means those. Whole words only, so "coding" does not pick "Subtitle Encoding and Conversion"."""
    want = wanted.strip().casefold()
    if not want:
        return True
    pattern = re.compile(rf"(?<!\w){re.escape(want)}(?!\w)")
    return any(want == name.casefold() or pattern.search(name.casefold())
               for name in (prompt.category, prompt.subcategory) if name)


def canonical_language(name: str) -> str:
    key = name.strip().casefold()
    return LANGUAGE_ALIASES.get(key, key)


def load_levels(path: str | os.PathLike[str]) -> dict[str, tuple[str, str]]:
    """CodeArena's task-type map: ``{task type: [[main, sub], ...]}``; the first pair is the one it scores by."""
    path = Path(path)
    if not path.is_file():
        raise PromptsError(f"{path}: no such task-type map file")
    raw = parse_json(read_text(path, PromptsError), str(path), PromptsError)
    if not isinstance(raw, dict):
        raise PromptsError(f"{path}: expected a JSON object mapping task type -> [[category, subcategory]]")
    out: dict[str, tuple[str, str]] = {}
    for key, value in raw.items():
        try:
            main, sub = value[0]
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise PromptsError(f"{path}: task type {key!r}: expected [[category, subcategory], ...]") from exc
        out[_wash_task_type(key)] = (str(main), str(sub))
    return out


def _wash_task_type(task_type: str) -> str:
    # CodeArena's own normalisation before the lookup (judge_models.py: wash_tag).
    return task_type.replace("-", " ").lower()


# -- sources -----------------------------------------------------------------------------------------


def _iter_source(src: str | os.PathLike[str] | None, level_map: dict[str, tuple[str, str]] | None) -> Iterator[Prompt]:
    if src is None or str(src) == BUILTIN:
        ref = resources.files("serving") / "data" / SAMPLE_RESOURCE
        with resources.as_file(ref) as path:
            yield from _read_file(Path(path), BUILTIN, level_map)
        return
    text = str(src)
    if text == "hub" or text.startswith("hf:"):
        try:
            repo, filename = parse_hub_ref(text)
            path = download_hub_file(repo, filename)
        except HubError as exc:
            raise PromptsError(str(exc)) from exc
        yield from _read_file(path, f"hf:{repo}", level_map)
        return
    path = Path(text)
    if not path.exists():
        raise PromptsError(f"{path}: no such prompts file (use 'builtin', 'hub', or a JSONL/Parquet path)")
    if path.is_dir():
        raise PromptsError(f"{path}: is a folder; pass the question file inside it (e.g. question.jsonl)")
    yield from _read_file(path, path.name, level_map)


# -- files -------------------------------------------------------------------------------------------


def _read_file(path: Path, source: str, level_map: dict[str, tuple[str, str]] | None) -> Iterator[Prompt]:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        rows: Iterable[tuple[str, Any]] = _parquet_rows(path)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        rows = _jsonl_rows(path)
    else:
        raise PromptsError(f"{path}: unknown prompts format {suffix!r}; use .jsonl or .parquet")
    seen: dict[str, str] = {}
    count = 0
    for where, obj in rows:
        prompt = _parse_row(obj, where, source, level_map)
        if prompt.id in seen:
            raise PromptsError(f"{where}: duplicate prompt id {prompt.id!r} (first at {seen[prompt.id]})")
        seen[prompt.id] = where
        count += 1
        yield prompt
    if count == 0:
        raise PromptsError(f"{path}: no prompts in the file")


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Any]]:
    # The project's one JSON reader (votes.files): bad UTF-8, Infinity and absurd nesting name the line too.
    for lineno, line in enumerate(read_text(path, PromptsError).splitlines(), 1):
        if line.strip():
            yield f"{path}:line {lineno}", parse_json(line, str(path), PromptsError, line=lineno)


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise PromptsError(f"{path}: cannot be read as Parquet ({exc})") from exc
    for index, row in enumerate(table.to_pylist()):
        yield f"{path}: row {index}", row


def _parse_row(obj: Any, where: str, source: str, level_map: dict[str, tuple[str, str]] | None) -> Prompt:
    if not isinstance(obj, dict):
        raise PromptsError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "messages" in obj:
        return _codearena_row(obj, where, source, level_map)
    if "turns" in obj:
        return _question_row(obj, where, source)
    raise PromptsError(f"{where}: not a prompt: expected 'messages' (CodeArena) or 'turns' "
                       f"(Arena-Hard / MT-bench question file); got fields {sorted(obj)[:8]}")


def _codearena_row(obj: dict[str, Any], where: str, source: str,
                   level_map: dict[str, tuple[str, str]] | None) -> Prompt:
    pid = _require_id(obj, "id", where)
    messages = _messages(obj["messages"], where)
    languages = obj.get("programming_language")
    if isinstance(languages, str):
        languages = _maybe_literal(languages)
    if isinstance(languages, (list, tuple)):
        language = str(languages[0]) if languages else None
    else:
        language = str(languages) if languages else None
    task_type = _task_type(obj)
    category, subcategory = obj.get("category"), obj.get("subcategory")
    if not category and task_type:
        if level_map is not None and _wash_task_type(task_type) in level_map:
            category, subcategory = level_map[_wash_task_type(task_type)]
        else:
            # Without the map the fine task type is the most specific category we have.
            category = task_type
    return Prompt(id=pid, messages=messages, category=category or None, subcategory=subcategory or None,
                  language=language, difficulty=_opt_str(obj.get("difficulty")), source=source,
                  task_type=task_type)


def _question_row(obj: dict[str, Any], where: str, source: str) -> Prompt:
    pid = _require_id(obj, "question_id", where)
    turns = obj["turns"]
    if not isinstance(turns, (list, tuple)) or not turns:
        raise PromptsError(f"{where}: 'turns' must be a non-empty list")
    texts = []
    for i, turn in enumerate(turns):
        # Arena-Hard: [{"content": ...}]; MT-bench: ["..."].
        text = turn.get("content") if isinstance(turn, dict) else turn
        if not isinstance(text, str) or not text.strip():
            raise PromptsError(f"{where}: turn {i + 1} has no text")
        texts.append(text)
    # Arena-Hard's 'category' is the benchmark name; its 'cluster' is the topic.
    category = obj.get("cluster") or obj.get("category")
    return Prompt(id=pid, messages=[{"role": "user", "content": texts[0]}], category=_opt_str(category),
                  subcategory=None, language=_opt_str(obj.get("language")),
                  difficulty=_opt_str(obj.get("difficulty")), source=source, followups=texts[1:])


def _messages(raw: Any, where: str) -> list[dict[str, str]]:
    if isinstance(raw, str):
        # The dataset card shows messages as a Python repr string; accept JSON or that.
        raw = _maybe_literal(raw)
    if not isinstance(raw, (list, tuple)) or not raw:
        raise PromptsError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or m.get("role") not in (
                "system", "user", "assistant"):
            raise PromptsError(f"{where}: message {i + 1} must be {{role: system|user|assistant, content: str}}")
        out.append({"role": m["role"], "content": m["content"]})
    if out[-1]["role"] != "user":
        raise PromptsError(f"{where}: the last message must be the user's turn, got {out[-1]['role']!r}")
    return out


def _maybe_literal(text: str) -> Any:
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError):
            continue
    return text


def _task_type(obj: dict[str, Any]) -> str | None:
    if obj.get("task_type"):
        value = obj["task_type"]
    else:
        meta = obj.get("meta")
        if isinstance(meta, str):
            meta = _maybe_literal(meta)
        parsed = meta.get("parsed") if isinstance(meta, dict) else None
        value = parsed.get("task_type") if isinstance(parsed, dict) else None
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return str(value) if value else None


def _require_id(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None or str(value).strip() == "":
        raise PromptsError(f"{where}: missing '{key}'")
    return str(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
