"""The LLM judge, following CodeArena's protocol (Qwen2.5-Coder ``qwencoder-eval/instruct/CodeArena``).

A judge model compares two answers to one prompt in two games, the second with the answers' positions
swapped so that position bias cancels. Each game ends in a verdict label ``[[A>>B]]``, ``[[A>B]]``,
``[[A=B]]``, ``[[B>A]]`` or ``[[B>>A]]``, found with CodeArena's regex; a reply without one gets one
follow-up asking for it. The games combine as CodeArena's ``loose_score`` does: a strong verdict is worth
2 points, a weak one 1, summed over both games from model_a's side; a positive sum is a win, a negative sum
a loss, zero a tie (so games that disagree in direction with equal strength cancel into a tie).

With ``runs`` (``--execute``), the judge is execution-aware: each answer's code was run first, and the
prompt gets a block after each answer saying what came of it (:mod:`serving.judge_exec`); the system
prompt gains one paragraph on using it. Without runs the prompt is exactly CodeArena's, byte for byte.

Where we differ from CodeArena, on purpose: a game with no usable verdict after the follow-up is an
error (CodeArena scores it 0, which silently counts as half a tie); two spellings of one verdict
(``[[A>B]]`` and ``[[B<A]]``) are one verdict, not a conflict.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from serving.backends.base import Backend, BackendError, Message, SamplingParams
from serving.judge_exec import EXECUTION_GUIDANCE, describe_run
from votes.judgment import (
    LABELS,
    POINTS,
    SYNONYMS,
    GameRecord,
    JudgmentRecord,
    Outcome,
    VerdictStatus,
    combine,
    game_points,
    judge_battle_id,
    normalize_label,
)
from votes.record import Battle, text_hash
from votes.runs import CodeRun

# The judgment record (games, labels, points, the stored form) is owned by votes.judgment; these names stay
# importable from here for callers of the judge.
Game = GameRecord
Judgment = JudgmentRecord
__all__ = ["LABELS", "POINTS", "SYNONYMS", "Game", "Judgment", "combine", "game_points", "normalize_label"]

# CodeArena's judge_config.yaml regex_pattern: any run of A, B, <, >, = inside double brackets.
VERDICT_RE = re.compile(r"\[\[([AB<>=]+)\]\]")
# GBNF for a follow-up that can only be a verdict (llama.cpp grammar-constrained sampling).
VERDICT_GBNF = 'root ::= "[[" ("A>>B" | "A>B" | "A=B" | "B>A" | "B>>A") "]]"'

SYSTEM_PROMPT = """You are an impartial judge of answers to programming questions. You will see a user's \
question and the answers of two assistants, A and B. Decide which answer serves the user better.

Judge, in this order: is the code or explanation correct (would it run and do what was asked)? Does it \
answer the whole question? Is it clear and to the point? Do not let the order of the answers or their \
length alone sway you, and do not reward an answer for confidence.

Explain your reasoning in a few sentences, then end with exactly one final verdict label:
[[A>>B]] if A is much better
[[A>B]] if A is slightly better
[[A=B]] if they are about equally good
[[B>A]] if B is slightly better
[[B>>A]] if B is much better

Example of a final line: My final verdict is [[A=B]]"""

USER_TEMPLATE = """<|User Prompt|>
{question}

<|The Start of Assistant A's Answer|>
{answer_a}
<|The End of Assistant A's Answer|>

<|The Start of Assistant B's Answer|>
{answer_b}
<|The End of Assistant B's Answer|>"""

# The execution-aware judge's prompts: the plain ones plus the runs (see serving.judge_exec).
_VERDICT_PART = "\n\nExplain your reasoning"
EXEC_SYSTEM_PROMPT = SYSTEM_PROMPT.replace(_VERDICT_PART, f"\n\n{EXECUTION_GUIDANCE}{_VERDICT_PART}")

EXEC_USER_TEMPLATE = """<|User Prompt|>
{question}

<|The Start of Assistant A's Answer|>
{answer_a}
<|The End of Assistant A's Answer|>

<|The Start of Assistant A's Code Execution|>
{execution_a}
<|The End of Assistant A's Code Execution|>

<|The Start of Assistant B's Answer|>
{answer_b}
<|The End of Assistant B's Answer|>

<|The Start of Assistant B's Code Execution|>
{execution_b}
<|The End of Assistant B's Code Execution|>"""

FOLLOWUP = ("Finish your judgment: reply with only the final verdict label, one of "
            "[[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]].")



@dataclass(frozen=True)
class Verdict:
    """What a judge reply says. ``label`` is one of LABELS when ``status`` is "ok", else None."""

    label: str | None
    status: VerdictStatus
    found: tuple[str, ...] = ()  # every bracketed label the regex matched, as written


def parse_verdict(text: str) -> Verdict:
    """Find the verdict in a judge reply, as CodeArena's ``get_score`` does.

    No label -> "missing"; several different verdicts -> "conflict" (CodeArena gives up on those; we ask
    the one follow-up for both, see ``play_game``); one verdict, however often repeated -> "ok". Bracketed strings of
    the right letters that are no verdict (``[[A>>>B]]``) count as missing.
    """
    found = tuple(m for m in VERDICT_RE.findall(text) if m)
    labels = {normalize_label(m) for m in found} - {None}
    if not labels:
        return Verdict(None, "missing", found)
    if len(labels) > 1:
        return Verdict(None, "conflict", found)
    return Verdict(labels.pop(), "ok", found)


@dataclass(frozen=True)
class JudgeSettings:
    system_prompt: str = SYSTEM_PROMPT
    user_template: str = USER_TEMPLATE
    followup: str = FOLLOWUP
    max_tokens: int = 1024
    followup_max_tokens: int = 32
    temperature: float = 0.0
    seed: int | None = None
    # Long answers are cut (with a marker) so that both fit the judge's context window.
    max_answer_chars: int = 4000
    # Constrain the follow-up to the five labels where the backend can (llama.cpp grammars).
    constrain_followup: bool = True
    # The execution-aware judge's prompts, and how much of each run's stdout and stderr (together) it sees.
    exec_system_prompt: str = EXEC_SYSTEM_PROMPT
    exec_user_template: str = EXEC_USER_TEMPLATE
    max_run_chars: int = 1500


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... answer cut here: {len(text) - limit} more characters not shown to the judge]"


def build_messages(question: str, answer_a: str, answer_b: str, settings: JudgeSettings,
                   runs: tuple[CodeRun, CodeRun] | None = None) -> list[Message]:
    """The judge's messages for one game; ``runs`` (of the answers in positions A and B, in that order)
    make it the execution-aware prompt."""
    answers = {"question": question, "answer_a": truncate(answer_a, settings.max_answer_chars),
               "answer_b": truncate(answer_b, settings.max_answer_chars)}
    if runs is None:
        user = settings.user_template.format(**answers)
        return [{"role": "system", "content": settings.system_prompt}, {"role": "user", "content": user}]
    user = settings.exec_user_template.format(
        **answers, execution_a=describe_run(runs[0], max_chars=settings.max_run_chars),
        execution_b=describe_run(runs[1], max_chars=settings.max_run_chars))
    return [{"role": "system", "content": settings.exec_system_prompt}, {"role": "user", "content": user}]


# (messages, params, constrained) -> reply text. ``constrained``: the follow-up, where a backend that can
# restrict output to VERDICT_GBNF should.
Ask = Callable[[list[Message], SamplingParams, bool], Any]


def backend_ask(backend: Backend) -> Ask:
    """Ask a backend; the constrained follow-up is grammar-constrained where the backend supports it."""

    async def ask(messages: list[Message], params: SamplingParams, constrained: bool) -> str:
        if constrained and backend.supports_grammar:
            return (await backend.complete_with_grammar(messages, params, VERDICT_GBNF)).text
        return (await backend.complete(messages, params)).text

    return ask


async def play_game(ask: Ask, question: str, answer_a: str, answer_b: str, *, swapped: bool,
                    settings: JudgeSettings, runs: tuple[CodeRun, CodeRun] | None = None) -> GameRecord:
    """One game; ``answer_a``/``answer_b`` (and their ``runs``) are already in the positions the judge will
    see them."""
    messages = build_messages(question, answer_a, answer_b, settings, runs)
    user_prompt = messages[1]["content"]
    replies: list[str] = []
    followup = False
    start = time.perf_counter()
    params = SamplingParams(temperature=settings.temperature, max_tokens=settings.max_tokens, top_p=1.0,
                            seed=settings.seed)
    try:
        reply = await ask(messages, params, False)
        replies.append(reply)
        verdict = parse_verdict(reply)
        # CodeArena follows up only on a missing label and scores a conflict as nothing. Small judges often
        # echo the whole label list from the instructions, so a conflict gets the same one follow-up here,
        # and the follow-up alone then decides.
        if verdict.status in ("missing", "conflict"):
            followup = True
            messages = [*messages, {"role": "assistant", "content": reply},
                        {"role": "user", "content": settings.followup}]
            short = SamplingParams(temperature=settings.temperature, max_tokens=settings.followup_max_tokens,
                                   top_p=1.0, seed=settings.seed)
            replies.append(await ask(messages, short, settings.constrain_followup))
            verdict = parse_verdict(replies[-1])
    except BackendError as exc:
        return GameRecord(swapped=swapped, user_prompt=user_prompt, replies=tuple(replies), followup=followup,
                          error=f"judge call failed: {exc}", seconds=time.perf_counter() - start)
    error = None
    if verdict.status == "missing":
        error = "no verdict label after the follow-up"
    elif verdict.status == "conflict":
        error = f"conflicting verdict labels {list(verdict.found)}"
    return GameRecord(swapped=swapped, user_prompt=user_prompt, replies=tuple(replies), followup=followup,
                      label=verdict.label, status=verdict.status, error=error,
                      seconds=time.perf_counter() - start)


async def judge_pair(ask: Ask, *, question_id: str, question: str, model_a: str, answer_a: str, model_b: str,
                     answer_b: str, judge: str, settings: JudgeSettings | None = None,
                     category: str | None = None, language: str | None = None,
                     runs: tuple[CodeRun, CodeRun] | None = None) -> JudgmentRecord:
    """Two games with positions swapped, combined; a game without a verdict makes the judgment an error.
    ``runs``: model_a's and model_b's code runs, shown to the judge (they swap with the answers)."""
    settings = settings or JudgeSettings()
    swapped_runs = (runs[1], runs[0]) if runs is not None else None
    games = [
        await play_game(ask, question, answer_a, answer_b, swapped=False, settings=settings, runs=runs),
        await play_game(ask, question, answer_b, answer_a, swapped=True, settings=settings, runs=swapped_runs),
    ]
    errors = [f"game {i + 1}: {g.error}" for i, g in enumerate(games) if g.error]
    points: int | None = None
    winner: Outcome | None = None
    if not errors:
        points, winner = combine([g.label for g in games if g.label is not None])
    return JudgmentRecord(question_id=question_id, model_a=model_a, model_b=model_b, judge=judge, games=games,
                          points=points, winner=winner, error="; ".join(errors) or None, category=category,
                          language=language, question=question, answer_a=answer_a, answer_b=answer_b,
                          runs=runs)


@dataclass(frozen=True)
class PairTask:
    """One comparison to judge: a prompt and the two answers (and, for the execution-aware judge, the
    run of each answer's code: model_a's, model_b's)."""

    question_id: str
    question: str
    model_a: str
    answer_a: str
    model_b: str
    answer_b: str
    category: str | None = None
    language: str | None = None
    runs: tuple[CodeRun, CodeRun] | None = None


async def judge_many(ask: Ask, tasks: Sequence[PairTask], *, judge: str, settings: JudgeSettings | None = None,
                     concurrency: int = 1, on_done: Callable[[Judgment], None] | None = None) -> list[Judgment]:
    """Judge every task, at most ``concurrency`` at once; results in task order."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(task: PairTask) -> Judgment:
        async with gate:
            result = await judge_pair(ask, question_id=task.question_id, question=task.question,
                                      model_a=task.model_a, answer_a=task.answer_a, model_b=task.model_b,
                                      answer_b=task.answer_b, judge=judge, settings=settings,
                                      category=task.category, language=task.language, runs=task.runs)
        if on_done is not None:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(t) for t in tasks)))


@dataclass(frozen=True)
class Score:
    """CodeArena's summary of judgments from model_a's side: score = (2*wins + ties) / (2*N)."""

    n: int
    wins: int
    ties: int
    losses: int
    errors: int

    @property
    def score(self) -> float | None:
        return (2 * self.wins + self.ties) / (2 * self.n) if self.n else None


def summarize(judgments: Sequence[Judgment]) -> Score:
    ok = [j for j in judgments if j.error is None]
    return Score(n=len(ok), wins=sum(j.winner == "model_a" for j in ok), ties=sum(j.winner == "tie" for j in ok),
                 losses=sum(j.winner == "model_b" for j in ok), errors=len(judgments) - len(ok))


def battle_id(judge: str, model_a: str, model_b: str, question_id: str, answer_a: str, answer_b: str) -> str:
    """The id of the battle a judgment of these two answers casts (see votes.judgment.judge_battle_id)."""
    return judge_battle_id(judge, model_a, model_b, question_id, text_hash(answer_a), text_hash(answer_b))


def to_battle(judgment: JudgmentRecord, *, prompt: str, answer_a: str, answer_b: str) -> Battle:
    """The vote this judgment casts on these answers (votes.judgment.JudgmentRecord.to_battle)."""
    return replace(judgment, question=prompt, answer_a=answer_a, answer_b=answer_b, answer_a_hash=None,
                   answer_b_hash=None).to_battle()


def judgment_from_battle(battle: Battle) -> JudgmentRecord:
    """A stored judge battle back as its judgment (a resumed duel reports it without judging again)."""
    return JudgmentRecord.from_battle(battle)
