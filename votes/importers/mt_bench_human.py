"""MT-bench human judgments (the paper's expert votes): question_id, judge, model_a, model_b, winner."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from votes.importers.core import ImportOptions, Parsed, Rejection, Row, battle_or_rejection, turn_of
from votes.record import import_id, text_hash


def parse_mt_bench_human(rows: Iterable[Row], opts: ImportOptions) -> Iterator[Parsed]:
    """MT-bench human judgments: question_id, judge, model_a, model_b, winner (optional turn)."""
    source = opts.as_source or f"import:{opts.dataset}"
    for where, r in rows:
        missing = [k for k in ("question_id", "judge", "model_a", "model_b", "winner") if r.get(k) is None]
        if missing:
            yield Rejection(where, f"missing field(s) {', '.join(missing)}")
            continue
        turn = turn_of(where, r.get("turn"))
        yield battle_or_rejection(
            where, model_a=r["model_a"], model_b=r["model_b"], winner=r["winner"], source=source, mode="anonymous",
            prompt_id=str(r["question_id"]), category="mt-bench", turn=turn, voter=text_hash(str(r["judge"])),
            judge_detail={"judge": str(r["judge"])},
            id=import_id(opts.dataset, r["question_id"], r["judge"], r["model_a"], r["model_b"], turn),
        )
