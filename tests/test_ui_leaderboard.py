"""The app's Leaderboard and Data tabs over a real SQLite store: the same vote selection and the same files
as the ``codearena`` command, judges ranked apart, per-category tables only where there are enough votes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from arena_ui.downloads import write_data_files
from arena_ui.leaderboard_cache import MIN_CATEGORY_BATTLES, compute_snapshot
from codearena.cli import main as codearena
from ratings.source import load_battles
from votes import Battle, VoteStore
from votes.files import read_battles_file


def _votes(n: int, a: str, b: str, winner: str, **kw) -> list[Battle]:
    return [Battle(model_a=a, model_b=b, winner=winner, prompt=f"p{i}", answer_a="x", answer_b="y", **kw)
            for i in range(n)]


@pytest.fixture
def store(db_path: Path) -> VoteStore:
    s = VoteStore(db_path)
    battles = [
        # 20 anonymous human votes in "algo" (enough for its own table), 19 in "sql" (not enough)
        *_votes(12, "m1", "m2", "model_a", category="algo"), *_votes(8, "m2", "m3", "model_a", category="algo"),
        *_votes(10, "m1", "m3", "model_a", category="sql"), *_votes(9, "m2", "m1", "tie", category="sql"),
        # not blind: an answer named its model; and named side-by-side votes
        *_votes(5, "m3", "m1", "model_a", category="algo", flags=["identity_leak:model_a"]),
        *_votes(4, "m3", "m2", "model_a", mode="named"),
        # two judges that disagree: fitted together they would cancel out
        *_votes(15, "m1", "m2", "model_a", source="judge:alpha"), *_votes(3, "m2", "m3", "tie", source="judge:alpha"),
        *_votes(30, "m2", "m1", "model_a", source="judge:beta"), *_votes(3, "m1", "m3", "tie", source="judge:beta"),
    ]
    s.add_many(battles)
    return s


def test_flagged_and_named_votes_stay_out_of_the_app_ranking_as_in_codearena_rate(store, db_path):
    snap = compute_snapshot(store)
    rated = load_battles(db_path)  # what `codearena rate --db FILE` ranks
    assert len(rated.battles) == 39
    assert snap.overall["battles"].sum() // 2 == 39
    assert "5 vote(s) flagged identity_leak left out" in snap.notes
    assert "4 named-mode vote(s) left out" in snap.notes
    assert snap.named["battles"].sum() // 2 == 4
    from arena_ui.app import _leaderboard_view  # the tab shows the notes under the table

    info = _leaderboard_view(snap, "all")[1]
    assert "5 vote(s) flagged identity_leak left out" in info
    assert f"categories with fewer than {MIN_CATEGORY_BATTLES} votes are not shown" in info


def test_categories_with_fewer_than_20_votes_get_no_table(store):
    snap = compute_snapshot(store)
    assert MIN_CATEGORY_BATTLES == 20
    assert set(snap.by_category) == {"algo"}  # sql has 19 votes; algo's 5 flagged votes do not count
    assert snap.by_category["algo"]["battles"].sum() // 2 == 20


def test_each_judge_source_is_ranked_on_its_own(store):
    hvj = compute_snapshot(store).human_vs_judge.set_index("model")
    assert {"rank_human", "rank_judge:alpha", "rank_judge:beta"} <= set(hvj.columns)
    assert hvj.loc["m1", "rank_judge:alpha"] < hvj.loc["m2", "rank_judge:alpha"]
    assert hvj.loc["m2", "rank_judge:beta"] < hvj.loc["m1", "rank_judge:beta"]
    assert hvj.loc["m1", "battles_judge:alpha"] == 15 and hvj.loc["m1", "battles_judge:beta"] == 33


def test_data_tab_files_are_the_codearena_export_files(store, db_path, tmp_path, capsys):
    snap = compute_snapshot(store)
    files = write_data_files(store, snap.overall, snap.meta, tmp_path)
    cli_csv, cli_jsonl, cli_board = tmp_path / "cli.csv", tmp_path / "cli.jsonl", tmp_path / "cli.json"
    for fmt, out in (("csv", cli_csv), ("jsonl", cli_jsonl)):
        assert codearena(["export", "votes", "--db", str(db_path), "--format", fmt, "--out", str(out)]) == 0
    assert codearena(["export", "ratings", "--db", str(db_path), "--out", str(cli_board)]) == 0
    # one implementation: the same rows and cells (no "null" for a conversation that was never stored)
    tab = pd.read_csv(files.votes_csv, keep_default_na=False)
    cli = pd.read_csv(cli_csv, keep_default_na=False)
    pd.testing.assert_frame_equal(tab, cli)
    # one vote rule too: named and identity-leak votes are left out of both, and the tab says so
    assert "null" not in set(tab["conversation_a"]) and len(tab) == 39
    assert set(tab["flags"]) == {"[]"} and set(tab["anony"]) == {True}
    assert "5 vote(s) flagged identity_leak left out" in files.notes and "4 named-mode vote(s) left out" in files.notes
    assert files.votes_jsonl.read_text() == cli_jsonl.read_text()
    assert len(read_battles_file(files.votes_jsonl)) == 39
    # the leaderboard says what it is, as `codearena export ratings` does
    board, cli_meta = json.loads(files.leaderboard_json.read_text()), json.loads(cli_board.read_text())
    for key in ("method", "ci_method", "votes", "source"):
        assert board[key] == cli_meta[key], key
    assert board["date"]
    assert board["votes"] == 39
    assert [r["model"] for r in board["leaderboard"]] == [r["model"] for r in cli_meta["leaderboard"]]
    assert json.loads(files.leaderboard_meta.read_text())["method"] == cli_meta["method"]
    assert len(pd.read_csv(files.leaderboard_csv)) == 3
