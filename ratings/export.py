"""Battles and leaderboards in the shapes other tools read: Chatbot Arena battle records, TRL preference
pairs, a dataset card. Pure transforms on DataFrames; the command writes the files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ARENA_COLUMNS = ["question_id", "model_a", "model_b", "winner", "judge", "conversation_a", "conversation_b",
                 "turn", "anony", "language", "tstamp", "category", "source", "flags", "id", "runs",
                 "pair_probability"]


@dataclass(frozen=True)
class PreferenceSet:
    pairs: pd.DataFrame  # prompt, chosen, rejected, id, question_id, model_chosen, model_rejected, category,
    #                      runs_chosen, runs_rejected
    ties_excluded: int
    bothbad_excluded: int
    missing_answers: int
    not_human: int
    multi_turn_excluded: int = 0  # judged on a whole conversation: no single chosen/rejected answer


def _conversation(stored: Any, prompt: Any, answer: Any) -> list[dict[str, str]] | None:
    """OpenAI-format messages: the stored multi-turn conversation, else [user prompt, assistant answer]."""
    from votes.files import parse_json

    if isinstance(stored, str) and stored.strip():
        try:
            stored = parse_json(stored, "conversation")
        except ValueError:
            stored = None  # text that is no conversation (a battles file's own column): none stored
    if isinstance(stored, (list, tuple, np.ndarray)) and len(stored) and all(isinstance(m, dict) for m in stored):
        return [{"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in stored]
    if isinstance(prompt, str) and isinstance(answer, str):
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return None


def _flags(value: Any) -> list[str]:
    """Flags as a list, from the store's JSON text or a file's list (so an export keeps them)."""
    from votes.record import parse_flags

    return parse_flags(value)


def _user_turns(conversation: Any) -> int:
    """Number of user messages in a stored conversation (a list or its JSON text); 0 when none stored."""
    if isinstance(conversation, str) and conversation.strip():
        from votes.files import parse_json

        try:
            conversation = parse_json(conversation, "conversation")
        except ValueError:
            return 0
    if not isinstance(conversation, (list, tuple, np.ndarray)):
        return 0
    return sum(1 for m in conversation if isinstance(m, dict) and m.get("role") == "user")


def multi_turn(battles: pd.DataFrame) -> np.ndarray:
    """True for votes on a multi-turn conversation (turn > 1, or more than one user turn stored)."""
    turn = pd.to_numeric(_col(battles, "turn"), errors="coerce").fillna(1).to_numpy() > 1
    conv = np.array([max(_user_turns(a), _user_turns(b)) > 1 for a, b in
                     zip(_col(battles, "conversation_a"), _col(battles, "conversation_b"), strict=True)],
                    dtype=bool)
    return turn | conv


def _tstamp(created_at: Any) -> float | None:
    if not isinstance(created_at, str) or not created_at:
        return None
    try:
        dt = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)


def arena_records(battles: pd.DataFrame) -> pd.DataFrame:
    """Battles in the Chatbot Arena release schema (judge = voter hash, else the source)."""
    prompt, ans_a, ans_b = _col(battles, "prompt"), _col(battles, "answer_a"), _col(battles, "answer_b")
    conv_a = [_conversation(c, p, a) for c, p, a in zip(_col(battles, "conversation_a"), prompt, ans_a, strict=True)]
    conv_b = [_conversation(c, p, a) for c, p, a in zip(_col(battles, "conversation_b"), prompt, ans_b, strict=True)]
    voter, source = _col(battles, "voter"), _col(battles, "source")
    judge = [v if isinstance(v, str) and v else s for v, s in zip(voter, source, strict=True)]
    mode = _col(battles, "mode")
    if "mode" in battles.columns or "anony" not in battles.columns:
        anony = (mode.astype(str) != "named").to_numpy()
    else:  # a Chatbot Arena file read back: keep its own anony
        anony = battles["anony"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    turn = pd.to_numeric(_col(battles, "turn"), errors="coerce").fillna(1).astype(int)
    return pd.DataFrame({
        "question_id": _col(battles, "prompt_id").to_numpy(),
        "model_a": battles["model_a"].to_numpy(),
        "model_b": battles["model_b"].to_numpy(),
        "winner": battles["winner"].to_numpy(),
        "judge": judge,
        "conversation_a": conv_a,
        "conversation_b": conv_b,
        "turn": turn.to_numpy(),
        "anony": anony,
        "language": _col(battles, "language").to_numpy(),
        "tstamp": [_tstamp(c) for c in _col(battles, "created_at")],
        "category": _col(battles, "category").to_numpy(),
        "source": source.to_numpy(),
        "flags": [_flags(v) for v in _col(battles, "flags")],
        "id": _col(battles, "id").to_numpy(),
        "runs": [_runs(v) for v in _col(battles, "runs")],
        "pair_probability": pd.to_numeric(_col(battles, "pair_probability"), errors="coerce").to_numpy(),
    })[ARENA_COLUMNS]


def _runs(value: Any) -> list[dict[str, Any]]:
    """A battle's code runs as plain JSON lists (votes.runs.BattleRun.to_dict each), from the store's JSON text
    or a file's list; [] for none. Runs that do not parse are dropped here: the importer names them instead."""
    from votes.runs import RunRecordError, parse_runs

    if isinstance(value, np.ndarray):  # a Parquet list read back
        value = value.tolist()
    if isinstance(value, float) and np.isnan(value):
        return []
    try:
        return [r.to_dict() for r in parse_runs(value)]
    except RunRecordError:
        return []


def side_runs(runs: Any, side: str, turn: int | None = None) -> list[dict[str, Any]]:
    """The runs (plain dicts) of one side ("model_a"/"model_b"), optionally of one turn only."""
    return [r for r in _runs(runs) if r["side"] == side and (turn is None or r["turn"] == turn)]


LIST_COLUMNS: tuple[str, ...] = ("conversation_a", "conversation_b", "flags", "runs")


def flat_records(records: pd.DataFrame) -> pd.DataFrame:
    """Arena records for a flat format (CSV): list columns as JSON text, no conversation as an empty cell,
    text that a spreadsheet would run as a formula escaped (:func:`spreadsheet_safe`)."""
    flat = records.copy()
    for col in LIST_COLUMNS:
        if col in flat:
            flat[col] = [None if v is None else json.dumps(v, ensure_ascii=False) for v in flat[col]]
    return spreadsheet_safe(flat)


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A table for a CSV file: text cells a spreadsheet would run as a formula (=, +, -, @) are prefixed
    with ' (OWASP's advice; see votes.files.csv_escape). `codearena import`, `rate` and `validate` read
    such a file back unchanged."""
    from votes.files import csv_escape

    return csv_escape(table)


# Columns a Parquet release keeps as JSON text: a run's fields are nullable and vary (stdin, compile_s, signal),
# and as Arrow structs two releases would get different schemas (and pandas turns a null-holding integer into
# a float on the way back); JSON text reads back exactly, in every tool.
PARQUET_JSON_COLUMNS: tuple[str, ...] = ("runs",)


def parquet_records(records: pd.DataFrame) -> pd.DataFrame:
    """Arena records for Parquet: the runs as JSON text (see PARQUET_JSON_COLUMNS); the rest as is."""
    out = records.copy()
    for col in PARQUET_JSON_COLUMNS:
        if col in out:
            out[col] = [json.dumps(v if v is not None else [], ensure_ascii=False) for v in out[col]]
    return out


def preference_pairs(battles: pd.DataFrame, *, human_only: bool = True) -> PreferenceSet:
    """Decisive votes as {prompt, chosen, rejected} rows (TRL's DPO "standard" format).

    Ties and both-bad votes carry no preference and are excluded; so are votes whose prompt or answer
    texts were not stored, and multi-turn votes: answer_a/b hold turn 1 only, but the voter judged the whole
    conversation. Each exclusion is counted, so the caller can report it.
    """
    df = battles
    not_human = 0
    if human_only and "source" in df.columns:
        human = (df["source"].astype(str) == "human").to_numpy()
        not_human = int((~human).sum())
        df = df.loc[human]
    winner = df["winner"].astype(str)
    ties = int((winner == "tie").sum())
    bothbad = int((winner == "tie (bothbad)").sum())
    df = df.loc[winner.isin(["model_a", "model_b"]).to_numpy()]
    multi = multi_turn(df)
    df = df.loc[~multi]
    prompt, ans_a, ans_b = _col(df, "prompt"), _col(df, "answer_a"), _col(df, "answer_b")

    def has_text(s: pd.Series) -> np.ndarray:
        return s.map(lambda v: isinstance(v, str) and v.strip() != "").to_numpy(dtype=bool)

    ok = has_text(prompt) & has_text(ans_a) & has_text(ans_b)
    missing = int((~ok).sum())
    df = df.loc[ok]
    a_won = (df["winner"] == "model_a").to_numpy()
    pairs = pd.DataFrame({
        "prompt": df["prompt"].to_numpy(),
        "chosen": np.where(a_won, df["answer_a"], df["answer_b"]),
        "rejected": np.where(a_won, df["answer_b"], df["answer_a"]),
        "id": _col(df, "id").to_numpy(),
        "question_id": _col(df, "prompt_id").to_numpy(),
        "model_chosen": np.where(a_won, df["model_a"], df["model_b"]),
        "model_rejected": np.where(a_won, df["model_b"], df["model_a"]),
        "category": _col(df, "category").to_numpy(),
        # Metadata beside TRL's three fields: the code runs the voter saw of each answer (turn 1).
        "runs_chosen": [side_runs(r, "model_a" if a else "model_b", 1) for r, a in zip(_col(df, "runs"), a_won,
                                                                                     strict=True)],
        "runs_rejected": [side_runs(r, "model_b" if a else "model_a", 1) for r, a in zip(_col(df, "runs"), a_won,
                                                                                       strict=True)],
    })
    return PreferenceSet(pairs=pairs.reset_index(drop=True), ties_excluded=ties, bothbad_excluded=bothbad,
                         missing_answers=missing, not_human=not_human, multi_turn_excluded=int(multi.sum()))


def ratings_meta(*, method: str, ci_method: str, n_votes: int, source: str, models: int,
                 notes: list[str], nu: float | None = None,
                 settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a leaderboard file must say about itself to be read correctly later."""
    meta: dict[str, Any] = {
        "method": method,
        "ci_method": ci_method,
        "votes": n_votes,
        "models": models,
        "source": source,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scale": "Elo: 1000 + 400 * log10-odds",
        "notes": notes,
    }
    if settings is not None:
        meta["settings"] = settings  # the fit options, so the table can be reproduced with `codearena rate`
    if nu is not None:
        meta["davidson_nu"] = nu
    return meta


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency)."""
    cols = list(table.columns)

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.1f}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


ARENA_DEFAULT_LICENSE = "cc-by-4.0"
# Licenses of the datasets `codearena import` reads, by dataset name (prefix match, first hit wins).
KNOWN_IMPORT_LICENSES: tuple[tuple[str, str], ...] = (
    ("mt-bench-human", "cc-by-4.0"),
    ("pandalm", "apache-2.0"),
    ("arena-hard", "apache-2.0"),
    ("mt-bench", "apache-2.0"),  # the MT-bench questions and pregenerated answers
)


def import_license(dataset: str) -> str | None:
    """The known license of an imported dataset (``import:<dataset>`` without the prefix), else None."""
    for prefix, license_id in KNOWN_IMPORT_LICENSES:
        if dataset.startswith(prefix):
            return license_id
    return None


def card_license(sources: list[str], license_id: str | None = None) -> tuple[str, list[str]]:
    """The card's ``license:`` value and the sentences that explain it.

    An explicit ``license_id`` wins. Votes collected by the arena itself (human, judge:*) default to
    cc-by-4.0, which the operator should confirm. Imported datasets keep their own licenses, so a release
    that includes them is ``other``, with each import's license listed (or "unknown, check the source").
    """
    imports = sorted({s.removeprefix("import:") for s in sources if s.startswith("import:")})
    if license_id is not None:
        return license_id, [f"License: {license_id} (set with --license) for the votes; the prompts and answers "
                            "keep the licenses of their sources."]
    if not imports:
        return ARENA_DEFAULT_LICENSE, [
            f"License: {ARENA_DEFAULT_LICENSE} for the votes, the default for votes collected by this arena; "
            "the operator should confirm it (`--license` sets another). The prompts and answers keep the "
            "licenses of their sources."]
    lines = ["License: other. This release includes imported datasets, each under its own license:", ""]
    lines += [f"- `import:{d}`: {import_license(d) or 'unknown, check the source'}" for d in imports]
    if any(not s.startswith("import:") for s in sources):
        lines.append(f"- votes collected by this arena (human, judge:*): {ARENA_DEFAULT_LICENSE} by default; "
                     "the operator should confirm it")
    return "other", lines


def dataset_card(records: pd.DataFrame, *, data_file: str, source: str, license_id: str | None = None) -> str:
    """README.md for an exported votes folder: the Hugging Face card header makes load_dataset find the file.

    ``license_id``: the card's license; None derives it from the votes' sources (see :func:`card_license`).
    """
    sources = sorted({str(s) for s in records["source"].dropna()}) if "source" in records.columns else []
    header_license, license_lines = card_license(sources, license_id)
    winners = records["winner"].value_counts().to_dict()
    models = sorted(set(records["model_a"]) | set(records["model_b"]))
    fields = {
        "question_id": "prompt id", "model_a / model_b": "the two models", "winner":
        "model_a | model_b | tie | tie (bothbad)", "judge": "voter hash (humans) or the judge/source name",
        "conversation_a / conversation_b": "OpenAI-format messages [user, assistant, ...] (null if no text stored)",
        "turn": "number of turns", "anony": "true when the voter did not see the model names",
        "language": "programming language of the prompt", "tstamp": "vote time, Unix seconds",
        "category": "prompt category", "source": "human | judge:NAME | import:DATASET",
        "flags": "quality flags, e.g. identity_leak:model_a (an answer or its run output revealed its model)",
        "id": "vote id",
        "pair_probability": "probability with which the arena's sampler chose this pair (null for named votes "
        "and imports): weight 1/p to undo the sampler (`codearena rate --reweight propensity`)",
        "runs": "JSON text (json.loads gives a list): the code runs the voter asked for before voting (Run buttons), "
        "in order; [] when none. Each: side (model_a | model_b), turn, started_at (UTC), queued_s, and run: language, "
        "status (ok | compile_error | runtime_error | timeout | cpu_limit | memory_limit | output_limit | no_code | "
        "unsupported | unavailable | sandbox_error | rendered), exit_code, signal, stdout, stderr, wall_s, cpu_s, "
        "compile_s, truncated, blocks (0-based fenced blocks that ran), code, runner, runner_version, sandbox, stdin, "
        "limits (wall_s, cpu_s, memory_mb, max_processes, max_output_bytes, tmp_mb, compile_wall_s)",
    }
    lines = [
        "---", f"license: {header_license}", "configs:", "- config_name: default", "  data_files:",
        "  - split: train", f"    path: {data_file}", "---", "",
        "# CodeArena votes", "",
        f"Pairwise votes on code answers exported by `codearena export votes` (source filter: `{source}`), in the "
        "Chatbot Arena battle schema.", "",
        *license_lines, "",
        "## Counts", "",
        f"- battles: {len(records)}",
        f"- models: {len(models)} ({', '.join(models)})",
    ]
    lines += [f"- winner = {k}: {v}" for k, v in sorted(winners.items())]
    lines += ["", "## Fields", ""] + [f"- `{k}`: {v}" for k, v in fields.items()]
    lines += ["", "## Loading", "", "```python", "import datasets",
              f'ds = datasets.load_dataset("parquet", data_files="{data_file}")', "```", ""]
    return "\n".join(lines)


# -- writing: one implementation for `codearena export` and the arena's Data tab --------------------------
LEADERBOARD_FORMATS = ("json", "csv", "md")
VOTES_FORMATS = ("jsonl", "csv", "parquet")
PARQUET_FILE = "battles.parquet"


def leaderboard_sidecar(path: Path) -> Path:
    """Where a CSV or Markdown leaderboard's metadata goes (JSON embeds it)."""
    return path.with_name(path.name + ".meta.json")


def write_leaderboard(path: str | Path, table: pd.DataFrame, meta: dict[str, Any], fmt: str = "json") -> Path:
    """The leaderboard and what it rests on (``ratings_meta``): JSON embeds the metadata around the rows,
    CSV and Markdown get it in a ``PATH.meta.json`` sidecar. Written whole or not at all."""
    from votes.atomic import atomic_path

    path = Path(path)
    if fmt not in LEADERBOARD_FORMATS:
        raise ValueError(f"leaderboard format {fmt!r}: expected one of {', '.join(LEADERBOARD_FORMATS)}")
    if fmt == "json":
        rows = json.loads(table.to_json(orient="records")) if not table.empty else []
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({**meta, "leaderboard": rows}, indent=1, ensure_ascii=False) + "\n",
                           encoding="utf-8")
        return path
    # Both complete before either replaces an old one: the table never sits next to another run's meta.
    with atomic_path(leaderboard_sidecar(path)) as tmp_meta, atomic_path(path) as tmp:
        if fmt == "csv":
            spreadsheet_safe(table).to_csv(tmp, index=False, float_format="%.2f")
        else:
            tmp.write_text(markdown_table(table), encoding="utf-8")
        tmp_meta.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return path


def write_votes(path: str | Path, records: pd.DataFrame, fmt: str = "jsonl", *, card: str | None = None) -> Path:
    """Chatbot Arena battle records (``arena_records``) as JSONL, CSV (lists as JSON text, formula cells
    escaped), or a Parquet folder ``PATH/battles.parquet`` with its dataset card ``PATH/README.md``."""
    from votes.atomic import atomic_path

    path = Path(path)
    if fmt not in VOTES_FORMATS:
        raise ValueError(f"votes format {fmt!r}: expected one of {', '.join(VOTES_FORMATS)}")
    if fmt == "jsonl":
        with atomic_path(path) as tmp:
            records.to_json(tmp, orient="records", lines=True, force_ascii=False)
        return path
    if fmt == "csv":
        with atomic_path(path) as tmp:
            flat_records(records).to_csv(tmp, index=False)
        return path
    created = not path.exists()
    path.mkdir(exist_ok=True)
    try:
        # The data and its card, both complete before either replaces the old pair.
        with atomic_path(path / "README.md") as tmp_card, atomic_path(path / PARQUET_FILE) as tmp:
            parquet_records(records).to_parquet(tmp, index=False)
            tmp_card.write_text(card or "", encoding="utf-8")
    except BaseException:
        if created and not any(path.iterdir()):
            path.rmdir()  # a failed export leaves no empty folder behind
        raise
    return path
