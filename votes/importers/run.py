"""Running an import: check the options, read and parse every file, then store it all in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from votes.importers.answers import parse_answers
from votes.importers.arena_battles import parse_arena_battles
from votes.importers.core import ImportFormatError, ImportOptions, ImportReport, Parsed, Rejection, Row
from votes.importers.judgments import parse_codearena_judgments
from votes.importers.mt_bench_human import parse_mt_bench_human
from votes.importers.names import BATTLE_FORMAT_NAMES, FORMATS
from votes.importers.pandalm import parse_pandalm
from votes.importers.reading import expand_paths, read_rows
from votes.judgment import JudgeDetail
from votes.record import SOURCE_RE, Battle
from votes.store import VoteStore

BattleParser = Callable[[Iterable[Row], ImportOptions], Iterator[Parsed]]
BATTLE_FORMATS: dict[str, BattleParser] = {
    "arena-battles": parse_arena_battles,
    "mt-bench-human": parse_mt_bench_human,
    "pandalm": parse_pandalm,
    "codearena-judgments": parse_codearena_judgments,
}
assert tuple(BATTLE_FORMATS) == BATTLE_FORMAT_NAMES


def check_options(fmt: str, opts: ImportOptions) -> None:
    if fmt not in FORMATS:
        raise ImportFormatError(f"unknown import format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if opts.as_source is not None and (not SOURCE_RE.match(opts.as_source) or opts.as_source.startswith("import:")
                                       and opts.as_source != f"import:{opts.dataset}"):
        raise ImportFormatError(f"bad --as-source {opts.as_source!r}; expected 'human' or 'judge:NAME'")
    # Both become part of a source (import:DATASET, judge:NAME): a name that cannot be one would reject
    # every row of the file one by one and still exit 0.
    if not SOURCE_RE.match(f"import:{opts.dataset}"):
        raise ImportFormatError(f"bad --dataset {opts.dataset!r}: a dataset name has no spaces (it becomes the "
                                f"source import:DATASET)")
    if opts.judge_name is not None and not SOURCE_RE.match(f"judge:{opts.judge_name}"):
        raise ImportFormatError(f"bad --judge-name {opts.judge_name!r}: a judge name has no spaces (it becomes "
                                "the source judge:NAME)")
    if (opts.judge_file is not None or opts.judge_name) and fmt != "pandalm":
        raise ImportFormatError("--judge-file/--judge-name apply to the pandalm format only")
    if opts.judge_file is not None and not opts.judge_name:
        raise ImportFormatError("pandalm: --judge-file needs --judge-name (the judge's name, e.g. gpt-3.5-turbo)")
    if opts.judge_file is not None and not opts.judge_file.exists():
        raise ImportFormatError(f"{opts.judge_file}: no such judge file")


Progress = Callable[[list[Row], str], Iterable[Row]]


def import_path(store: VoteStore | Callable[[], VoteStore], fmt: str, path: str | Path, opts: ImportOptions,
                progress: Progress | None = None) -> ImportReport:
    """Import a file (or a folder of files) of format ``fmt`` into ``store``; ``progress(rows, file_name)``
    may wrap each file's rows (a tqdm bar).

    ``store`` may be a function that opens it: every file is read and parsed first, and the store is opened
    only when there is something to add, so a bad file, a bad option or a file of another format (every row
    rejected) leaves no new, empty DB behind."""
    check_options(fmt, opts)
    files = expand_paths(Path(path), fmt)
    report = ImportReport(format=fmt, files=[str(f) for f in files])
    parsed: list[tuple[Path, list[Any]]] = []  # answers rows or battles, per file
    for f in files:
        records = read_rows(f, fmt)
        report.read += len(records)
        rows = progress(records, f.name) if progress else records
        if fmt == "answers":
            answers, bad = parse_answers(rows, opts, origin=f"import:{f.name}")
            for rej in bad:
                report.reject(rej)
            parsed.append((f, answers))
            continue
        battles: list[Battle] = []
        seen: set[str] = set()
        for item in BATTLE_FORMATS[fmt](rows, opts):
            if isinstance(item, Rejection):
                report.reject(item)
            elif item.id in seen:
                # Two rows with the same key in one file (the same judge voting the same pair twice).
                report.reject(Rejection(f.name, "duplicate row (same key as an earlier row in the file)"))
            else:
                seen.add(item.id)
                battles.append(item)
        parsed.append((f, battles))
    if not any(items for _, items in parsed):
        return report  # nothing to add: the store is not opened (nor created)
    opened = store if isinstance(store, VoteStore) else store()
    # One transaction for every file: the import is stored whole or not at all.
    with opened.transaction():
        for _, items in parsed:
            if fmt == "answers":
                res = opened.add_answers(items)
                report.added += res.added
                report.skipped += res.skipped
            else:
                _store_battles(opened, fmt, items, report)
    return report


def _game_prompts(detail: Any) -> list[str] | None:
    parsed = JudgeDetail.from_stored(detail)
    return [g.user_prompt for g in parsed.games] if parsed is not None else None


def _judged_before(store: VoteStore, battle: Battle) -> bool:
    """Whether the store holds a battle for the same judgment as ``battle`` (same judge source, question,
    models and the very prompts the judge saw): for records that name no answers, whose id cannot be the
    duel's answer-hash id."""
    prompts = _game_prompts(battle.judge_detail)
    if battle.answer_a is not None or not prompts:
        return False
    return any(_game_prompts(b.judge_detail) == prompts
               for b in store.battles_of_pair(battle.source, battle.prompt_id, battle.model_a, battle.model_b))


def _store_battles(store: VoteStore, fmt: str, battles: list[Battle], report: ImportReport) -> None:
    # Ids do not depend on the source, so a row stored before under another source (an import re-run
    # with a different --as-source) would be skipped as "already present" while the store keeps the
    # old source: say so instead of pretending the new source was applied.
    stored = store.stored_sources(b.id for b in battles)
    keep: list[Battle] = []
    for b in battles:
        if fmt == "codearena-judgments" and b.id not in stored and _judged_before(store, b):
            report.skipped += 1  # the duel stored this judgment already, under its answer-hash id
            report.sources[b.source] += 1
        elif b.id in stored and stored[b.id] != b.source:
            report.conflicts[stored[b.id]] += 1
        else:
            keep.append(b)
            report.sources[b.source] += 1
    res = store.add_many(keep)
    report.added += res.added
    report.skipped += res.skipped
