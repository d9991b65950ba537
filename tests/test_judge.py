"""The judge's verdict parser and game combination: pure functions, checked against CodeArena's own rules
(Qwen2.5-Coder qwencoder-eval/instruct/CodeArena: judge_config.yaml regex, judge_models.py get_score and
loose_score)."""

from __future__ import annotations

import itertools

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
