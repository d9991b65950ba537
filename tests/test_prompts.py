"""Prompt loading: the built-in sample, CodeArena files (JSONL, Parquet, the hub through a local HTTP
server), Arena-Hard and MT-bench question files, filters, sampling and error messages."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codearena.cli import main
from serving.prompts import PromptsError, load_levels, load_prompts
from tests.conftest import require_shared

CODEARENA_ROWS = [
    # The dataset card shows 'messages' as a Python repr string and programming_language as a list.
    {"id": "60670a8d9b1e39dd845fb1639d0d8b86",
     "messages": "[{'role': 'user', 'content': 'move gradient chart to the right side'}]",
     "difficulty": "easy", "programming_language": ["JavaScript"],
     "meta": {"parsed": {"task_type": ["UI component development"]}}},
    {"id": "b2", "messages": [{"role": "user", "content": "Write a SQL query for the top customers"}],
     "difficulty": "hard", "programming_language": ["SQL"],
     "meta": {"parsed": {"task_type": ["database-querying"]}}},
    {"id": "c3", "messages": [{"role": "user", "content": "Fix my Python import error"}],
     "difficulty": "medium", "programming_language": "Python", "meta": {"parsed": {"task_type": ["debugging"]}}},
]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- built-in sample ----------------------------------------------------------------------------------


def test_builtin_sample_covers_categories_and_languages() -> None:
    prompts = load_prompts()
    assert 30 <= len(prompts) <= 40
    assert len({p.id for p in prompts}) == len(prompts)
    languages = Counter(p.language for p in prompts)
    for lang in ("Python", "JavaScript", "C++", "Java", "Go", "Rust", "SQL", "Bash", "TypeScript"):
        assert languages[lang] >= 1, lang
    assert len({p.category for p in prompts}) >= 5
    assert all(p.subcategory and p.difficulty in ("easy", "medium", "hard") for p in prompts)
    assert all(p.text.strip() and p.source == "builtin" for p in prompts)
    assert load_prompts("builtin") == prompts


def test_builtin_categories_agree_with_codearena_task_type_map() -> None:
    levels = load_levels(require_shared("codearena/tasktype_to_levels.json"))
    for p in load_prompts():
        assert levels[p.task_type] == (p.category, p.subcategory), p.id


def test_filters_and_aliases() -> None:
    assert {p.language for p in load_prompts(language="js")} == {"JavaScript"}
    assert {p.language for p in load_prompts(language="CPP")} == {"C++"}
    db = load_prompts(category="database management")
    # Whole words of the subcategory too: "Data and Database Management" is one.
    assert db and {p.subcategory for p in db} == {"Database Management", "Data and Database Management"}
    hard = load_prompts(difficulty="HARD")
    assert hard and all(p.difficulty == "hard" for p in hard)
    assert load_prompts(language="python", difficulty="easy", category="Development and Programming")
    assert load_prompts(language="cobol") == []


def test_sampling_is_reproducible() -> None:
    first = [p.id for p in load_prompts(limit=5, seed=7)]
    assert first == [p.id for p in load_prompts(limit=5, seed=7)]
    assert first != [p.id for p in load_prompts(limit=5, seed=8)]
    assert [p.id for p in load_prompts(limit=3)] == ["codearena-sample-001", "codearena-sample-002",
                                                     "codearena-sample-003"]
    with pytest.raises(PromptsError, match="limit"):
        load_prompts(limit=0)


# -- files --------------------------------------------------------------------------------------------


def test_codearena_jsonl_with_task_type_map(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "CodeArena.jsonl", CODEARENA_ROWS)
    raw = load_prompts(path)
    assert [p.id for p in raw] == ["60670a8d9b1e39dd845fb1639d0d8b86", "b2", "c3"]
    assert raw[0].text == "move gradient chart to the right side"
    assert raw[0].language == "JavaScript" and raw[2].language == "Python"
    # Without the map, the fine task type is the category.
    assert raw[1].category == "database-querying"

    levels = require_shared("codearena/tasktype_to_levels.json")
    mapped = load_prompts(path, levels=levels)
    assert (mapped[0].category, mapped[0].subcategory) == ("User Interface and User Experience (UI/UX)",
                                                           "UI/UX Design")
    # CodeArena's own normalisation: '-' -> ' ', lower case.
    assert (mapped[1].category, mapped[1].subcategory) == ("Databases and Data Handling", "Database Management")
    assert [p.id for p in load_prompts(path, levels=levels, category="Code Debugging")] == ["c3"]


def test_codearena_parquet(tmp_path: Path) -> None:
    import pandas as pd

    rows = [dict(r, messages=r["messages"] if isinstance(r["messages"], list) else
                 [{"role": "user", "content": "move gradient chart to the right side"}])
            for r in CODEARENA_ROWS]
    for r in rows:
        r["programming_language"] = [r["programming_language"]] if isinstance(r["programming_language"], str) \
            else r["programming_language"]
    path = tmp_path / "codearena.parquet"
    pd.DataFrame(rows).to_parquet(path)
    prompts = load_prompts(path, language="sql")
    assert [(p.id, p.difficulty, p.text) for p in prompts] \
        == [("b2", "hard", "Write a SQL query for the top customers")]


def test_arena_hard_questions() -> None:
    prompts = load_prompts(require_shared("arena-hard-v0.1/question.jsonl"))
    assert len(prompts) == 500
    second = prompts[1]
    assert second.id == "b43c07656ead4150b360294ee932b410"
    assert second.category == "ABC Sequence Puzzles & Groups"  # the cluster, not the benchmark name
    assert second.text.startswith("SOLVE THIS IN C++")


def test_arena_hard_category_matches_whole_words_of_the_cluster(capsys) -> None:
    path = require_shared("arena-hard-v0.1/question.jsonl")
    # Every row's 'category' is "arena-hard-v0.1": the cluster is what --category and --stats use.
    coding = load_prompts(path, category="coding")
    assert coding and {p.category for p in coding} == {"Python Coding Challenges"}
    # Whole words: "Subtitle Encoding and Conversion" is not a coding cluster; "python" finds many clusters.
    assert not [p for p in coding if "Encoding" in (p.category or "")]
    python = load_prompts(path, category="PYTHON")
    assert {"Python Web Scraping", "PDF Processing in Python", "Python Coding Challenges"} <= {
        p.category for p in python}
    assert not load_prompts(path, category="arena-hard-v0.1")
    # The CLI: the filter and --stats count the same field.
    assert main(["prompts", str(path), "--category", "coding", "--stats"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{len(coding)} prompts") and "Python Coding Challenges" in out


def test_no_match_lists_the_most_common_categories(capsys) -> None:
    path = require_shared("arena-hard-v0.1/question.jsonl")
    assert main(["prompts", str(path), "--category", "knitting"]) == 1
    err = capsys.readouterr().err
    assert "no prompts match these filters: no category matches 'knitting'" in err
    assert "ABC Sequence Puzzles & Groups (2)" in err and "and 235 more (see --stats)" in err
    assert err.count(" (2)") == 15
    # The category exists but another filter excludes it: the message says that instead.
    assert main(["prompts", "--category", "Development and Programming", "--language", "cobol"]) == 1
    assert "alone matches some" in capsys.readouterr().err


def test_mt_bench_questions() -> None:
    coding = load_prompts(require_shared("mt-bench-answers/question.jsonl"), category="coding")
    assert [p.id for p in coding] == [str(i) for i in range(121, 131)]
    assert coding[0].followups and coding[0].messages == [{"role": "user", "content": coding[0].text}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "messages": [{"role": "user", "content": "x"}]}\n{not json\n', r":line 2: not valid JSON"),
        ('{"id": "a", "messages": [{"role": "user", "content": "x"}]}\n\n[1, 2]\n', r":line 3: expected a JSON object"),
        ('{"question": "x"}\n', r":line 1: not a prompt: expected 'messages'"),
        ('{"messages": [{"role": "user", "content": "x"}]}\n', r":line 1: missing 'id'"),
        ('{"id": "a", "messages": []}\n', r":line 1: 'messages' must be a non-empty list"),
        ('{"id": "a", "messages": [{"role": "robot", "content": "x"}]}\n', r":line 1: message 1 must be"),
        ('{"question_id": 1, "turns": []}\n', r":line 1: 'turns' must be a non-empty list"),
        ('{"question_id": 1, "turns": ["a"]}\n{"question_id": 1, "turns": ["b"]}\n',
         r":line 2: duplicate prompt id '1' \(first at .*:line 1\)"),
        ("\n\n", r"no prompts in the file"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PromptsError, match=message) as info:
        load_prompts(path)
    assert str(path) in str(info.value)


def test_missing_and_unknown_sources(tmp_path: Path) -> None:
    with pytest.raises(PromptsError, match="no such prompts file"):
        load_prompts(tmp_path / "nope.jsonl")
    (tmp_path / "q.csv").write_text("a,b\n")
    with pytest.raises(PromptsError, match="unknown prompts format '.csv'"):
        load_prompts(tmp_path / "q.csv")
    with pytest.raises(PromptsError, match="expected hf:OWNER/NAME"):
        load_prompts("hf:justone")


# -- the hub, through a local server on 127.0.0.1 --------------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def hub_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A directory served over HTTP in the hub's URL layout: /datasets/{repo}/resolve/{rev}/{file}."""
    root = tmp_path / "hub"
    _QuietHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_hub_download_is_cached(hub_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, root = hub_server
    served = root / "datasets" / "CSJianYang" / "CodeArena" / "resolve" / "main"
    served.mkdir(parents=True)
    _write_jsonl(served / "CodeArena.jsonl", CODEARENA_ROWS)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("CODEARENA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    prompts = load_prompts("hub")
    assert [p.id for p in prompts] == ["60670a8d9b1e39dd845fb1639d0d8b86", "b2", "c3"]
    assert prompts[0].source == "hf:CSJianYang/CodeArena"
    assert _QuietHandler.requests == ["/datasets/CSJianYang/CodeArena/resolve/main/CodeArena.jsonl"]

    # Second load: from the cache, even with the file gone from the server.
    (served / "CodeArena.jsonl").unlink()
    assert [p.id for p in load_prompts("hf:CSJianYang/CodeArena", language="sql")] == ["b2"]
    assert len(_QuietHandler.requests) == 1
    assert not list((tmp_path / "cache").rglob("*.partial"))
    # Offline: the cache still serves; anything not cached is a clear error, not a network call.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert len(load_prompts("hub")) == 3
    with pytest.raises(PromptsError, match="HF_HUB_OFFLINE=1; download other.jsonl yourself"):
        load_prompts("hf:CSJianYang/CodeArena/other.jsonl")
    assert len(_QuietHandler.requests) == 1


def test_hub_errors_tell_the_user_what_to_do(hub_server: tuple[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, _ = hub_server
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("CODEARENA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(PromptsError, match=r"HTTP 404; download other.jsonl .* pass its path"):
        load_prompts("hf:someone/data/other.jsonl")
    # Nothing reachable on that port: the connection error says the same.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(PromptsError, match="cannot download .* pass its path"):
        load_prompts("hub")
    assert not list((tmp_path / "cache").rglob("*.jsonl*"))


# -- CLI ----------------------------------------------------------------------------------------------


def test_cli_stats_and_jsonl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "--stats"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{len(load_prompts())} prompts") and "by language:" in out and "Python" in out

    assert main(["prompts", "--language", "go", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["language"] for r in rows} == {"Go"} and len(rows) == 2


def test_cli_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "messages": [{"role": "user", "content": "x"}]}\n{oops\n')
    assert main(["prompts", str(bad)]) == 2
    assert f"{bad}:line 2: not valid JSON" in capsys.readouterr().err
    assert main(["prompts", "--language", "cobol"]) == 1
