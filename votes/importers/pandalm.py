"""The PandaLM test set: three annotators' labels per pair (their majority is the human vote), and a
judge's verdict file joined on ``idx``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from votes.importers.core import (
    ImportFormatError,
    ImportOptions,
    Parsed,
    Rejection,
    Row,
    battle_or_rejection,
    str_or_none,
)
from votes.importers.reading import read_records
from votes.record import import_id

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
                      category=str_or_none(r.get("motivation_app")), answer_a=str_or_none(r.get("response1")),
                      answer_b=str_or_none(r.get("response2")))
        if winner is None:
            yield Rejection(where, "annotators have no majority label")
        else:
            yield battle_or_rejection(where, winner=winner, source=source, judge_detail={"annotators": labels},
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
        yield battle_or_rejection(jwhere, winner=jwinner, source=f"judge:{opts.judge_name}",
                      judge_detail={"verdict": raw, "reason": reason},
                      id=import_id(opts.dataset, idx, "judge", opts.judge_name), **common)
