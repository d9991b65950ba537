"""Importers: the field's vote and answer files into the vote store, idempotently.

Every importer turns one source row into a :class:`Battle` (or a :class:`Rejection` that says why not) with a
deterministic id from :func:`votes.record.import_id`, so importing a file twice adds nothing the second time.
A malformed file (bad JSON, not a list of objects) is an error naming the file and line; a well-formed row
that cannot be a battle (unknown winner label, same model twice, no majority) is counted as rejected, with
its reason, and the import goes on.

Provenance: imported human votes get ``import:<dataset>`` unless the caller says who voted
(``as_source="human"`` or ``"judge:NAME"``); judge outputs (``codearena-judgments``) get
``judge:<judge named in the file>``. Keeping ``import:`` by default stops a dataset's votes from silently
merging with the arena's own crowd votes in ``battles_frame("human")``.

Mode: MT-bench experts, PandaLM annotators and Arena-Hard judges all saw the two answers without model names,
so those votes are ``anonymous``; Chatbot Arena rows say so themselves (``anony``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from votes.files import iter_json_lines
from votes.record import SOURCE_RE, Battle, BattleError, import_id, text_hash
from votes.store import VoteStore

# Arena-Hard v0.1's default baseline: its model_judgment rows name only the candidate model.
ARENA_HARD_BASELINE = "gpt-4-0314"


class ImportFormatError(ValueError):
    """A file that cannot be imported at all; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class Rejection:
    where: str  # "file:line N" or "file: idx 12"
    reason: str


@dataclass(frozen=True)
class ImportOptions:
    dataset: str  # goes into ids and the default source import:<dataset>
    as_source: str | None = None  # who voted, when the caller knows: human | judge:NAME
    judge_file: Path | None = None  # pandalm: a judge verdict file joined on idx
    judge_name: str | None = None
    baseline: str = ARENA_HARD_BASELINE


@dataclass
class ImportReport:
    """What an import did: rows read, battles (or answers) added, already there, rejected and why."""

    format: str
    files: list[str] = field(default_factory=list)
    read: int = 0
    added: int = 0
    skipped: int = 0  # already stored (same deterministic id): a re-import
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first row that had it
    sources: Counter[str] = field(default_factory=Counter)  # source -> battles produced

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def reject(self, rej: Rejection) -> None:
        self.rejected[rej.reason] += 1
        self.examples.setdefault(rej.reason, rej.where)

    def summary(self) -> str:
        lines = [f"{self.format}: read {self.read} rows from {len(self.files)} file(s); added {self.added}, "
                 f"already present {self.skipped}, rejected {self.rejected_total}"]
        for source, n in sorted(self.sources.items()):
            lines.append(f"  source {source}: {n}")
        for reason, n in self.rejected.most_common():
            lines.append(f"  rejected {n}: {reason} (first at {self.examples[reason]})")
        return "\n".join(lines)


# -- reading ---------------------------------------------------------------------------------------------
def read_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Rows of a JSON list or JSONL file, each with a label for messages ("f.jsonl:line 3")."""
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ImportFormatError(f"{path}: the file is empty")
    data: Any = None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(f"{path}:line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    elif path.suffix.lower() == ".json":
        try:  # one JSON document ({"battles": [...]}) or, failing that, JSON lines under a .json name
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            data = data.get("battles", [data])
    if data is not None:
        if not isinstance(data, list):
            raise ImportFormatError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
        out = []
        for i, row in enumerate(data):
            if not isinstance(row, dict):
                raise ImportFormatError(f"{path}: item {i}: expected a JSON object, got {type(row).__name__}")
            out.append((f"{path.name}: item {i}", row))
        return out
    return [(f"{path.name}:line {lineno}", row)
            for lineno, row in iter_json_lines(path, ImportFormatError, lines=text.splitlines())]


def expand_paths(path: Path) -> list[Path]:
    """A file, or every .jsonl/.json file in a folder (model_answer/, model_judgment/<judge>/)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".jsonl", ".json") and p.is_file())
        if not files:
            raise ImportFormatError(f"{path}: folder has no .jsonl or .json files")
        return files
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file or folder")
    return [path]


# -- row -> battle helpers --------------------------------------------------------------------------------
Row = tuple[str, dict[str, Any]]
Parsed = Battle | Rejection


def _battle(where: str, **kwargs: Any) -> Parsed:
    try:
        return Battle(**kwargs)
    except BattleError as exc:
        return Rejection(where, str(exc))


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _turn(value: Any) -> int:
    try:
        return int(value) if value is not None else 1
    except (TypeError, ValueError):
        return 1


def _conversation(value: Any) -> list[dict[str, str]] | None:
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return [{"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in value]
    return None


def _last_reply(conv: list[dict[str, str]] | None) -> str | None:
    if not conv:
        return None
    replies = [m["content"] for m in conv if m["role"] == "assistant"]
    return replies[-1] if replies else None


def _first_prompt(conv: list[dict[str, str]] | None) -> str | None:
    if not conv:
        return None
    users = [m["content"] for m in conv if m["role"] == "user"]
    return users[0] if users else None


# -- formats ---------------------------------------------------------------------------------------------
def parse_arena_battles(rows: Iterable[Row], opts: ImportOptions) -> Iterator[Parsed]:
    """Chatbot Arena battle files: model_a, model_b, winner and optional question_id, judge, turn,
    conversation_a/b, language, tstamp."""
    source = opts.as_source or f"import:{opts.dataset}"
    for index, (where, r) in enumerate(rows):
        qid, tstamp = r.get("question_id"), r.get("tstamp")
        # Arena rows are unique by question_id (+ tstamp); rows with neither fall back to their position.
        key = (qid, tstamp, r.get("judge"), r.get("model_a"), r.get("model_b"), r.get("turn"),
               None if qid is not None or tstamp is not None else index)
        conv_a, conv_b = _conversation(r.get("conversation_a")), _conversation(r.get("conversation_b"))
        yield _battle(
            where, model_a=r.get("model_a"), model_b=r.get("model_b"), winner=r.get("winner"), source=source,
            mode="anonymous" if r.get("anony", True) else "named", prompt_id=_str_or_none(qid),
            prompt=_first_prompt(conv_a), language=_str_or_none(r.get("language")), turn=_turn(r.get("turn")),
            answer_a=_last_reply(conv_a), answer_b=_last_reply(conv_b), conversation_a=conv_a,
            conversation_b=conv_b, voter=text_hash(str(r["judge"])) if r.get("judge") is not None else None,
            id=import_id(opts.dataset, *key),
        )


def parse_mt_bench_human(rows: Iterable[Row], opts: ImportOptions) -> Iterator[Parsed]:
    """MT-bench human judgments: question_id, judge, model_a, model_b, winner (optional turn)."""
    source = opts.as_source or f"import:{opts.dataset}"
    for where, r in rows:
        missing = [k for k in ("question_id", "judge", "model_a", "model_b", "winner") if r.get(k) is None]
        if missing:
            yield Rejection(where, f"missing field(s) {', '.join(missing)}")
            continue
        turn = _turn(r.get("turn"))
        yield _battle(
            where, model_a=r["model_a"], model_b=r["model_b"], winner=r["winner"], source=source, mode="anonymous",
            prompt_id=str(r["question_id"]), category="mt-bench", turn=turn, voter=text_hash(str(r["judge"])),
            judge_detail={"judge": str(r["judge"])},
            id=import_id(opts.dataset, r["question_id"], r["judge"], r["model_a"], r["model_b"], turn),
        )


PANDALM_LABELS = {0: "tie", 1: "model_a", 2: "model_b"}
# Judge verdict spellings seen in PandaLM's judge files: "1"/"2"/"Tie"/0/1/2; anything else ("garbage") is
# a verdict the judge did not give.
JUDGE_LABELS = {"0": "tie", "tie": "tie", "1": "model_a", "2": "model_b"}


def _pandalm_models(r: dict[str, Any]) -> tuple[str, str] | None:
    parts = str(r.get("cmp_key", "")).split("_")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def _majority(labels: list[Any]) -> str | None:
    counts = Counter(labels)
    label, n = counts.most_common(1)[0] if counts else (None, 0)
    return PANDALM_LABELS.get(label) if n * 2 > len(labels) else None


def parse_pandalm(rows: Iterable[Row], opts: ImportOptions) -> Iterator[Parsed]:
    """The PandaLM test set: the majority of annotator1..3 (0 tie, 1 response1, 2 response2) as the human
    vote, models from ``cmp_key`` (``modelA_modelB``, response1 is modelA); plus, with ``judge_file``, the
    judge's verdict on the same pair as a ``judge:<judge_name>`` battle. Both keep prompt_id = idx, so human
    and judge votes join pair by pair."""
    source = opts.as_source or f"import:{opts.dataset}"
    rows = list(rows)
    verdicts: dict[str, tuple[str, dict[str, Any]]] = {}
    if opts.judge_file is not None:
        if not opts.judge_name:
            raise ImportFormatError("pandalm: --judge-file needs --judge-name (the judge's name, e.g. gpt-3.5-turbo)")
        for jwhere, j in read_records(opts.judge_file):
            if "idx" in j:
                verdicts[str(j["idx"])] = (jwhere, j)
    for where, r in rows:
        models = _pandalm_models(r)
        if r.get("idx") is None or models is None:
            yield Rejection(where, "no idx or no cmp_key of the form modelA_modelB")
            continue
        idx = str(r["idx"])
        labels = [r[k] for k in ("annotator1", "annotator2", "annotator3") if r.get(k) is not None]
        winner = _majority(labels)
        prompt = "\n\n".join(str(r[k]) for k in ("instruction", "input") if r.get(k))
        common = dict(model_a=models[0], model_b=models[1], mode="anonymous", prompt_id=idx, prompt=prompt or None,
                      category=_str_or_none(r.get("motivation_app")), answer_a=_str_or_none(r.get("response1")),
                      answer_b=_str_or_none(r.get("response2")))
        if winner is None:
            yield Rejection(where, "annotators have no majority label")
        else:
            yield _battle(where, winner=winner, source=source, judge_detail={"annotators": labels},
                          id=import_id(opts.dataset, idx, "human"), **common)
        if opts.judge_file is None:
            continue
        if idx not in verdicts:
            yield Rejection(where, f"no verdict for idx {idx} in the judge file")
            continue
        jwhere, j = verdicts[idx]
        raw = next((j[k] for k in j if k.endswith("_result")), None)
        jwinner = JUDGE_LABELS.get(str(raw).strip().lower())
        if jwinner is None:
            yield Rejection(jwhere, f"judge verdict is not 1, 2 or tie (e.g. {raw!r})")
            continue
        reason = next((j[k] for k in j if k.endswith("_reason")), None)
        yield _battle(jwhere, winner=jwinner, source=f"judge:{opts.judge_name}",
                      judge_detail={"verdict": raw, "reason": reason},
                      id=import_id(opts.dataset, idx, "judge", opts.judge_name), **common)


SCORE_RE = re.compile(r"^\[*\s*(A>>B|A>B|A=B|B>A|B>>A|A<B|A<<B|B<A|B<<A|B=A)\s*\]*$")
SCORE_WINNER = {"A>>B": "model_a", "A>B": "model_a", "B<A": "model_a", "B<<A": "model_a",
                "A=B": "tie", "B=A": "tie",
                "B>A": "model_b", "B>>A": "model_b", "A<B": "model_b", "A<<B": "model_b"}


def parse_codearena_judgments(rows: Iterable[Row], opts: ImportOptions) -> Iterator[Parsed]:
    """Arena-Hard ``model_judgment`` rows and CodeArena judge outputs: ``games`` with ``score`` labels
    (``A>>B`` .. ``B>>A``). Game 1 puts the baseline (or ``model_a``) in position A; game 2 swaps the
    positions. Each game is one battle, oriented as the judge saw it, so position bias stays measurable;
    ``judge_detail`` keeps the label, its strength (``>>`` strong) and the game number."""
    for where, r in rows:
        qid, judge = r.get("question_id", r.get("uid")), r.get("judge")
        first_a = r.get("model_a") or r.get("baseline") or opts.baseline
        first_b = r.get("model_b") or r.get("model")
        games = r.get("games")
        if qid is None or not first_b or not isinstance(games, list):
            yield Rejection(where, "not a judgment row (needs question_id, model or model_b, games)")
            continue
        source = opts.as_source or (f"judge:{judge}" if judge else f"import:{opts.dataset}")
        for game_no, game in enumerate(games, 1):
            score = game.get("score") if isinstance(game, dict) else None
            m = SCORE_RE.match(str(score).strip()) if score is not None else None
            if m is None:
                yield Rejection(where, f"game {game_no} has no verdict label (score {score!r})")
                continue
            label = m.group(1)
            # CodeArena's judge marks each game; Arena-Hard's files rely on the order (game 2 swapped).
            swapped = bool(game.get("swapped")) if "swapped" in game else game_no % 2 == 0
            model_a, model_b = (first_b, first_a) if swapped else (first_a, first_b)
            yield _battle(
                where, model_a=model_a, model_b=model_b, winner=SCORE_WINNER[label], source=source, mode="anonymous",
                prompt_id=str(qid), category=_str_or_none(r.get("category")),
                flags=["swapped"] if swapped else [],
                judge_detail={"score": label, "strong": ">>" in label or "<<" in label, "game": game_no,
                              "judge": judge},
                id=import_id(opts.dataset, qid, judge, first_a, first_b, game_no),
            )


def _answer_text(turn: Any) -> str:
    return str(turn.get("content", "")) if isinstance(turn, dict) else str(turn)


def parse_answers(rows: Iterable[Row], opts: ImportOptions, origin: str) -> tuple[list[dict[str, Any]], list[Rejection]]:
    """FastChat / Arena-Hard ``model_answer`` rows -> rows for :meth:`VoteStore.add_answers`."""
    out, bad = [], []
    for where, r in rows:
        choices = r.get("choices")
        turns = choices[0].get("turns") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        if r.get("question_id") is None or not r.get("model_id") or not isinstance(turns, list) or not turns:
            bad.append(Rejection(where, "needs question_id, model_id and choices[0].turns"))
            continue
        texts = [_answer_text(t) for t in turns]
        meta = {k: r[k] for k in ("answer_id", "tstamp") if k in r}
        if isinstance(r.get("conv_metadata"), dict):
            meta["conv_metadata"] = r["conv_metadata"]
        out.append({"model": str(r["model_id"]), "question_id": str(r["question_id"]), "answer": texts[0],
                    "turns": texts, "source": origin, "meta": meta})
    return out, bad


BattleParser = Callable[[Iterable[Row], ImportOptions], Iterator[Parsed]]
BATTLE_FORMATS: dict[str, BattleParser] = {
    "arena-battles": parse_arena_battles,
    "mt-bench-human": parse_mt_bench_human,
    "pandalm": parse_pandalm,
    "codearena-judgments": parse_codearena_judgments,
}
FORMATS: tuple[str, ...] = (*BATTLE_FORMATS, "answers")


def check_options(fmt: str, opts: ImportOptions) -> None:
    if fmt not in FORMATS:
        raise ImportFormatError(f"unknown import format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if opts.as_source is not None and (not SOURCE_RE.match(opts.as_source) or opts.as_source.startswith("import:")
                                       and opts.as_source != f"import:{opts.dataset}"):
        raise ImportFormatError(f"bad --as-source {opts.as_source!r}; expected 'human' or 'judge:NAME'")
    if (opts.judge_file is not None or opts.judge_name) and fmt != "pandalm":
        raise ImportFormatError("--judge-file/--judge-name apply to the pandalm format only")
    if opts.judge_file is not None and not opts.judge_file.exists():
        raise ImportFormatError(f"{opts.judge_file}: no such judge file")


Progress = Callable[[list[Row], str], Iterable[Row]]


def import_path(store: VoteStore, fmt: str, path: str | Path, opts: ImportOptions,
                progress: Progress | None = None) -> ImportReport:
    """Import a file (or a folder of files) of format ``fmt`` into ``store``; ``progress(rows, file_name)``
    may wrap each file's rows (a tqdm bar)."""
    check_options(fmt, opts)
    files = expand_paths(Path(path))
    report = ImportReport(format=fmt, files=[str(f) for f in files])
    for f in files:
        records = read_records(f)
        report.read += len(records)
        rows = progress(records, f.name) if progress else records
        if fmt == "answers":
            answers, bad = parse_answers(rows, opts, origin=f"import:{f.name}")
            for rej in bad:
                report.reject(rej)
            res = store.add_answers(answers)
            report.added += res.added
            report.skipped += res.skipped
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
                report.sources[item.source] += 1
        res = store.add_many(battles)
        report.added += res.added
        report.skipped += res.skipped
    return report
