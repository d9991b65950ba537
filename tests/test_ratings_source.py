"""ratings.source.select_battles: the one rule for which votes count, on store frames and on files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ratings.source import DEFAULT_SOURCE, load_battles, select_battles
from votes.record import Battle
from votes.store import VoteStore


def _store(db_path: Path) -> VoteStore:
    s = VoteStore(db_path)
    s.add_many([Battle(model_a="a", model_b="b", winner="model_a") for _ in range(5)]
               + [Battle(model_a="a", model_b="b", winner="model_b", mode="named") for _ in range(2)]
               + [Battle(model_a="a", model_b="b", winner="model_b", flags=["identity_leak:model_a"])
                  for _ in range(3)]
               + [Battle(model_a="a", model_b="b", winner="tie", source="judge:q") for _ in range(4)])
    return s


def test_store_frame_default_keeps_blind_human_votes(db_path: Path) -> None:
    s = _store(db_path)
    kept, notes = select_battles(s.battles_frame())
    assert DEFAULT_SOURCE == "human"
    assert len(kept) == 5 and set(kept["winner"]) == {"model_a"}
    assert notes == ["2 named-mode vote(s) left out", "3 vote(s) flagged identity_leak left out"]


def test_source_prefix_all_and_includes(db_path: Path) -> None:
    frame = _store(db_path).battles_frame()
    assert len(select_battles(frame, source="judge:")[0]) == 4
    assert len(select_battles(frame, source="judge:q")[0]) == 4
    assert len(select_battles(frame, source="all")[0]) == 9
    assert len(select_battles(frame, source=None, include_named=True, include_flagged=True)[0]) == 14


def test_plain_file_frame_keeps_everything() -> None:
    df = pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "a"], "winner": ["model_a", "tie"]})
    kept, notes = select_battles(df)
    assert len(kept) == 2 and notes == []


def test_file_flags_as_lists_and_anony(tmp_path: Path) -> None:
    from votes.files import write_battles_file

    df = pd.DataFrame({"model_a": ["a"] * 3, "model_b": ["b"] * 3, "winner": ["model_a"] * 3,
                       "anony": [True, False, True], "flags": [[], [], ["identity_leak:model_b"]]})
    path = tmp_path / "b.jsonl"
    write_battles_file(df, path)
    loaded = load_battles(path)
    assert len(loaded.battles) == 1
    assert loaded.dropped_named == 1 and loaded.dropped_flagged == 1
    assert len(load_battles(path, include_named=True, include_flagged=True).battles) == 3


def test_all_left_out_names_the_way_back(db_path: Path) -> None:
    s = VoteStore(db_path)
    s.add_many([Battle(model_a="a", model_b="b", winner="model_a", flags=["identity_leak:model_a"])])
    s.close()
    with pytest.raises(ValueError, match="--include-flagged"):
        load_battles(db_path)
