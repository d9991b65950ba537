"""Rating a big store: the load time of ``codearena rate``'s votes from PostgreSQL next to SQLite.

Builds a store of N battles (default 1,000,000) on each engine, with answers of realistic length (the bulk
of a store; rating without style control never reads them), loaded with COPY on PostgreSQL and one
transaction on SQLite. Then, on each engine, times what ``codearena rate STORE`` reads (only
``ratings.source.rating_columns()``), the same with every column, and one Bradley-Terry fit, and prints
the figures. Needs a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres, where a
scratch database is created and dropped).

    python bench/bench_store.py --rows 1000000
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from votes.store import BATTLE_SCHEMA  # noqa: E402

MODELS = [f"model-{i:02d}" for i in range(20)]
WINNERS = ["model_a", "model_b", "tie", "tie (bothbad)"]


def rows(n: int, answer_chars: int, seed: int = 0):
    """Battle rows in BATTLE_SCHEMA's column order: 500 prompts, 20 models, answers of ~answer_chars."""
    rng = random.Random(seed)
    prompts = [f"Write a function number {i} that " + "does something useful " * 8 for i in range(500)]
    words = ["def", "return", "for", "in", "range", "if", "else", "print", "x", "y", "value", "items", "\n"]
    answers = [" ".join(rng.choice(words) for _ in range(answer_chars // 5)) for _ in range(400)]
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    cols = list(BATTLE_SCHEMA)
    for i in range(n):
        a, b = rng.sample(MODELS, 2)
        p = rng.randrange(len(prompts))
        row = {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "created_at": (t0 + timedelta(seconds=i * 7)).isoformat(timespec="milliseconds"),
            "prompt_id": f"q{p}", "prompt": prompts[p], "prompt_hash": f"{p:016x}", "category": "algorithm",
            "language": "python", "turn": 1, "model_a": a, "model_b": b,
            "answer_a": rng.choice(answers), "answer_b": rng.choice(answers), "conversation_a": None,
            "conversation_b": None, "winner": rng.choice(WINNERS), "source": "human", "mode": "anonymous",
            "voter": f"{rng.randrange(20000):016x}", "flags": "[]", "judge_detail": None, "runs": None,
            "timings": None, "pair_probability": None,
        }
        yield tuple(row[c] for c in cols)


def fill_postgres(url: str, n: int, answer_chars: int) -> float:
    import psycopg

    from votes.store import open_store

    open_store(url).close()  # the schema, as the arena creates it
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY battles ({', '.join(BATTLE_SCHEMA)}) FROM STDIN") as copy:
            for r in rows(n, answer_chars):
                copy.write_row(r)
        conn.commit()
        conn.execute("ANALYZE battles")
    return time.perf_counter() - t0


def fill_sqlite(path: Path, n: int, answer_chars: int) -> float:
    import sqlite3

    from votes.store import open_store

    open_store(path).close()
    t0 = time.perf_counter()
    conn = sqlite3.connect(path)
    marks = ", ".join("?" for _ in BATTLE_SCHEMA)
    with conn:
        conn.executemany(f"INSERT INTO battles ({', '.join(BATTLE_SCHEMA)}) VALUES ({marks})", rows(n, answer_chars))
    conn.close()
    return time.perf_counter() - t0


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def measure(target: str, repeat: int) -> dict[str, float]:
    from ratings.leaderboard import rate
    from ratings.source import load_battles, rating_columns
    from votes.store import open_store

    cols = rating_columns()

    def read(columns):
        with open_store(target, read_only=True) as store:
            return store.battles_frame(source="human", columns=columns)

    read_s, frame = timed(lambda: read(cols), repeat)
    read_all_s, _ = timed(lambda: read(None), 1)
    load_s, loaded = timed(lambda: load_battles(target, columns=cols), 1)
    fit_s, _ = timed(lambda: rate(loaded.battles), 1)
    mem = frame.memory_usage(deep=True).sum() / 1e6
    return {"read": read_s, "read_all": read_all_s, "load": load_s, "fit": fit_s, "rows": len(frame), "mb": mem}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--answer-chars", type=int, default=600, help="length of each stored answer (default 600)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where a scratch database may be created")
    parser.add_argument("--repeat", type=int, default=2, help="best of N for the rating load (default 2)")
    args = parser.parse_args(argv)

    import psycopg

    from ratings.source import rating_columns

    name = f"codearena_bench_{secrets.token_hex(4)}"
    base = args.postgres.rpartition("/")[0]
    url = f"{base}/{name}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    tmp = Path(tempfile.mkdtemp(prefix="codearena-bench-store-"))
    db = tmp / "votes.db"
    try:
        pg_fill = fill_postgres(url, args.rows, args.answer_chars)
        lite_fill = fill_sqlite(db, args.rows, args.answer_chars)
        with psycopg.connect(url) as conn:
            pg_size = conn.execute("SELECT pg_total_relation_size('battles')").fetchone()[0] / 1e6
        pg = measure(url, args.repeat)
        lite = measure(str(db), args.repeat)
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        tmp.rmdir()
    print(f"\n{args.rows:,} battles, answers of {args.answer_chars} chars; store size: PostgreSQL "
          f"{pg_size:,.0f} MB (battles table with indexes and TOAST)")
    print(f"setup                       PostgreSQL COPY {pg_fill:6.1f} s   SQLite one transaction {lite_fill:6.1f} s")
    print(f"{'':28}{'PostgreSQL':>12}{'SQLite':>12}")
    print(f"{'store read, rate columns':28}{pg['read']:>10.2f} s{lite['read']:>10.2f} s   "
          f"({len(rating_columns())} columns, {pg['rows']:,} rows, {pg['mb']:,.0f} MB in pandas)")
    print(f"{'store read, every column':28}{pg['read_all']:>10.2f} s{lite['read_all']:>10.2f} s   (what a "
          "full-row fetch would cost)")
    print(f"{'rate load (read + selection)':28}{pg['load']:>10.2f} s{lite['load']:>10.2f} s   "
          "(ratings.source.load_battles: named/flagged votes left out)")
    print(f"{'Bradley-Terry fit':28}{pg['fit']:>10.2f} s{lite['fit']:>10.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
