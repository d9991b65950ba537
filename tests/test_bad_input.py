"""Issue 9: every bad input gets one clear line, exit 2 and no traceback; nothing is half-written.

Each test feeds one input that printed a traceback, crashed or left something behind, through the CLI as a
user runs it (in-process, or a real subprocess where only a subprocess shows the failure: a segfault, a
full disk simulated with RLIMIT_FSIZE, a kill -9, a read-only file)."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from codearena.cli import main
from votes.store import VoteStore

ROOT = Path(__file__).resolve().parents[1]
ROWS = [{"model_a": "a", "model_b": "b", "winner": "model_a"},
        {"model_a": "b", "model_b": "c", "winner": "model_b"},
        {"model_a": "c", "model_b": "a", "winner": "tie"}]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_error(rc: int, err: str, *needles: str) -> str:
    """Exit 2, exactly one line of error output, saying ``error: ...`` with every needle in it."""
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]


def run(*args: str, cwd: Path | None = None, preexec=None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "codearena", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, preexec_fn=preexec, timeout=timeout)


def file_size_limit(limit: int):
    """A preexec_fn: files of the child cannot grow past ``limit`` bytes, as on a full disk (SIGXFSZ ignored,
    so a write fails with EFBIG instead of killing the process)."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def synthetic_rows(n: int) -> list[dict]:
    return [{"question_id": f"q{i}", "model_a": f"m{i % 7}", "model_b": f"m{(i + 1 + i % 5) % 7}",
             "winner": ("model_a", "model_b", "tie")[i % 3], "tstamp": 1_700_000_000.0 + i,
             "judge": f"u{i % 97}"} for i in range(n)]


# -- nothing half-written -----------------------------------------------------------------------------------
def test_an_import_on_a_full_disk_stores_nothing_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "votes.db"
    assert main(["import", "arena-battles", str(write_jsonl(tmp_path / "few.jsonl", ROWS)), "--db", str(db)]) == 0
    big = write_jsonl(tmp_path / "big.jsonl", synthetic_rows(12_000))  # > one 5,000-row chunk
    res = run("import", "arena-battles", str(big), "--db", str(db), preexec=file_size_limit(400_000))
    one_error(res.returncode, res.stderr, str(db), "nothing was stored")
    assert "cannot rollback" not in res.stderr
    assert VoteStore(db, read_only=True).count() == len(ROWS)  # was 3 + 5,000 (the first chunk)


def test_an_import_killed_mid_way_leaves_the_store_as_before(tmp_path: Path) -> None:
    db = tmp_path / "votes.db"
    assert main(["import", "arena-battles", str(write_jsonl(tmp_path / "few.jsonl", ROWS)), "--db", str(db)]) == 0
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from votes import Battle, VoteStore
        def battles():
            for i in range(12_000):
                if i == 7_000:  # after the first 5,000-row chunk was written
                    os.kill(os.getpid(), signal.SIGKILL)
                yield Battle(model_a="x", model_b="y", winner="tie", source="import:k", id=f"k{{i}}")
        VoteStore({str(db)!r}).add_many(battles())
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert VoteStore(db, read_only=True).count() == len(ROWS)


def test_the_import_report_says_it_is_all_or_nothing(tmp_path: Path, capsys) -> None:
    rc, out, _ = cli(capsys, "import", "arena-battles", str(write_jsonl(tmp_path / "a.jsonl", ROWS)),
                     "--db", str(tmp_path / "v.db"))
    assert rc == 0 and "all or nothing" in out
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    assert "all or nothing" in capsys.readouterr().out


def _export_sources(tmp_path: Path) -> Path:
    rows = [{**r, "prompt": f"write f{i}", "answer_a": "x" * 50, "answer_b": "y" * 60}
            for i, r in enumerate(synthetic_rows(400))]
    return write_jsonl(tmp_path / "src.jsonl", rows)


@pytest.mark.parametrize("what,out_name,fmt", [
    ("votes", "v.jsonl", None), ("votes", "v.csv", None), ("votes", "folder", "parquet"),
    ("ratings", "r.csv", None), ("ratings", "r.json", None), ("ratings", "r.md", None),
    ("preferences", "p.jsonl", None),
])
def test_export_force_on_a_full_disk_keeps_the_old_export(tmp_path: Path, what: str, out_name: str,
                                                          fmt: str | None) -> None:
    src = _export_sources(tmp_path)
    out = tmp_path / out_name
    extra = ["--format", fmt] if fmt else []
    assert main(["export", what, "--db", str(src), "--out", str(out), *extra]) == 0
    def files() -> dict[str, bytes]:
        return {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    before = files()
    res = run("export", what, "--db", str(src), "--out", str(out), "--force", *extra,
              preexec=file_size_limit(200))
    one_error(res.returncode, res.stderr, str(out.name), "nothing was written")
    after = files()
    assert after == before  # the old export, whole; no temporary file left


def test_export_to_dev_full_says_the_disk_is_full(tmp_path: Path, capsys) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    src = write_jsonl(tmp_path / "b.jsonl", ROWS)
    rc, _, err = cli(capsys, "export", "votes", "--db", str(src), "--out", "/dev/full", "--format", "jsonl")
    line = one_error(rc, err, "/dev/full", "No space left")
    # Was: "--format jsonl contradicts --out /dev/full (a folder means parquet)".
    rc, _, err = cli(capsys, "export", "votes", "--db", str(src), "--out", "/dev/full")
    line = one_error(rc, err, "/dev/full", "--format")
    assert "folder" not in line and "parquet" not in line


def _replay_models(tmp_path: Path) -> Path:
    for name in ("a", "b", "j"):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps(
            {"question_id": "q1", "model_id": name, "choices": [{"index": 0, "turns": [{"content": "x"}]}]}) + "\n")
    toml = tmp_path / "models.toml"
    toml.write_text("".join(f'[[models]]\nname = "{n}"\nbackend = "replay"\nmodel = "{n}.jsonl"\n'
                            f'[models.options]\nquestion_id = "q1"\n\n' for n in ("a", "b", "j")))
    return toml


def test_failed_commands_leave_no_empty_store(tmp_path: Path, capsys) -> None:
    db = tmp_path / "votes.db"
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "q1", "messages": [{"role": "user", "content": "hi"}]}) + "\n")
    not_a_folder = tmp_path / "answers"
    not_a_folder.write_text("a file, not a folder\n")
    rc, _, err = cli(capsys, "duel", "a", "b", "--judge", "j", "--models", str(_replay_models(tmp_path)),
                     "--prompts", str(prompts), "--answers-dir", str(not_a_folder), "--db", str(db), "--quiet")
    one_error(rc, err, "--answers-dir", str(not_a_folder))
    assert not db.exists()
    rc, _, err = cli(capsys, "serve", "--weight", "nope=2", "--db", str(db), "--port", "0")
    one_error(rc, err, "nope")
    assert not db.exists()


# -- every bad input: one line, exit 2 ---------------------------------------------------------------------
@pytest.mark.parametrize("field,text", [("turn", "Infinity"), ("turn", "-Infinity"), ("tstamp", "Infinity"),
                                        ("tstamp", "1e20"), ("turn", "1e20")])
def test_numbers_no_vote_can_hold_name_the_file_and_line(tmp_path: Path, capsys, field: str, text: str) -> None:
    f = tmp_path / "b.jsonl"
    f.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1])[:-1] + f', "{field}": {text}}}\n')
    db = tmp_path / "v.db"
    for args in (["import", "arena-battles", str(f), "--db", str(db)], ["rate", str(f)],
                 ["validate", "--reference", str(f), "--candidate", str(f), "--bootstrap", "0"]):
        rc, _, err = cli(capsys, *args)
        one_error(rc, err, f"{f}:line 2" if args[0] != "import" else "b.jsonl:line 2")
    assert not db.exists()


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_a_100000_deep_json_value_is_an_error(tmp_path: Path, capsys, suffix: str) -> None:
    row = json.dumps(ROWS[0])[:-1] + f', "x": {_deep(100_000)}}}'
    f = tmp_path / f"deep{suffix}"
    f.write_text(row + "\n" if suffix == ".jsonl" else f"[{row}]")
    for fmt in ("arena-battles", "mt-bench-human", "pandalm", "codearena-judgments", "answers"):
        rc, _, err = cli(capsys, "import", fmt, str(f), "--db", str(tmp_path / "v.db"))
        one_error(rc, err, "deep", "nested deeper")
    rc, _, err = cli(capsys, "rate", str(f))
    one_error(rc, err, str(f), "nested deeper")


@pytest.mark.parametrize("command", ["rate", "validate"])
def test_a_5000_deep_extra_field_does_not_crash_the_process(tmp_path: Path, command: str) -> None:
    # Was: the table printed, then a segfault (exit 139) freeing pyarrow's nested arrays: a subprocess shows it.
    f = tmp_path / "deep.jsonl"
    f.write_text(json.dumps(ROWS[0])[:-1] + f', "extra": {_deep(5_000)}}}\n'
                 + "".join(json.dumps(r) + "\n" for r in ROWS[1:]))
    args = ["rate", str(f)] if command == "rate" else ["validate", "--reference", str(f), "--candidate", str(f)]
    res = run(*args)
    one_error(res.returncode, res.stderr, f"{f}:line 1", "nested deeper")


def test_a_pandalm_annotator_given_as_a_list(tmp_path: Path, capsys) -> None:
    f = tmp_path / "pandalm.json"
    f.write_text(json.dumps([{"idx": 1, "cmp_key": "a_b", "annotator1": [1], "annotator2": 1, "annotator3": 1}]))
    rc, _, err = cli(capsys, "import", "pandalm", str(f), "--db", str(tmp_path / "v.db"))
    one_error(rc, err, "pandalm.json: item 0", "annotator1")
    assert not (tmp_path / "v.db").exists()


def _without_dac_override() -> None:
    """preexec_fn: root loses the capabilities that let it write a read-only file, as any other user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_read_only_store_file(tmp_path: Path) -> None:
    db = tmp_path / "votes.db"
    assert main(["import", "arena-battles", str(write_jsonl(tmp_path / "a.jsonl", ROWS[:1])), "--db", str(db)]) == 0
    new = write_jsonl(tmp_path / "b.jsonl", ROWS[1:])
    db.chmod(0o444)
    try:
        res = run("import", "arena-battles", str(new), "--db", str(db),
                  preexec=_without_dac_override if os.geteuid() == 0 else None)
    finally:
        db.chmod(0o644)
    one_error(res.returncode, res.stderr, str(db), "read-only")
    assert VoteStore(db, read_only=True).count() == 1


def test_a_negative_schema_version_is_refused(tmp_path: Path, capsys) -> None:
    db = tmp_path / "odd.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = -1")
    for args in (["import", "arena-battles", str(write_jsonl(tmp_path / "a.jsonl", ROWS)), "--db", str(db)],
                 ["rate", str(db)]):
        rc, _, err = cli(capsys, *args)
        one_error(rc, err, str(db), "schema version -1")


def test_a_foreign_sqlite_file_with_a_battles_table_is_refused_and_left_unchanged(tmp_path: Path, capsys) -> None:
    db = tmp_path / "theirs.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE battles (round INTEGER, team TEXT)")
        conn.execute("INSERT INTO battles VALUES (1, 'red')")
    before = db.read_bytes()
    f = write_jsonl(tmp_path / "a.jsonl", ROWS)
    for args in (["import", "arena-battles", str(f), "--db", str(db)], ["rate", str(db)],
                 ["validate", "--reference", "all", "--candidate", "all", "--db", str(db)]):
        rc, _, err = cli(capsys, *args)
        one_error(rc, err, str(db), "not a CodeArena vote store")
    assert db.read_bytes() == before
    assert not Path(f"{db}-wal").exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["battles"]


def test_a_corrupted_page_is_one_line_naming_the_file(tmp_path: Path, capsys) -> None:
    db = tmp_path / "votes.db"
    src = write_jsonl(tmp_path / "b.jsonl", synthetic_rows(3_000))
    assert main(["import", "arena-battles", str(src), "--db", str(db), "--as-source", "human"]) == 0
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")  # everything in the main file, no WAL to mask the damage
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        for page in range(3, size // 4096, 3):
            fh.seek(page * 4096 + 100)
            fh.write(b"\xde\xad\xbe\xef" * 200)
    capsys.readouterr()
    for args in (["rate", str(db)], ["export", "votes", "--db", str(db), "--out", str(tmp_path / "o.jsonl")]):
        rc, _, err = cli(capsys, *args)
        one_error(rc, err, str(db), "damaged")
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_invalid_utf8_names_the_file_and_line(tmp_path: Path, capsys, suffix: str) -> None:
    f = tmp_path / f"latin1{suffix}"
    if suffix == ".csv":
        f.write_bytes(b"model_a,model_b,winner\na,b,model_a\nc\xe9,b,model_a\n")
    elif suffix == ".json":
        f.write_bytes(b'[{"model_a": "a", "model_b": "b", "winner": "model_a"},\n'
                      b' {"model_a": "c\xe9", "model_b": "b", "winner": "model_a"}]\n')
    else:
        f.write_bytes(b'{"model_a": "a", "model_b": "b", "winner": "model_a"}\n'
                      b'{"model_a": "c\xe9", "model_b": "b", "winner": "model_a"}\n')
    line = "line 3" if suffix == ".csv" else "line 2"
    for args in (["import", "arena-battles", str(f), "--db", str(tmp_path / "v.db")], ["rate", str(f)],
                 ["validate", "--reference", str(f), "--candidate", str(f)]):
        rc, _, err = cli(capsys, *args)
        one_error(rc, err, f"{f}:{line}", "UTF-8")


@pytest.mark.parametrize("option,needle", [(["--prior", "-1"], "--prior -1"),
                                           (["--bootstrap", "10000000"], "--bootstrap 10000000"),
                                           (["--seed", "-3"], "--seed -3")])
def test_rate_options_without_meaning_are_refused(tmp_path: Path, capsys, option: list[str], needle: str) -> None:
    f = write_jsonl(tmp_path / "b.jsonl", ROWS)
    rc, _, err = cli(capsys, "rate", str(f), *option)
    one_error(rc, err, needle)


@pytest.mark.parametrize("value", ["a=nan", "a=inf", "a=-inf"])
def test_a_non_finite_anchor_is_refused(tmp_path: Path, capsys, value: str) -> None:
    f = write_jsonl(tmp_path / "b.jsonl", ROWS)
    with pytest.raises(SystemExit) as exc:
        main(["rate", str(f), "--anchor", value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if "error:" in line] == [
        f"codearena rate: error: argument --anchor: expected MODEL=ELO with a finite ELO (e.g. gpt-4=1200), "
        f"got {value!r}"]


@pytest.mark.parametrize("name", ["evil\x1b[2J\x1b[31m", "bell\x07", "rtl\u202eexe.txt", "nul\x00"])
def test_model_names_with_control_characters_are_rejected(tmp_path: Path, capsys, name: str) -> None:
    rows = [{"model_a": name, "model_b": "b", "winner": "model_a"}, *ROWS]
    f = write_jsonl(tmp_path / "b.jsonl", rows)
    db = tmp_path / "v.db"
    rc, out, _ = cli(capsys, "import", "arena-battles", str(f), "--db", str(db))
    assert rc == 0 and "rejected 1" in out and "control character" in out and "b.jsonl:line 1" in out
    assert name not in out  # shown escaped
    assert name not in set(VoteStore(db, read_only=True).battles_frame("all")["model_a"])
    rc, out, err = cli(capsys, "rate", str(f))
    one_error(rc, err, f"{f}:line 1", "control character")
    assert name not in err


def test_rate_prints_a_model_name_as_text_not_markup(tmp_path: Path, capsys) -> None:
    f = write_jsonl(tmp_path / "b.jsonl", [{**r, "model_a": "[bold]x[/bold]"} if r["model_a"] == "a" else r
                                           for r in ROWS])
    rc, out, _ = cli(capsys, "rate", str(f))
    # In the table itself (the notes below it print names as they are anyway).
    assert rc == 0 and [line for line in out.splitlines() if "│" in line and "[bold]x[/bold]" in line]


def test_csv_exports_escape_formula_cells_and_read_them_back(tmp_path: Path, capsys) -> None:
    evil = ["=HYPERLINK(\"http://x\")", "+1+2", "-cmd", "@SUM(A1)", "'quoted"]
    rows = [{"model_a": m, "model_b": "safe", "winner": "model_a", "question_id": "=1+1", "tstamp": -5.0}
            for m in evil] + [{"model_a": "safe", "model_b": m, "winner": "tie"} for m in evil]
    jsonl = write_jsonl(tmp_path / "b.jsonl", rows)
    src = tmp_path / "src.db"
    assert main(["import", "arena-battles", str(jsonl), "--db", str(src), "--as-source", "human"]) == 0
    votes_csv, ratings_csv = tmp_path / "v.csv", tmp_path / "r.csv"
    assert main(["export", "votes", "--db", str(src), "--out", str(votes_csv)]) == 0
    assert main(["export", "ratings", "--db", str(src), "--out", str(ratings_csv)]) == 0
    capsys.readouterr()
    assert main(["rate", str(src), "--format", "csv"]) == 0
    rate_csv = capsys.readouterr().out
    for text in (votes_csv.read_text(), ratings_csv.read_text(), rate_csv):
        cells = [c for line in text.splitlines() for c in line.split(",")]
        assert not [c for c in cells if c.lstrip('"').startswith(("=", "+", "@")) or c.startswith('"-')], text
    frame = pd.read_csv(votes_csv)
    assert {f"'{m}" for m in evil} <= set(frame["model_a"]) | set(frame["model_b"])
    assert frame["tstamp"].min() == -5.0  # numbers stay numbers
    # Read back by our own readers: the names as they were.
    db = tmp_path / "v.db"
    assert main(["import", "arena-battles", str(votes_csv), "--db", str(db)]) == 0
    stored = VoteStore(db, read_only=True).battles_frame("all")
    assert set(stored["model_a"]) | set(stored["model_b"]) == {*evil, "safe"}
    assert set(stored["prompt_id"].dropna()) == {"=1+1"}


def test_validate_on_a_folder_says_it_is_a_folder(tmp_path: Path, capsys) -> None:
    rc, _, err = cli(capsys, "validate", "--reference", str(tmp_path), "--candidate", "human")
    line = one_error(rc, err, str(tmp_path), "folder")
    assert "no such file" not in line
    rc, _, err = cli(capsys, "rate", str(tmp_path))
    one_error(rc, err, str(tmp_path), "folder")


def test_serve_on_an_address_of_another_machine_does_not_say_port_in_use(tmp_path: Path, capsys) -> None:
    rc, _, err = cli(capsys, "serve", "--host", "8.8.8.8", "--port", "7860", "--db", str(tmp_path / "v.db"))
    line = one_error(rc, err, "--host 8.8.8.8", "not an address of this machine")
    assert "in use" not in line and not (tmp_path / "v.db").exists()


def test_a_judge_name_that_cannot_be_a_source_is_refused_before_reading(tmp_path: Path, capsys) -> None:
    test = tmp_path / "t.json"
    test.write_text(json.dumps([{"idx": 1, "cmp_key": "a_b", "annotator1": 1, "annotator2": 1, "annotator3": 2}]))
    judge = tmp_path / "j.json"
    judge.write_text(json.dumps([{"idx": 1, "pandalm_result": 1}]))
    rc, _, err = cli(capsys, "import", "pandalm", str(test), "--judge-file", str(judge), "--judge-name", "a b",
                     "--db", str(tmp_path / "v.db"))
    one_error(rc, err, "--judge-name 'a b'")
    rc, _, err = cli(capsys, "import", "pandalm", str(test), "--dataset", "my set", "--db", str(tmp_path / "v.db"))
    one_error(rc, err, "--dataset 'my set'")
    assert not (tmp_path / "v.db").exists()


def test_a_parquet_file_with_broken_pandas_metadata_is_read_by_its_columns(tmp_path: Path, capsys) -> None:
    # Found by the fuzz test: pyarrow raised KeyError('columns') from the footer's pandas metadata.
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "b.parquet"
    table = pa.table({k: [r[k] for r in ROWS] for k in ROWS[0]})
    pq.write_table(table.replace_schema_metadata({b"pandas": b"{}"}), f)
    rc, out, err = cli(capsys, "rate", str(f))
    assert rc == 0, err
    f.write_bytes(f.read_bytes()[:-12] + b"\x00" * 12)  # the footer itself broken
    rc, _, err = cli(capsys, "rate", str(f))
    one_error(rc, err, str(f))


def test_question_ids_that_are_lists_are_read_as_text(tmp_path: Path, capsys) -> None:
    # Found by the fuzz test: a list is no hashable id, and the fast id path raised TypeError.
    f = tmp_path / "b.jsonl"
    f.write_text("".join(json.dumps({"model_a": "m1", "model_b": "m2", "winner": w, "question_id": [i]}) + "\n"
                         for i, w in enumerate(["model_a", "model_b", "tie"])), encoding="utf-8")
    rc, out, err = cli(capsys, "rate", str(f))
    assert rc == 0, err
