"""The judge's verdict parser and game combination: pure functions, checked against CodeArena's own rules
(Qwen2.5-Coder qwencoder-eval/instruct/CodeArena: judge_config.yaml regex, judge_models.py get_score and
loose_score)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from serving.judge import (
    LABELS,
    VERDICT_GBNF,
    Game,
    Judgment,
    build_messages,
    combine,
    game_points,
    normalize_label,
    parse_verdict,
    summarize,
    to_battle,
)
from votes.runs import CodeRun, RunLimits


@pytest.mark.parametrize(
    ("reply", "label", "status"),
    [
        ("A is correct, B crashes.\n\nMy final verdict is: [[A>>B]]", "A>>B", "ok"),
        ("Both work. My final verdict is tie: [[A=B]]", "A=B", "ok"),
        ("[[B>A]]", "B>A", "ok"),
        ("B handles the empty list. [[B>>A]]", "B>>A", "ok"),
        # The mirrored spellings CodeArena's scorer accepts.
        ("[[A<B]]", "B>A", "ok"),
        ("[[A<<B]]", "B>>A", "ok"),
        ("[[B<A]]", "A>B", "ok"),
        ("[[B<<A]]", "A>>B", "ok"),
        ("[[B=A]]", "A=B", "ok"),
        # Repeating one verdict is still one verdict.
        ("Verdict: [[A>B]]. Again, [[A>B]].", "A>B", "ok"),
        # Two spellings of one verdict: one verdict (CodeArena would call this ambiguous).
        ("[[A>B]] i.e. [[B<A]]", "A>B", "ok"),
        # Different verdicts: CodeArena gives up on these.
        ("First I thought [[A>B]] but actually [[B>A]]", None, "conflict"),
        # No label at all: worth a follow-up.
        ("Assistant A is better because it checks n < 2.", None, "missing"),
        ("A>B", None, "missing"),  # no brackets
        ("[A>B]", None, "missing"),  # single brackets
        ("[[ A>B ]]", None, "missing"),  # CodeArena's regex allows no spaces
        ("[[]]", None, "missing"),
        # Right letters, no verdict: treated as missing rather than CodeArena's silent 0 points.
        ("[[A>>>B]]", None, "missing"),
        ("[[AB]]", None, "missing"),
        ("", None, "missing"),
    ],
)
def test_parse_verdict(reply: str, label: str | None, status: str) -> None:
    verdict = parse_verdict(reply)
    assert (verdict.label, verdict.status) == (label, status)


def test_parse_verdict_keeps_what_it_found() -> None:
    assert parse_verdict("[[A>B]] then [[B>A]]").found == ("A>B", "B>A")


def test_normalize_label_rejects_unknown() -> None:
    assert [normalize_label(x) for x in LABELS] == list(LABELS)
    assert normalize_label("A>>>B") is None


@pytest.mark.parametrize(
    ("game1", "game2", "points", "winner"),
    [
        # game 1 shows model_a as A; game 2 shows model_a as B.
        ("A>>B", "B>>A", 4, "model_a"),  # consistent, strong
        ("A>B", "B>A", 2, "model_a"),  # consistent, weak
        ("A>>B", "A>B", 1, "model_a"),  # strong for model_a, weak the other way: net win
        ("A>B", "A>B", 0, "tie"),  # position bias: each game prefers position A -> tie
        ("A>>B", "A>>B", 0, "tie"),
        ("A=B", "A=B", 0, "tie"),
        ("A=B", "B>A", 1, "model_a"),  # one game undecided, the other for model_a
        ("B>A", "A>B", -2, "model_b"),
        ("B>>A", "A>>B", -4, "model_b"),
        ("A=B", "A>B", -1, "model_b"),
    ],
)
def test_combine(game1: str, game2: str, points: int, winner: str) -> None:
    assert combine([game1, game2]) == (points, winner)


def _codearena_loose_score(scores: list[str]) -> int:
    """CodeArena's loose_score, as its judge_models.py writes it: points for the evaluated model, which
    its game 0 shows in position B (the baseline is A) and its game 1 in position A."""
    win = 0
    for i, s in enumerate(scores):
        if i % 2 == 0:
            win += {"A>>B": -2, "B<<A": -2, "A>B": -1, "B<A": -1, "A<<B": 2, "B>>A": 2, "A<B": 1, "B>A": 1}.get(s, 0)
        else:
            win += {"A<<B": -2, "B>>A": -2, "A<B": -1, "B>A": -1, "A>>B": 2, "B<<A": 2, "A>B": 1, "B<A": 1}.get(s, 0)
    return win


@pytest.mark.parametrize(("game1", "game2"), list(itertools.product(LABELS, repeat=2)))
def test_combine_matches_codearena(game1: str, game2: str) -> None:
    # With model_a as CodeArena's baseline (position A in game 0), our model_a's points are the negative of
    # CodeArena's score for the evaluated model, and win/tie/loss follow the same sign.
    points, winner = combine([game1, game2])
    theirs = _codearena_loose_score([game1, game2])
    assert points == -theirs
    assert winner == ("model_b" if theirs > 0 else "model_a" if theirs < 0 else "tie")


def test_game_points_swap() -> None:
    assert [game_points(label, swapped=False) for label in LABELS] == [2, 1, 0, -1, -2]
    assert [game_points(label, swapped=True) for label in LABELS] == [-2, -1, 0, 1, 2]


def test_judge_prompt_places_answers_and_cuts_long_ones() -> None:
    from serving.judge import JudgeSettings

    settings = JudgeSettings(max_answer_chars=50)
    messages = build_messages("Write is_prime", "def is_prime(n): ...", "x" * 80, settings)
    assert messages[0]["role"] == "system" and "[[A>>B]]" in messages[0]["content"]
    user = messages[1]["content"]
    assert user.index("Write is_prime") < user.index("def is_prime") < user.index("xxxxx")
    assert "30 more characters not shown" in user
    assert "x" * 51 not in user


def test_verdict_grammar_lists_exactly_the_five_labels() -> None:
    for label in LABELS:
        assert f'"{label}"' in VERDICT_GBNF
    assert VERDICT_GBNF.count("|") == len(LABELS) - 1


def _judgment(winner: str | None, error: str | None = None) -> Judgment:
    games = [Game(swapped=False, user_prompt="p", replies=["[[A>B]]"], label="A>B", status="ok"),
             Game(swapped=True, user_prompt="p", replies=["[[B>A]]"], label="B>A", status="ok")]
    return Judgment(question_id="q1", model_a="m1", model_b="m2", judge="j", games=games,
                    points=2 if winner else None, winner=winner, error=error)  # type: ignore[arg-type]


def test_summarize_counts_errors_apart_from_ties() -> None:
    score = summarize([_judgment("model_a"), _judgment("tie"), _judgment("model_b"), _judgment("model_a"),
                       _judgment(None, "game 1: no verdict label after the follow-up")])
    assert (score.n, score.wins, score.ties, score.losses, score.errors) == (4, 2, 1, 1, 1)
    assert score.score == pytest.approx((2 * 2 + 1) / 8)


def test_to_battle_is_anonymous_judge_vote_with_raw_games() -> None:
    battle = to_battle(_judgment("model_a"), prompt="Write is_prime", answer_a="a", answer_b="b")
    assert battle.source == "judge:j" and battle.mode == "anonymous" and battle.winner == "model_a"
    assert battle.judge_detail["games"][0]["judgment"] == "[[A>B]]"
    # Same judge, same answers: same battle id (a re-run adds nothing); other answers: another battle.
    assert battle.id == to_battle(_judgment("model_a"), prompt="Write is_prime", answer_a="a", answer_b="b").id
    assert battle.id != to_battle(_judgment("model_a"), prompt="Write is_prime", answer_a="a2", answer_b="b").id
    with pytest.raises(ValueError, match="no verdict"):
        to_battle(_judgment(None, "game 2: conflicting"), prompt="p", answer_a="a", answer_b="b")


# -- the execution-aware judge's prompt and record (the runs are built here; tests/test_duel_execute.py
# -- runs real code in the real sandbox) ------------------------------------------------------------------

def test_the_plain_prompt_is_byte_for_byte_codearenas() -> None:
    # Pinned on the prompt as it was before execution-aware judging existed: stored user prompts (and the
    # ids of judgments imported from records without answer hashes) depend on it.
    import hashlib
    import json

    from serving.judge import JudgeSettings

    messages = build_messages("Write is_prime", "def is_prime(n): ...", "x" * 5000, JudgeSettings())
    assert hashlib.sha256(json.dumps(messages).encode()).hexdigest() == (
        "562504ded881f8c79ba4a5b67bc4ebcbae03f0203c1b461a7b94428b6661e3ed")


def _run(status: str, **kw: object) -> CodeRun:
    return CodeRun(language=kw.pop("language", "python"), status=status, **kw)  # type: ignore[arg-type]


def test_exec_prompt_puts_each_run_after_its_answer_and_cuts_long_output() -> None:
    from serving.judge import EXEC_SYSTEM_PROMPT, SYSTEM_PROMPT, JudgeSettings
    from serving.judge_exec import EXECUTION_GUIDANCE

    ok = _run("ok", exit_code=0, stdout="out-A\n" + "y" * 5000 + "\nlast-line-A", blocks=(0, 2), wall_s=0.04,
              stderr="warning: W1\n")
    crash = _run("runtime_error", exit_code=1, stderr="Traceback ...\nZeroDivisionError: division by zero\n")
    system, user = (m["content"] for m in build_messages("Q", "answer one", "answer two",
                                                          JudgeSettings(max_run_chars=200), (ok, crash)))
    assert system == EXEC_SYSTEM_PROMPT and EXECUTION_GUIDANCE in system and system != SYSTEM_PROMPT
    assert system.endswith(SYSTEM_PROMPT[SYSTEM_PROMPT.index("Explain your reasoning"):])
    assert (user.index("answer one") < user.index("out-A") < user.index("last-line-A") < user.index("answer two")
            < user.index("ZeroDivisionError"))
    assert "code blocks 1 and 3 of the answer" in user and "exited with status 0" in user
    assert "failed at run time; exit status 1" in user
    assert "characters of output cut here, not shown to the judge" in user and "y" * 201 not in user
    assert "warning: W1" in user  # a short stderr is shown whole; the long stdout gets the rest of the budget
    kept = user[user.index("out-A"):user.index("Standard error")]
    assert 150 < kept.count("y") <= 200


@pytest.mark.parametrize(("run", "words"), [
    (_run("no_code", language=None, stderr="nothing to run: the answer has no fenced code block"),
     "No code was run: the answer has no fenced code block"),
    (_run("unsupported", language="sql", stderr="no runner for 'sql'; runners: python"),
     "No code was run: there is no runner for sql here"),
    (_run("unsupported", language="html", stderr="an HTML page"), "No code was run: the answer is an HTML page"),
    (_run("unavailable", stderr="rustc missing", language="rust"), "No code was run: the rust runner is not"),
    (_run("timeout", signal="SIGKILL", limits=RunLimits(wall_s=2.0)), "stopped at the wall-clock limit of 2 s"),
    (_run("memory_limit", limits=RunLimits(memory_mb=128)), "ran out of memory (limit 128 MB per process)"),
    (_run("runtime_error", signal="SIGSEGV"), "failed at run time; killed by SIGSEGV"),
    (_run("compile_error", language="c", exit_code=1, stderr="main.c:1: error"), "did not compile"),
    (_run("ok", exit_code=0, truncated=True), "output passed the sandbox's limit and was cut"),
])
def test_describe_run_says_what_came_of_it(run: CodeRun, words: str) -> None:
    from serving.judge_exec import describe_run

    assert words in describe_run(run)


def test_judge_pair_swaps_the_runs_with_the_answers() -> None:
    import asyncio

    from serving.judge import judge_pair

    seen: list[str] = []

    async def ask(messages, params, constrained):  # noqa: ANN001, ANN202 - the Ask protocol
        seen.append(messages[1]["content"])
        return "[[A>B]]" if len(seen) == 1 else "[[B>A]]"

    runs = (_run("ok", exit_code=0, stdout="FROM-A"), _run("ok", exit_code=0, stdout="FROM-B"))
    j = asyncio.run(judge_pair(ask, question_id="q", question="Q", model_a="m1", answer_a="ans-1", model_b="m2",
                               answer_b="ans-2", judge="j", runs=runs))
    assert seen[0].index("ans-1") < seen[0].index("FROM-A") < seen[0].index("ans-2") < seen[0].index("FROM-B")
    assert seen[1].index("ans-2") < seen[1].index("FROM-B") < seen[1].index("ans-1") < seen[1].index("FROM-A")
    assert j.winner == "model_a" and j.runs == runs and j.rater == "j+exec"


def test_a_judgment_with_runs_round_trips_and_is_another_rater() -> None:
    import json

    from votes.judgment import JudgeDetail, JudgmentFormatError, JudgmentRecord

    runs = (_run("ok", exit_code=0, stdout="héllo"), _run("no_code", language=None))
    plain = replace(_judgment("model_a"), question="Q", answer_a="a", answer_b="b")
    executed = replace(plain, runs=runs)
    assert (plain.rater, executed.rater) == ("j", "j+exec")
    assert plain.battle_id != executed.battle_id and None not in (plain.battle_id, executed.battle_id)
    assert "runs" not in plain.to_record() and "runs" not in plain.detail.to_dict()

    record = json.loads(json.dumps(executed.to_record()))
    assert record["judge"] == "j" and record["runs"]["model_a"]["stdout"] == "héllo"
    back = JudgmentRecord.from_record(record)
    assert back.runs == runs and back.battle_id == executed.battle_id

    battle = executed.to_battle()
    assert battle.source == "judge:j+exec" and battle.id == executed.battle_id
    assert [r.side for r in battle.runs] == ["model_a", "model_b"] and battle.runs[0].run == runs[0]
    again = JudgmentRecord.from_battle(battle)
    assert (again.judge, again.runs, again.rater) == ("j", runs, "j+exec")
    assert plain.to_battle().source == "judge:j" and plain.to_battle().runs == ()

    for bad in ({"model_a": runs[0].to_dict()}, {"model_a": {"status": "exploded", "language": None},
                                                 "model_b": runs[1].to_dict()}, ["x"]):
        with pytest.raises(JudgmentFormatError, match="runs"):
            JudgmentRecord.from_record({**record, "runs": bad})
    assert JudgeDetail.from_stored({**executed.detail.to_dict(), "runs": ["x"]}) is None
