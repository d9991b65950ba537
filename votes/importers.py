"""Importers: the field's vote and answer files into the vote store, idempotently.

Every importer turns one source row into a :class:`Battle` (or a :class:`Rejection` that says why not) with a
deterministic id from :func:`votes.record.import_id`, so importing a file twice adds nothing the second time.
A malformed file (bad JSON or UTF-8, not a list of objects, a number no vote can hold such as a turn of
Infinity or a tstamp of 1e20) is an error naming the file and line, and nothing of it is imported; a
well-formed row that cannot be a battle (unknown winner label, same model twice, no majority, a model name
with control characters) is counted as rejected, with its reason, and the import goes on.

All or nothing: an import stores its battles in one transaction (:meth:`VoteStore.transaction`), so a full
disk or a kill -9 in the middle leaves the store as it was.

Provenance: imported human votes get ``import:<dataset>`` unless the caller says who voted
(``as_source="human"`` or ``"judge:NAME"``); judge outputs (``codearena-judgments``) get
``judge:<judge named in the file>``. Keeping ``import:`` by default stops a dataset's votes from silently
merging with the arena's own crowd votes in ``battles_frame("human")``.

Mode: MT-bench experts, PandaLM annotators and Arena-Hard judges all saw the two answers without model names,
so those votes are ``anonymous``; Chatbot Arena rows say so themselves (``anony``).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from votes.files import BattlesFileError, iter_json_lines, parse_json, read_battles_file, read_text
from votes.record import (
    MAX_TURN,
    SOURCE_RE,
    Battle,
    BattleError,
    import_id,
    name_problem,
    text_hash,
    text_problem,
    unix_to_iso,
)
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
    # Stored source -> rows whose id is already stored under that other source: ids are per row, not per
    # source, so the store keeps the old vote; a second copy under the new source would count it twice.
    conflicts: Counter[str] = field(default_factory=Counter)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def nothing_readable(self) -> bool:
        """Every row was rejected: most likely a file of another format (pandalm's turn files given as
        pandalm), which a user must hear about rather than read "added 0"."""
        return self.rejected_total > 0 and self.added == 0 and self.skipped == 0 and not self.conflicts \
            and not self.sources

    def nothing_readable_message(self) -> str:
        reason, n = self.rejected.most_common(1)[0]
        return (f"no row could be read as {self.format}: is this a {self.format} file? (most common rejection, "
                f"{n} of {self.rejected_total} rows: {reason}, first at {self.examples[reason]})")

    def conflict_messages(self) -> list[str]:
        return [f"{n} already stored under source {source} (ids are per row, not per source): delete them "
                f"first or import into another DB" for source, n in sorted(self.conflicts.items())]

    def reject(self, rej: Rejection) -> None:
        self.rejected[rej.reason] += 1
        self.examples.setdefault(rej.reason, rej.where)

    def summary(self) -> str:
        lines = [f"{self.format}: read {self.read} rows from {len(self.files)} file(s); added {self.added}, "
                 f"already present {self.skipped}, rejected {self.rejected_total}"
                 + (" (stored all or nothing, in one transaction)" if self.added else "")]
        for source, n in sorted(self.sources.items()):
            lines.append(f"  source {source}: {n}")
        for reason, n in self.rejected.most_common():
            lines.append(f"  rejected {n}: {reason} (first at {self.examples[reason]})")
        lines += [f"  not imported: {m}" for m in self.conflict_messages()]
        return "\n".join(lines)


# -- reading ---------------------------------------------------------------------------------------------
def read_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Rows of a JSON list or JSONL file, each with a label for messages ("f.jsonl:line 3")."""
    text = read_text(path, ImportFormatError)
    if not text.strip():
        raise ImportFormatError(f"{path}: the file is empty")
    data: Any = None
    if text.lstrip().startswith("["):
        data = parse_json(text, str(path), ImportFormatError)
    elif path.suffix.lower() == ".json":
        try:  # one JSON document ({"battles": [...]}) or, failing that, JSON lines under a .json name
            data = parse_json(text, str(path), ImportFormatError)
        except ImportFormatError:
            if "\n" not in text.strip():
                raise  # one line: it was meant as one document, and its error is the one to show
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


TABLE_SUFFIXES = (".csv", ".parquet", ".pq")  # arena-battles only: what `codearena export votes` also writes


def expand_paths(path: Path, fmt: str | None = None) -> list[Path]:
    """A file, or every .jsonl/.json file in a folder (model_answer/, model_judgment/<judge>/); for
    arena-battles also .csv/.parquet (an exported votes folder holds battles.parquet)."""
    suffixes = (".jsonl", ".json", *(TABLE_SUFFIXES if fmt == "arena-battles" else ()))
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        if not files:
            raise ImportFormatError(f"{path}: folder has no {' or '.join(suffixes)} files")
        return files
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file or folder")
    return [path]


def _plain(value: Any) -> Any:
    """A DataFrame cell as JSON would give it: NaN/NA -> None, numpy arrays and scalars -> list/Python."""
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy array or scalar (Parquet lists)
        value = value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, float) and math.isnan(value):
        return None
    try:
        import pandas as pd

        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def read_table_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Rows of a CSV or Parquet battles file, read by :func:`votes.files.read_battles_file` (which refuses
    a file with a broken row as a whole, naming the row); CSV cells holding JSON lists (the conversations
    ``export votes --format csv`` writes) come back as lists."""
    try:
        df = read_battles_file(path)
    except BattlesFileError as exc:
        raise ImportFormatError(str(exc)) from exc
    csv = path.suffix.lower() == ".csv"
    out = []
    for i, row in enumerate(df.to_dict("records")):
        rec = {str(k): _plain(v) for k, v in row.items()}
        for k in ("conversation_a", "conversation_b"):
            if isinstance(rec.get(k), str) and rec[k].lstrip().startswith("["):
                try:
                    rec[k] = parse_json(rec[k], f"{path.name}: {k}")
                except ValueError:
                    pass  # not a conversation; _conversation() ignores it
        out.append((f"{path.name}:line {i + 2}" if csv else f"{path.name}: row {i}", rec))
    return out


def read_rows(path: Path, fmt: str) -> list[tuple[str, dict[str, Any]]]:
    if fmt == "arena-battles" and path.suffix.lower() in TABLE_SUFFIXES:
        return read_table_records(path)
    return read_records(path)


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


def _turn(where: str, value: Any) -> int:
    """A row's turn: 1 when missing or not a number (as before); a number no conversation has (Infinity,
    1e20) makes the file malformed."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not abs(value) <= MAX_TURN:
        raise ImportFormatError(f"{where}: turn {value!r} is out of range (at most {MAX_TURN})")
    try:
        turn = int(value) if value is not None else 1
    except (TypeError, ValueError, OverflowError):
        return 1
    if abs(turn) > MAX_TURN:  # "1" * 30 as a string
        raise ImportFormatError(f"{where}: turn {value!r} is out of range (at most {MAX_TURN})")
    return turn


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
def _created_at(where: str, tstamp: Any) -> str | None:
    """Arena ``tstamp`` (Unix seconds) as the store's ``created_at`` (ISO UTC, like votes.record.utc_now);
    None when missing or not a number; a number that is no time (Infinity, 1e20) makes the file malformed."""
    try:
        ts = float(tstamp)
    except (TypeError, ValueError, OverflowError):
        return None
    if math.isnan(ts):
        return None
    try:
        return unix_to_iso(ts)
    except BattleError as exc:
        raise ImportFormatError(f"{where}: {exc}") from None


def _flags(value: Any) -> list[str]:
    """A row's flags (identity_leak, swapped, ...): a list, or the JSON text a CSV export holds."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = parse_json(value, "flags")
        except ValueError:
            return []
    return [str(f) for f in value if f] if isinstance(value, list) else []


def _anonymous(value: Any) -> bool:
    # Missing means anonymous (Chatbot Arena's default); CSV may spell the flag as a string.
    return value is None or value is True or str(value).strip().lower() not in ("false", "0")


def parse_arena_battles(rows: Iterable[Row], opts: ImportOptions) -> Iterator[Parsed]:
    """Chatbot Arena battle files: model_a, model_b, winner and optional question_id, judge, turn,
    conversation_a/b, language, category, tstamp (-> created_at), anony; plus what ``codearena export
    votes`` adds: ``source`` (kept unless --as-source is given), ``flags`` and ``id`` (kept, so a
    re-import of an export adds nothing)."""
    default_source = opts.as_source or f"import:{opts.dataset}"
    for index, (where, r) in enumerate(rows):
        qid, tstamp = r.get("question_id"), r.get("tstamp")
        row_source = r.get("source")
        ours = isinstance(row_source, str) and SOURCE_RE.match(row_source) is not None
        source = opts.as_source or (row_source if ours else default_source)
        # Arena rows are unique by question_id (+ tstamp); rows with neither fall back to their position.
        key = (qid, tstamp, r.get("judge"), r.get("model_a"), r.get("model_b"), r.get("turn"),
               None if qid is not None or tstamp is not None else index)
        row_id = r.get("id")
        conv_a, conv_b = _conversation(r.get("conversation_a")), _conversation(r.get("conversation_b"))
        judge = r.get("judge")
        if ours:
            # Our export's judge column is already the voter hash, or the source name when there is none.
            voter = None if judge is None or judge == row_source else str(judge)
        else:
            voter = text_hash(str(judge)) if judge is not None else None  # raw Arena user ids: hash only
        extra: dict[str, Any] = {}
        created_at = _created_at(where, tstamp)
        if created_at is not None:
            extra["created_at"] = created_at
        yield _battle(
            where, model_a=r.get("model_a"), model_b=r.get("model_b"), winner=r.get("winner"), source=source,
            mode="anonymous" if _anonymous(r.get("anony")) else "named", prompt_id=_str_or_none(qid),
            prompt=_first_prompt(conv_a), category=_str_or_none(r.get("category")),
            language=_str_or_none(r.get("language")), turn=_turn(where, r.get("turn")),
            answer_a=_last_reply(conv_a), answer_b=_last_reply(conv_b), conversation_a=conv_a,
            conversation_b=conv_b, voter=voter, flags=_flags(r.get("flags")),
            id=row_id if ours and isinstance(row_id, str) and row_id else import_id(opts.dataset, *key),
            **extra,
        )


def parse_mt_bench_human(rows: Iterable[Row], opts: ImportOptions) -> Iterator[Parsed]:
    """MT-bench human judgments: question_id, judge, model_a, model_b, winner (optional turn)."""
    source = opts.as_source or f"import:{opts.dataset}"
    for where, r in rows:
        missing = [k for k in ("question_id", "judge", "model_a", "model_b", "winner") if r.get(k) is None]
        if missing:
            yield Rejection(where, f"missing field(s) {', '.join(missing)}")
            continue
        turn = _turn(where, r.get("turn"))
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
        if not opts.judge_name:  # check_options says so first; kept for direct callers of the parser
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
        odd = next((k for k in ("annotator1", "annotator2", "annotator3")
                    if r.get(k) is not None and not isinstance(r[k], (int, float, str))), None)
        if odd is not None:  # not a PandaLM file as written: its annotators are numbers
            raise ImportFormatError(f"{where}: {odd} must be a label (0 tie, 1 or 2), got a {type(r[odd]).__name__}")
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


def is_codearena_judgment(r: dict[str, Any]) -> bool:
    """A record written by ``codearena duel``/``judge`` (serving.judge.Judgment.to_record): it has the
    combined verdict (winner, points, error) and games that say whether they were swapped."""
    games = r.get("games")
    return (all(k in r for k in ("winner", "points", "error", "model_a", "model_b"))
            and isinstance(games, list) and bool(games)
            and all(isinstance(g, dict) and "swapped" in g for g in games))


@functools.cache
def _user_prompt_re() -> re.Pattern[str]:
    from serving.judge import USER_TEMPLATE

    parts = re.split(r"\{(question|answer_a|answer_b)\}", USER_TEMPLATE)
    pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.*)" for i, p in enumerate(parts))
    return re.compile(pattern, re.S)


def _split_user_prompt(text: Any) -> tuple[str, str, str] | None:
    """(question, answer in position A, answer in position B) from a game's user prompt, by the judge's own
    template; None when it does not fit it."""
    m = _user_prompt_re().fullmatch(text) if isinstance(text, str) else None
    return (m["question"], m["answer_a"], m["answer_b"]) if m else None


CUT_MARKER = "\n[... answer cut here: "  # serving.judge.truncate's marker: the judge saw only the start


def parse_codearena_judgment(where: str, r: dict[str, Any], opts: ImportOptions) -> Parsed:
    """One CodeArena judgment record -> the ONE battle ``codearena duel``/``judge --db`` store for it
    (serving.judge.to_battle: combined winner, same id), so importing the JSONL after a duel adds nothing
    and a pair's two games are not counted as separate votes. A record with an error is no vote."""
    from serving.judge import battle_id

    if r.get("error") is not None or r.get("winner") is None:
        return Rejection(where, f"judgment has no verdict ({r.get('error') or 'no winner'})")
    qid, judge = r.get("question_id"), r.get("judge")
    if qid is None or not judge:
        return Rejection(where, "judgment record without question_id or judge")
    model_a, model_b, games = str(r["model_a"]), str(r["model_b"]), r["games"]
    # The answers are not in the record; game 1 (not swapped) shows them in the template, model_a's as A.
    first = next((g for g in games if not g.get("swapped")), None)
    split = _split_user_prompt(first.get("user_prompt")) if first is not None else None
    question = split[0] if split is not None else None
    answer_a = answer_b = None
    if split is not None and CUT_MARKER not in split[1] and CUT_MARKER not in split[2]:
        answer_a, answer_b = split[1], split[2]
        bid = battle_id(str(judge), model_a, model_b, str(qid), answer_a, answer_b)
    else:
        # Answers cut for the judge (or an unknown template): the exact answers, hence the duel's id, are
        # unknown; key on what the judge saw, so at least a re-import of this file adds nothing.
        bid = import_id(f"judge:{judge}", model_a, model_b, str(qid),
                        *(text_hash(str(g.get("user_prompt", ""))) for g in games))
    extra: dict[str, Any] = {}
    created_at = _created_at(where, r.get("tstamp"))
    if created_at is not None:
        extra["created_at"] = created_at
    return _battle(
        where, model_a=model_a, model_b=model_b, winner=r["winner"],
        source=opts.as_source or f"judge:{judge}", mode="anonymous", prompt_id=str(qid), prompt=question,
        category=_str_or_none(r.get("category")),
        language=_str_or_none(r.get("language")), answer_a=answer_a, answer_b=answer_b,
        judge_detail={"points": r.get("points"), "games": games}, id=bid, **extra,
    )


def parse_codearena_judgments(rows: Iterable[Row], opts: ImportOptions) -> Iterator[Parsed]:
    """CodeArena judge outputs (``codearena duel``/``judge`` JSONL): one battle per judged pair, as the duel
    stores it (:func:`parse_codearena_judgment`). Arena-Hard ``model_judgment`` rows: ``games`` with
    ``score`` labels (``A>>B`` .. ``B>>A``); game 1 puts the baseline (or ``model_a``) in position A, game 2
    swaps the positions. Each Arena-Hard game is one battle, oriented as the judge saw it, so position bias
    stays measurable; ``judge_detail`` keeps the label, its strength (``>>`` strong) and the game number."""
    for where, r in rows:
        if is_codearena_judgment(r):
            yield parse_codearena_judgment(where, r, opts)
            continue
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
            # Arena-Hard's files rely on the order: game 2 is the swapped one.
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
        problem = name_problem(str(r["model_id"]))
        if problem:
            bad.append(Rejection(where, f"model_id {problem}"))
            continue
        problem = next((p for p in map(text_problem, [*texts, str(r["question_id"])]) if p), None)
        if problem:
            bad.append(Rejection(where, f"an answer or its question_id {problem}"))
            continue
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


def _stored_sources(store: VoteStore, ids: list[str], chunk: int = 500) -> dict[str, str]:
    """id -> source of those of ``ids`` already in the store."""
    found: dict[str, str] = {}
    for i in range(0, len(ids), chunk):
        part = ids[i:i + chunk]
        marks = ", ".join("?" for _ in part)
        rows = store.db.query(f"SELECT id, source FROM battles WHERE id IN ({marks})", part)
        found.update({row["id"]: row["source"] for row in rows})
    return found


def _game_prompts(detail: Any) -> list[Any] | None:
    games = detail.get("games") if isinstance(detail, dict) else None
    return [g.get("user_prompt") for g in games if isinstance(g, dict)] if isinstance(games, list) else None


def _judged_before(store: VoteStore, battle: Battle) -> str | None:
    """The id of a stored battle for the same judgment as ``battle`` (same judge source, question, models
    and the very prompts the judge saw), for a CodeArena judgment whose answers were cut for the judge, so
    that the duel's answer-hash id cannot be recomputed."""
    prompts = _game_prompts(battle.judge_detail)
    if battle.answer_a is not None or not prompts:
        return None
    rows = store.db.query("SELECT id, judge_detail FROM battles WHERE source = ? AND prompt_id = ? "
                          "AND model_a = ? AND model_b = ?",
                          [battle.source, battle.prompt_id, battle.model_a, battle.model_b])
    for row in rows:
        try:
            detail = json.loads(row["judge_detail"]) if isinstance(row["judge_detail"], str) else None
        except json.JSONDecodeError:
            continue
        if _game_prompts(detail) == prompts:
            return str(row["id"])
    return None


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


def _store_battles(store: VoteStore, fmt: str, battles: list[Battle], report: ImportReport) -> None:
    # Ids do not depend on the source, so a row stored before under another source (an import re-run
    # with a different --as-source) would be skipped as "already present" while the store keeps the
    # old source: say so instead of pretending the new source was applied.
    stored = _stored_sources(store, [b.id for b in battles])
    keep: list[Battle] = []
    for b in battles:
        if fmt == "codearena-judgments" and b.id not in stored and _judged_before(store, b) is not None:
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
