"""Model duels: answer a prompt set with each model (only what is missing), have a judge compare every
pair with CodeArena's two swapped games, and store each verdict as a ``judge:<name>`` battle.

Answers are cached twice over: in ``{answers_dir}/{model}.jsonl`` (FastChat ``model_answer`` format, which
``generate`` resumes) and in the store's answers table. Judge battles have deterministic ids (judge, models,
question, answer hashes), so a duel that is run again, or resumed after a crash, judges only what is new.

With ``execute`` (``--execute``), the answers' code runs in the sandbox first (:mod:`serving.answer_runs`)
and the judge sees the runs: that judge is the rater ``judge:<name>+exec``, with battles of its own.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from serving.answer_runs import AnswerRunner, ExecuteSettings, execution_unavailable
from serving.backends.base import Backend, ModelSpec
from serving.judge import (
    JudgeSettings,
    Judgment,
    PairTask,
    Score,
    backend_ask,
    battle_id,
    judge_many,
    judgment_from_battle,
    summarize,
    to_battle,
)
from serving.prompts import Prompt
from votes.judgment import rater_name
from votes.record import Battle
from votes.store import AddResult


class DuelStore(Protocol):
    """What a duel needs of the vote store (votes.store.VoteStore is one): cached answers, stored verdicts."""

    def answers(self, model: str | None = None) -> list[dict[str, Any]]: ...
    def add_answers(self, rows: Iterable[dict[str, Any]], *, replace: bool = False) -> AddResult: ...
    def get(self, battle_id: str) -> Battle: ...
    def add_many(self, battles: Iterable[Battle]) -> AddResult: ...


class DuelError(ValueError):
    """A duel that cannot run as asked (same model twice, nothing to compare, ...)."""


def duel_pairs(models: Sequence[str], baseline: str | None = None) -> list[tuple[str, str]]:
    """Who meets whom: every model against the baseline (CodeArena's setting), else every pair."""
    if len(set(models)) != len(models):
        raise DuelError(f"a model is named twice: {', '.join(models)}")
    if baseline is not None:
        if not models:
            raise DuelError("--baseline needs at least one model to compare with it")
        if baseline in models:
            raise DuelError(f"{baseline!r} is the baseline; do not list it among the models too")
        return [(m, baseline) for m in models]
    if len(models) < 2:
        raise DuelError("a duel needs two models (or --baseline B and one or more models)")
    return list(itertools.combinations(models, 2))


def answers_file(answers_dir: str | os.PathLike[str], model: str) -> Path:
    # Arena-Hard's layout: model_answer/{model}.jsonl. Model names may hold '/' (org/model): flatten it.
    return Path(answers_dir) / f"{model.replace('/', '__')}.jsonl"


def cached_answers(model: str, answers_dir: str | os.PathLike[str], store: DuelStore | None) -> dict[str, str]:
    """question_id -> first-turn answer, from the answer file and the store (the file wins: it is what
    ``generate`` writes and resumes)."""
    from serving.answers import read_answers

    out: dict[str, str] = {}
    if store is not None:
        out.update({str(r["question_id"]): r["answer"] for r in store.answers(model) if r.get("answer")})
    path = answers_file(answers_dir, model)
    if path.exists():
        out.update({qid: rec.turns[0] for qid, rec in read_answers(path).items()
                    if rec.model_id in ("", model) and rec.turns})
    return out


@dataclass
class AnswerReport:
    model: str
    cached: int
    generated: int
    failures: list[tuple[str, str]] = field(default_factory=list)


async def ensure_answers(backend: Backend, prompts: Sequence[Prompt], *, answers_dir: str | os.PathLike[str],
                         store: DuelStore | None, max_tokens: int | None = None, progress: bool = True,
                         cached: dict[str, str] | None = None) -> tuple[dict[str, str], AnswerReport]:
    """Every prompt's answer from ``backend``'s model, generating only those not cached yet (``cached``:
    what :func:`cached_answers` found, when the caller read it already)."""
    from serving.generate import agenerate

    model = backend.name
    have = dict(cached if cached is not None else cached_answers(model, answers_dir, store))
    missing = [p for p in prompts if p.id not in have]
    report = AnswerReport(model=model, cached=len(prompts) - len(missing), generated=0)
    if missing:
        params = backend.spec.params if max_tokens is None else replace(backend.spec.params, max_tokens=max_tokens)
        Path(answers_dir).mkdir(parents=True, exist_ok=True)
        gen = await agenerate(backend, missing, answers_file(answers_dir, model), params=params, store=store,
                              progress=progress, source="duel")
        report.generated, report.failures = gen.generated, list(gen.failures)
        have.update(gen.answers)
    return {p.id: have[p.id] for p in prompts if p.id in have}, report


def pair_tasks(prompts: Sequence[Prompt], model_a: str, answers_a: dict[str, str], model_b: str,
               answers_b: dict[str, str]) -> list[PairTask]:
    """One task per prompt both models answered."""
    return [PairTask(question_id=p.id, question=p.text, model_a=model_a, answer_a=answers_a[p.id], model_b=model_b,
                     answer_b=answers_b[p.id], category=p.category, language=p.language)
            for p in prompts if p.id in answers_a and p.id in answers_b]


async def judge_tasks(judge_backend: Backend, tasks: Sequence[PairTask], *, store: DuelStore | None,
                      settings: JudgeSettings, progress: bool = True,
                      on_judgment: Callable[[Judgment], None] | None = None,
                      runner: AnswerRunner | None = None) -> tuple[list[Judgment], int]:
    """Judge every task not already stored as a battle by this judge; store each verdict as it comes.
    With ``runner``, the answers of the tasks still to judge run first and the judge sees the runs (the
    rater ``<judge>+exec``).

    Returns (judgments in task order, how many were reused from the store). A judgment without a verdict
    is returned (with its error) but never stored: an error is not a tie.
    """
    from tqdm.auto import tqdm

    judge = judge_backend.name
    rater = rater_name(judge, runner is not None)
    reused: dict[int, Judgment] = {}
    todo: list[tuple[int, PairTask]] = []
    for i, t in enumerate(tasks):
        bid = battle_id(rater, t.model_a, t.model_b, t.question_id, t.answer_a, t.answer_b)
        stored = _stored_battle(store, bid) if store is not None else None
        if stored is not None:
            reused[i] = judgment_from_battle(stored)
        else:
            todo.append((i, t))
    if runner is not None and todo:
        ran = await runner.attach([t for _, t in todo], progress=progress)
        todo = [(i, t) for (i, _), t in zip(todo, ran, strict=True)]
    by_key = {(t.question_id, t.model_a, t.model_b): t for _, t in todo}
    bar = tqdm(total=len(todo), desc=f"judge {rater}", unit="pair", disable=not progress or not todo)
    errors = 0

    def done(j: Judgment) -> None:
        nonlocal errors
        task = by_key[(j.question_id, j.model_a, j.model_b)]
        if j.error is None:
            if store is not None:
                store.add_many([to_battle(j, prompt=task.question, answer_a=task.answer_a, answer_b=task.answer_b)])
        else:
            errors += 1
            bar.set_postfix_str(f"{errors} without verdict")
        if on_judgment is not None:
            on_judgment(j)
        bar.update(1)

    try:
        fresh = await judge_many(backend_ask(judge_backend), [t for _, t in todo], judge=judge, settings=settings,
                                 concurrency=judge_backend.spec.concurrency, on_done=done)
    finally:
        bar.close()
    results: dict[int, Judgment] = dict(reused)
    results.update({i: j for (i, _), j in zip(todo, fresh, strict=True)})
    return [results[i] for i in range(len(tasks))], len(reused)


def _stored_battle(store: DuelStore, bid: str) -> Battle | None:
    try:
        return store.get(bid)
    except KeyError:
        return None


def judge_settings(spec: ModelSpec, max_tokens: int | None = None) -> JudgeSettings:
    """Judging settings for a judge model: deterministic (temperature 0), its own max_tokens unless given."""
    return JudgeSettings(max_tokens=max_tokens or spec.params.max_tokens, seed=spec.params.seed)


def write_judgments(path: str | os.PathLike[str], judgments: Sequence[Judgment]) -> Path:
    """Arena-Hard-like judgment records, one per line; written to a temp file and renamed, so a failed run
    never leaves a half-written file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DuelError(f"output folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for j in judgments:
                fh.write(json.dumps(j.to_record(), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class PairResult:
    model_a: str
    model_b: str
    overall: Score
    by_category: dict[str, Score]


def pair_result(model_a: str, model_b: str, judgments: Sequence[Judgment]) -> PairResult:
    groups: dict[str, list[Judgment]] = defaultdict(list)
    for j in judgments:
        groups[j.category or "(none)"].append(j)
    return PairResult(model_a, model_b, summarize(judgments),
                      {c: summarize(js) for c, js in sorted(groups.items())})


@dataclass
class DuelPlan:
    """A duel checked and ready: who meets whom, the backends (made once, not started), what is cached."""

    pairs: list[tuple[str, str]]
    names: list[str]  # the competitors, baseline included, in order
    judge: str
    backends: dict[str, Backend]  # competitors and the judge
    cached: dict[str, dict[str, str]]  # competitor -> question_id -> cached first-turn answer
    runner: AnswerRunner | None = None  # set: the answers' code runs first, the judge sees the runs

    @property
    def rater(self) -> str:
        """The judge as its battles name it: ``<judge>`` or ``<judge>+exec``."""
        return rater_name(self.judge, self.runner is not None)

    def unusable(self, prompts: Sequence[Prompt]) -> list[tuple[str, str]]:
        """(model, reason) for each model the duel needs but cannot use now (``Backend.availability``), so a
        missing API key stops the duel before anything runs instead of ending it with nothing judged. The
        judge is always needed; a competitor only when some of its answers are not cached yet (a re-run over
        cached answers needs no key for it)."""
        out: list[tuple[str, str]] = []
        for name in dict.fromkeys([*self.names, self.judge]):
            if name != self.judge and all(p.id in self.cached[name] for p in prompts):
                continue
            ok, reason = self.backends[name].availability()
            if not ok:
                out.append((name, reason or "unavailable"))
        return out

    async def aclose(self) -> None:
        for backend in self.backends.values():
            await backend.aclose()


def plan_duel(specs: dict[str, ModelSpec], models: Sequence[str], prompts: Sequence[Prompt], *, judge: str,
              answers_dir: str | os.PathLike[str], store: DuelStore | None,
              baseline: str | None = None, execute: ExecuteSettings | None = None) -> DuelPlan:
    """Check a duel before anything runs: the pairs, the prompts, that every model it needs is usable
    (:class:`DuelError` naming each one that is not, and why) and, with ``execute``, that the sandbox can
    run the answers' code. Answers are read once, here."""
    from serving.backends import make_backend

    pairs = duel_pairs(list(models), baseline)
    if not prompts:
        raise DuelError("no prompts to duel on (check the filters)")
    runner = _runner(execute)
    names = list(dict.fromkeys([*models, *([baseline] if baseline else [])]))
    backends = {n: make_backend(specs[n]) for n in dict.fromkeys([*names, judge])}
    plan = DuelPlan(pairs=pairs, names=names, judge=judge, backends=backends,
                    cached={n: cached_answers(n, answers_dir, store) for n in names}, runner=runner)
    bad = plan.unusable(prompts)
    if bad:
        raise DuelError("; ".join(f"{'judge' if name == judge else 'model'} {name!r} is not usable: {reason}"
                                  for name, reason in bad))
    return plan


def _runner(execute: ExecuteSettings | None) -> AnswerRunner | None:
    if execute is None:
        return None
    why = execution_unavailable()
    if why is not None:
        raise DuelError(f"--execute: {why}")
    return AnswerRunner(execute)


async def run_duel(plan: DuelPlan, prompts: Sequence[Prompt], *, store: DuelStore | None,
                   answers_dir: str | os.PathLike[str], max_tokens: int | None = None,
                   judge_max_tokens: int | None = None,
                   progress: bool = True) -> tuple[list[PairResult], list[Judgment], list[AnswerReport]]:
    """The whole duel of a :func:`plan_duel`; see the module docstring. The backends are closed at the end."""
    try:
        answers: dict[str, dict[str, str]] = {}
        reports: list[AnswerReport] = []
        for name in plan.names:
            answers[name], report = await ensure_answers(plan.backends[name], prompts, answers_dir=answers_dir,
                                                         store=store, max_tokens=max_tokens, progress=progress,
                                                         cached=plan.cached[name])
            reports.append(report)
        judge_backend = plan.backends[plan.judge]
        settings = judge_settings(judge_backend.spec, judge_max_tokens)
        results: list[PairResult] = []
        every: list[Judgment] = []
        for a, b in plan.pairs:
            tasks = pair_tasks(prompts, a, answers[a], b, answers[b])
            judgments, _ = await judge_tasks(judge_backend, tasks, store=store, settings=settings,
                                             progress=progress, runner=plan.runner)
            results.append(pair_result(a, b, judgments))
            every.extend(judgments)
        return results, every, reports
    finally:
        await plan.aclose()


def read_model_answers(path: str | os.PathLike[str]) -> tuple[str, dict[str, str]]:
    """(model, question_id -> first-turn answer) of a model_answer file that holds one model's answers."""
    from serving.answers import iter_answers

    models: set[str] = set()
    answers: dict[str, str] = {}
    for rec in iter_answers(path):
        models.add(rec.model_id)
        answers[rec.question_id] = rec.turns[0]
    if not answers:
        raise DuelError(f"{path}: no answers in the file")
    if len(models) != 1 or "" in models:
        raise DuelError(f"{path}: expected the answers of one model (one model_id), found "
                        f"{sorted(m or '(none)' for m in models)}")
    return models.pop(), answers


@dataclass(frozen=True)
class FileJudging:
    """Two answer files, checked and paired with the prompts, ready for :func:`judge_files`."""

    model_a: str
    model_b: str
    tasks: list[PairTask]
    judge: Backend
    runner: AnswerRunner | None = None  # set: the answers' code runs first, the judge sees the runs

    @property
    def rater(self) -> str:
        return rater_name(self.judge.name, self.runner is not None)


def plan_file_judging(judge_spec: ModelSpec, answers_a: str | os.PathLike[str], answers_b: str | os.PathLike[str],
                      prompts: Sequence[Prompt], *, limit: int | None = None,
                      execute: ExecuteSettings | None = None) -> FileJudging:
    """What `codearena judge` judges: every selected prompt both files answer; the judge checked usable
    (and, with ``execute``, the sandbox) before anything is written (a judge without its key would turn
    every task into an error)."""
    from serving.backends import make_backend

    model_a, by_a = read_model_answers(answers_a)
    model_b, by_b = read_model_answers(answers_b)
    if model_a == model_b:
        raise DuelError(f"{answers_a} and {answers_b} are both answers of {model_a!r}")
    tasks = pair_tasks(prompts, model_a, by_a, model_b, by_b)[:limit]
    if not tasks:
        raise DuelError(f"no question is answered in both {answers_a} and {answers_b} among the selected "
                        f"prompts ({len(prompts)}); are these answers to the prompts given?")
    runner = _runner(execute)
    backend = make_backend(judge_spec)
    ok, reason = backend.availability()
    if not ok:
        raise DuelError(f"judge {judge_spec.name!r} is not usable: {reason}")
    return FileJudging(model_a, model_b, tasks, backend, runner)


async def judge_files(plan: FileJudging, *, store: DuelStore | None, judge_max_tokens: int | None = None,
                      progress: bool = True) -> tuple[PairResult, list[Judgment]]:
    """Judge a :func:`plan_file_judging`; each verdict stored as it comes when ``store`` is given."""
    try:
        judgments, _ = await judge_tasks(plan.judge, plan.tasks, store=store,
                                         settings=judge_settings(plan.judge.spec, judge_max_tokens),
                                         progress=progress, runner=plan.runner)
    finally:
        await plan.judge.aclose()
    return pair_result(plan.model_a, plan.model_b, judgments), judgments
