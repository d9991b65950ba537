"""The judgment record: what an LLM judge decided on one pair of answers, in the form every room reads.

One module owns it, the way :mod:`votes.record` owns the battle: the judge (``serving.judge``) writes it, the
duel stores it as one battle, ``codearena import codearena-judgments`` reads it back, and the judge-bias
statistics (``ratings.judge_bias``) read its games. Nothing else spells a verdict label or a stored key.

- :data:`LABELS` and :func:`normalize_label`: CodeArena's five verdicts and their mirrored spellings.
- :class:`GameRecord`: one game (the prompt the judge saw, its replies, the verdict found).
- :class:`JudgeDetail`: what a judge battle keeps in ``judge_detail``: both games, the combined points,
  the hashes of the two answers judged (so a battle's id can be recomputed from the record alone) and, for
  an execution-aware judge, the run of each answer's code that the judge was shown.
- :class:`JudgmentRecord`: one line of a ``duel``/``judge`` judgments JSONL file (Arena-Hard-like), with the
  question and the answers, and :meth:`JudgmentRecord.to_battle`, the one vote it casts.

A judge that saw the answers' code runs (``--execute``) is another rater than the same judge without them:
its source is ``judge:<name>+exec`` (:func:`rater_name`) and its battles have their own ids, so the two can
be compared on the same answers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from votes.files import parse_json
from votes.record import Battle, import_id, text_hash
from votes.runs import BattleRun, CodeRun, RunRecordError

LABELS: tuple[str, ...] = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
# The mirrored spellings CodeArena's scorer also accepts.
SYNONYMS: dict[str, str] = {"A<<B": "B>>A", "A<B": "B>A", "B<<A": "A>>B", "B<A": "A>B", "B=A": "A=B"}
# Points for the answer shown in position A: a strong verdict is worth 2, a weak one 1.
POINTS: dict[str, int] = {"A>>B": 2, "A>B": 1, "A=B": 0, "B>A": -1, "B>>A": -2}
# The vote a label casts for the answer shown in position A.
POSITION_WINNER: dict[str, str] = {"A>>B": "model_a", "A>B": "model_a", "A=B": "tie", "B>A": "model_b",
                                   "B>>A": "model_b"}

# Appended to a judge's name when it judged with the answers' code runs in its prompt: another rater.
EXEC_SUFFIX = "+exec"
# The sides of a judged pair, as the runs of a JudgeDetail are keyed.
RUN_KEYS: tuple[str, str] = ("model_a", "model_b")

VerdictStatus = Literal["ok", "missing", "conflict"]
Outcome = Literal["model_a", "model_b", "tie"]
OUTCOMES: tuple[str, ...] = ("model_a", "model_b", "tie")


class JudgmentFormatError(ValueError):
    """A judgment record that does not hold together; the message says which field and why."""


def normalize_label(raw: str) -> str | None:
    """A label as CodeArena's scorer reads it (``B<A`` is ``A>B``, ``[[A>B]]`` is ``A>B``); None for
    anything else (``[[AB]]``, ``A>>>B``)."""
    label = str(raw).strip().strip("[]").strip()
    if label in POINTS:
        return label
    return SYNONYMS.get(label)


def is_strong(label: str) -> bool:
    return abs(POINTS[label]) == 2


def position_sign(label: str) -> int:
    """+1 when the answer in position A won the game, -1 when B's did, 0 for a tie."""
    points = POINTS[label]
    return (points > 0) - (points < 0)


def game_points(label: str, swapped: bool) -> int:
    """Points for model_a from one game. In the swapped game model_a's answer sits in position B."""
    points = POINTS[label]
    return -points if swapped else points


def combine(labels: list[str] | tuple[str, ...]) -> tuple[int, Outcome]:
    """CodeArena's combination of games: (sum of model_a's points, winner). Games alternate positions:
    game 1 shows model_a as A, game 2 as B (and so on for more games)."""
    total = sum(game_points(label, swapped=i % 2 == 1) for i, label in enumerate(labels))
    if total > 0:
        return total, "model_a"
    if total < 0:
        return total, "model_b"
    return total, "tie"


def rater_name(judge: str, executed: bool) -> str:
    """The rater a judge is: its name, or ``<name>+exec`` when it saw the answers' code runs."""
    return judge + EXEC_SUFFIX if executed else judge


def judge_battle_id(judge: str, model_a: str, model_b: str, question_id: str, answer_a_hash: str,
                    answer_b_hash: str) -> str:
    """Deterministic: the same judge on the same two answers is one battle, so a re-run adds nothing and a
    duel can resume where it stopped; new answers (or another judge) make a new battle. ``judge`` is the
    rater (:func:`rater_name`): the same judge with and without execution casts two battles."""
    return import_id(f"judge:{judge}", model_a, model_b, str(question_id), answer_a_hash, answer_b_hash)


def _opt_str(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise JudgmentFormatError(f"{name} must be text, got {type(value).__name__}")


def _seconds(value: Any) -> float:
    try:
        seconds = float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return seconds if math.isfinite(seconds) else 0.0


@dataclass(frozen=True)
class GameRecord:
    """One game: the prompt the judge saw, every reply (the follow-up's too) and the verdict found."""

    swapped: bool
    user_prompt: str
    replies: tuple[str, ...] = ()
    followup: bool = False
    label: str | None = None
    status: VerdictStatus = "missing"
    error: str | None = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "replies", tuple(self.replies))
        if self.label is not None and self.label not in POINTS:
            raise JudgmentFormatError(f"game label {self.label!r} is none of {', '.join(LABELS)}")

    @property
    def judgment(self) -> str:
        return "\n".join(self.replies)

    def to_dict(self) -> dict[str, Any]:
        # "score" holds the label and "judgment" the raw text, as Arena-Hard's judgment files do.
        return {"score": self.label, "judgment": self.judgment, "user_prompt": self.user_prompt,
                "swapped": self.swapped, "followup": self.followup, "status": self.status,
                "error": self.error, "replies": list(self.replies), "seconds": round(self.seconds, 3)}

    @classmethod
    def from_dict(cls, d: Any) -> GameRecord:
        if not isinstance(d, dict):
            raise JudgmentFormatError(f"a game must be a JSON object, got {type(d).__name__}")
        raw = d.get("score")
        label = None if raw is None else normalize_label(raw)
        if raw is not None and label is None:
            raise JudgmentFormatError(f"game score {raw!r} is no verdict label")
        replies = d.get("replies")
        if not isinstance(replies, list):
            replies = [d.get("judgment") or ""]
        status = d.get("status", "ok" if label is not None else "missing")
        return cls(swapped=bool(d.get("swapped")), user_prompt=str(d.get("user_prompt") or ""),
                   replies=tuple(str(r) for r in replies), followup=bool(d.get("followup")), label=label,
                   status=status if status in ("ok", "missing", "conflict") else "missing",
                   error=_opt_str(d.get("error"), "game error"), seconds=_seconds(d.get("seconds")))


def _check_runs(runs: Any) -> tuple[CodeRun, CodeRun] | None:
    if runs is None:
        return None
    runs = tuple(runs)
    if len(runs) != 2 or not all(isinstance(r, CodeRun) for r in runs):
        raise JudgmentFormatError("runs must be two code runs (model_a's answer, then model_b's) or None")
    return runs[0], runs[1]


def _runs_to_dict(runs: tuple[CodeRun, CodeRun]) -> dict[str, Any]:
    return {key: run.to_dict() for key, run in zip(RUN_KEYS, runs, strict=True)}


def _runs_from_dict(value: Any) -> tuple[CodeRun, CodeRun] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(RUN_KEYS):
        raise JudgmentFormatError(f"runs must be an object with exactly {' and '.join(RUN_KEYS)}")
    try:
        return CodeRun.from_dict(value["model_a"]), CodeRun.from_dict(value["model_b"])
    except RunRecordError as exc:
        raise JudgmentFormatError(f"runs: {exc}") from exc


@dataclass(frozen=True)
class JudgeDetail:
    """A judge battle's ``judge_detail``: both games, the combined points, the judged answers' hashes, and
    ``runs``: the code run of model_a's and model_b's answer the judge was shown (None: it saw none)."""

    games: tuple[GameRecord, ...]
    points: int | None = None
    answer_a_hash: str | None = None
    answer_b_hash: str | None = None
    runs: tuple[CodeRun, CodeRun] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "games", tuple(self.games))
        object.__setattr__(self, "runs", _check_runs(self.runs))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"points": self.points, "games": [g.to_dict() for g in self.games]}
        if self.answer_a_hash is not None:
            out["answer_a_hash"], out["answer_b_hash"] = self.answer_a_hash, self.answer_b_hash
        if self.runs is not None:  # absent, not null, for a plain judge: its stored form stays as it was
            out["runs"] = _runs_to_dict(self.runs)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JudgeDetail:
        games = d.get("games")
        if not isinstance(games, list):
            raise JudgmentFormatError("judge detail without a list of games")
        points = d.get("points")
        if points is not None and (isinstance(points, bool) or not isinstance(points, int)):
            raise JudgmentFormatError(f"points must be a whole number, got {points!r}")
        return cls(games=tuple(GameRecord.from_dict(g) for g in games), points=points,
                   answer_a_hash=_opt_str(d.get("answer_a_hash"), "answer_a_hash"),
                   answer_b_hash=_opt_str(d.get("answer_b_hash"), "answer_b_hash"),
                   runs=_runs_from_dict(d.get("runs")))

    @classmethod
    def from_stored(cls, value: Any) -> JudgeDetail | None:
        """A stored ``judge_detail`` (its JSON text, or the dict) as a JudgeDetail; None when the battle's
        detail is of another kind (an imported annotator list, a single Arena-Hard game) or unreadable."""
        if isinstance(value, str):
            try:
                value = parse_json(value, "judge_detail")
            except ValueError:
                return None
        if not isinstance(value, dict) or not isinstance(value.get("games"), list):
            return None
        try:
            return cls.from_dict(value)
        except JudgmentFormatError:
            return None

    def swap_pair(self) -> tuple[GameRecord, GameRecord] | None:
        """The first unswapped and the first swapped game that both have a verdict (position-bias checks)."""
        judged = [g for g in self.games if g.label is not None]
        plain = next((g for g in judged if not g.swapped), None)
        swapped = next((g for g in judged if g.swapped), None)
        return (plain, swapped) if plain is not None and swapped is not None else None


# The keys that mark a line as ours (and not an Arena-Hard model_judgment row, which has games too).
_RECORD_KEYS = ("winner", "points", "error", "model_a", "model_b")


@dataclass(frozen=True)
class JudgmentRecord:
    """Both games on one (question, model_a, model_b) and their combination; ``error`` when unusable.

    ``question``, ``answer_a`` and ``answer_b`` are the texts judged (whole, before any cut for the judge's
    context); their hashes identify the battle. Records written before these fields existed have none.
    ``judge`` is the judge model's name; ``runs`` (model_a's run, model_b's) are set when the judge saw the
    answers' code runs, which makes it the rater ``judge+exec`` (:attr:`rater`)."""

    question_id: str
    model_a: str
    model_b: str
    judge: str
    games: tuple[GameRecord, ...]
    points: int | None = None
    winner: Outcome | None = None
    error: str | None = None
    category: str | None = None
    language: str | None = None
    tstamp: float = field(default_factory=time.time)
    question: str | None = None
    answer_a: str | None = None
    answer_b: str | None = None
    answer_a_hash: str | None = None
    answer_b_hash: str | None = None
    runs: tuple[CodeRun, CodeRun] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "games", tuple(self.games))
        object.__setattr__(self, "runs", _check_runs(self.runs))
        if self.winner is not None and self.winner not in OUTCOMES:
            raise JudgmentFormatError(f"winner {self.winner!r} is none of {', '.join(OUTCOMES)}")
        for side in ("a", "b"):
            text, digest = getattr(self, f"answer_{side}"), getattr(self, f"answer_{side}_hash")
            if text is not None and digest is None:
                object.__setattr__(self, f"answer_{side}_hash", text_hash(text))
            elif text is not None and digest != text_hash(text):
                raise JudgmentFormatError(f"answer_{side}_hash does not match answer_{side}")

    @property
    def executed(self) -> bool:
        """Whether the judge was shown the answers' code runs."""
        return self.runs is not None

    @property
    def rater(self) -> str:
        """Who cast the vote: the judge, or ``<judge>+exec`` for the execution-aware judge."""
        return rater_name(self.judge, self.executed)

    @property
    def detail(self) -> JudgeDetail:
        return JudgeDetail(games=self.games, points=self.points, answer_a_hash=self.answer_a_hash,
                           answer_b_hash=self.answer_b_hash, runs=self.runs)

    @property
    def battle_id(self) -> str | None:
        """The id of the battle this judgment casts; None when the record does not say which answers."""
        if self.answer_a_hash is None or self.answer_b_hash is None:
            return None
        return judge_battle_id(self.rater, self.model_a, self.model_b, self.question_id, self.answer_a_hash,
                               self.answer_b_hash)

    def to_record(self) -> dict[str, Any]:
        out = {"question_id": self.question_id, "model_a": self.model_a, "model_b": self.model_b,
               "judge": self.judge, "games": [g.to_dict() for g in self.games], "points": self.points,
               "winner": self.winner, "error": self.error, "category": self.category,
               "language": self.language, "tstamp": self.tstamp, "question": self.question,
               "answer_a": self.answer_a, "answer_b": self.answer_b, "answer_a_hash": self.answer_a_hash,
               "answer_b_hash": self.answer_b_hash}
        if self.runs is not None:
            out["runs"] = _runs_to_dict(self.runs)
        return out

    @staticmethod
    def is_record(r: dict[str, Any]) -> bool:
        """A line written by ``codearena duel``/``judge``: the combined verdict, and games that say whether
        they were swapped (Arena-Hard's model_judgment rows have neither)."""
        games = r.get("games")
        return (all(k in r for k in _RECORD_KEYS) and isinstance(games, list) and bool(games)
                and all(isinstance(g, dict) and "swapped" in g for g in games))

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> JudgmentRecord:
        qid, judge = r.get("question_id"), r.get("judge")
        if qid is None or not isinstance(judge, str) or not judge:
            raise JudgmentFormatError("judgment record without question_id or judge")
        for key in ("model_a", "model_b"):
            if not isinstance(r.get(key), str) or not r[key]:
                raise JudgmentFormatError(f"judgment record without {key}")
        detail = JudgeDetail.from_dict(r)
        try:
            tstamp = float(r.get("tstamp"))
        except (TypeError, ValueError):
            tstamp = math.nan
        return cls(question_id=str(qid), model_a=r["model_a"], model_b=r["model_b"], judge=judge,
                   games=detail.games, points=detail.points, winner=r.get("winner"),
                   error=_opt_str(r.get("error"), "error"), category=_opt_str(r.get("category"), "category"),
                   language=_opt_str(r.get("language"), "language"), tstamp=tstamp,
                   question=_opt_str(r.get("question"), "question"),
                   answer_a=_opt_str(r.get("answer_a"), "answer_a"), answer_b=_opt_str(r.get("answer_b"), "answer_b"),
                   answer_a_hash=detail.answer_a_hash or _opt_str(r.get("answer_a_hash"), "answer_a_hash"),
                   answer_b_hash=detail.answer_b_hash or _opt_str(r.get("answer_b_hash"), "answer_b_hash"),
                   runs=detail.runs)

    def to_battle(self, *, source: str | None = None, fallback_id: str | None = None,
                  created_at: str | None = None) -> Battle:
        """The one vote this judgment casts. Anonymous: the judge never sees model names. A judgment
        without a verdict is no vote (``ValueError``): an error is not a tie. The runs the judge saw are
        also the battle's runs (each side's, turn 1), as a voter's Run presses are, so exports carry them."""
        if self.error is not None or self.winner is None:
            raise JudgmentFormatError(f"question {self.question_id}: judgment has no verdict "
                                      f"({self.error or 'no winner'})")
        bid = self.battle_id or fallback_id
        if bid is None:
            raise JudgmentFormatError(f"question {self.question_id}: the record does not say which answers "
                                      "were judged (no answer hashes)")
        extra = {"created_at": created_at} if created_at is not None else {}
        return Battle(
            model_a=self.model_a, model_b=self.model_b, winner=self.winner, source=source or f"judge:{self.rater}",
            mode="anonymous", prompt_id=self.question_id, prompt=self.question, category=self.category,
            language=self.language, answer_a=self.answer_a, answer_b=self.answer_b,
            judge_detail=self.detail.to_dict(), runs=self.battle_runs(), id=bid, **extra,
        )

    def battle_runs(self) -> tuple[BattleRun, ...]:
        if self.runs is None:
            return ()
        return tuple(BattleRun(side=side, turn=1, run=run) for side, run in zip(RUN_KEYS, self.runs, strict=True))

    @classmethod
    def from_battle(cls, battle: Battle) -> JudgmentRecord:
        """A stored judge battle back as its judgment (a resumed duel reports it without judging again)."""
        detail = JudgeDetail.from_stored(battle.judge_detail) or JudgeDetail(games=())
        judge = battle.source.split(":", 1)[1]
        if detail.runs is not None and judge.endswith(EXEC_SUFFIX):
            judge = judge[:-len(EXEC_SUFFIX)]  # the model's name; the runs make it the +exec rater again
        return cls(question_id=str(battle.prompt_id), model_a=battle.model_a, model_b=battle.model_b,
                   judge=judge, games=detail.games, points=detail.points,
                   winner=battle.winner if battle.winner in OUTCOMES else None, category=battle.category,
                   language=battle.language, question=battle.prompt, answer_a=battle.answer_a,
                   answer_b=battle.answer_b, answer_a_hash=detail.answer_a_hash,
                   answer_b_hash=detail.answer_b_hash, runs=detail.runs)
