"""Several arena replicas on one PostgreSQL store (real PostgreSQL, real processes, a real load balancer).

- The leaderboard is computed once for the deployment: the replica holding the lock computes and publishes,
  the others read; when the leader goes, another takes over.
- 3 `codearena serve` processes behind HAProxy (sticky by cookie), simulated voters through gradio_client
  over the replay backend: every acknowledged vote is stored; one replica SIGKILLed mid-load, the others
  keep serving and nothing acknowledged is lost.
- A PostgreSQL outage (a TCP forwarder we cut, not a restart of the shared server): votes acknowledged
  before are kept, votes during it get a clear error on the page, and the arena recovers by itself.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from arena_ui.leaderboard_cache import LeaderboardCache
from arena_ui.replay_config import write_replay_models
from tests.conftest import require_shared
from tests.pg_helpers import TcpForwarder, fresh_database, require_postgres, sql
from tests.replica_helpers import Deployment
from votes import Battle, VoteStore

MODELS = ["gpt-4o-2024-05-13", "claude-3-haiku-20240307", "gemma-2-9b-it"]
VOTE_APIS = {"/vote_a": "model_a", "/vote_b": "model_b", "/vote_tie": "tie", "/vote_bothbad": "tie (bothbad)"}
REVEAL_RE = re.compile(r"Model A: \*\*(.+?)\*\* · Model B: \*\*(.+?)\*\*")
STORE_DOWN = "could not be stored"


def votes(n: int, seed: int = 0) -> list[Battle]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.sample(["m1", "m2", "m3", "m4"], 2)
        out.append(Battle(model_a=a, model_b=b, winner=rng.choice(["model_a", "model_b", "tie"]), prompt_id=f"q{i}"))
    return out


def test_the_leaderboard_is_computed_once_for_all_replicas(pg_url: str) -> None:
    stores = [VoteStore(pg_url) for _ in range(3)]
    caches = [LeaderboardCache(s, refresh_s=3600) for s in stores]
    stores[0].add_many(votes(60))
    for c in caches:
        c.refresh()
    assert [c.computations for c in caches] == [1, 0, 0]  # the first to refresh took the lock
    shown = [c.snapshot() for c in caches]
    assert all(s.battles_seen == 60 for s in shown)
    assert all(s.overall.equals(shown[0].overall) and s.computed_at == shown[0].computed_at for s in shown)
    assert list(shown[1].overall["model"]) == list(shown[0].overall["model"]) and len(shown[0].figures) == 3
    for c in caches:  # nothing new: nobody computes, nobody re-reads
        c.refresh()
    assert [c.computations for c in caches] == [1, 0, 0]
    stores[1].add_many(votes(20, seed=1))
    for c in caches:
        c.refresh()
    assert [c.computations for c in caches] == [1 + 1, 0, 0]
    assert {c.snapshot().battles_seen for c in caches} == {80}  # the followers read it in the same round
    # the leader goes (a killed replica's session ends): the next replica to refresh takes over, and adopts
    # the published snapshot instead of computing it again
    stores[0].close()
    caches[1].refresh()
    assert caches[1].computations == 0 and caches[1].snapshot().battles_seen == 80
    stores[2].add_many(votes(5, seed=2))
    caches[1].refresh()
    caches[2].refresh()
    assert caches[1].computations == 1 and caches[2].computations == 0
    assert caches[2].snapshot().battles_seen == 85


def test_sqlite_keeps_its_own_leaderboard(tmp_path: Path) -> None:
    store = VoteStore(tmp_path / "v.db")
    store.add_many(votes(30))
    cache = LeaderboardCache(store)
    assert cache.refresh().battles_seen == 30 and cache.computations == 1
    with pytest.raises(ValueError, match="not shared"):
        store.lead("leaderboard")


def test_rate_limits_hold_across_replicas_and_survive_an_outage(pg_url: str, tmp_path: Path) -> None:
    from arena_ui.ratelimit import RateLimited, SlidingWindowLimiter, StoreLimiter, make_limiter

    fwd = TcpForwarder()
    fwd.start()
    try:
        stores = [VoteStore(fwd.url(pg_url), connect_timeout_s=2) for _ in range(2)]
        limiters = [make_limiter(s, "votes", 3) for s in stores]
        assert all(isinstance(lim, StoreLimiter) for lim in limiters)
        limiters[0].hit("203.0.113.9", "votes")
        limiters[1].hit("203.0.113.9", "votes")
        limiters[0].check("203.0.113.9", "votes")  # checking counts nothing
        limiters[1].record("203.0.113.9")  # an accepted vote, counted after the fact
        with pytest.raises(RateLimited, match=r"too many votes from this client \(3 per 60 s\); try again in"):
            limiters[0].hit("203.0.113.9", "votes")  # the third was taken on the other replica
        limiters[1].hit("198.51.100.7", "votes")  # another client is not affected
        fwd.stop()  # the store is unreachable: each replica limits on its own meanwhile, and keeps serving
        for _ in range(3):
            limiters[0].hit("192.0.2.1", "votes")
        with pytest.raises(RateLimited):
            limiters[0].hit("192.0.2.1", "votes")
    finally:
        fwd.close()
    assert isinstance(make_limiter(VoteStore(tmp_path / "one-process.db"), "votes", 3), SlidingWindowLimiter)


# -- real replicas -------------------------------------------------------------------------------------
@dataclass
class Log:
    cast: list[tuple[str, str, str, str]] = field(default_factory=list)  # acknowledged (prompt, a, b, winner)
    errors: list[str] = field(default_factory=list)
    store_down: int = 0  # votes answered with the store-down message (then sent again)
    replicas: set[str] = field(default_factory=set)  # the load balancer's cookie values seen
    lock: threading.Lock = field(default_factory=threading.Lock)


def new_client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def vote_once(client, log: Log, rng: random.Random, *, retry_s: float = 60) -> None:
    """What a voter does: a random prompt, both answers, a vote; a vote refused because the store is down
    is sent again (the battle is kept) until it is stored."""
    prompt = client.predict("any", "any", api_name="/random_prompt")
    job = client.submit(prompt, api_name="/send")
    job.result(timeout=120)
    status = job.outputs()[-1][2]
    if "complete" not in status:
        raise RuntimeError(f"battle: {status}")
    api = rng.choice(list(VOTE_APIS))
    deadline = time.monotonic() + retry_s
    status, reveal = client.predict(api_name=api)[:2]
    while STORE_DOWN in status and time.monotonic() < deadline:
        with log.lock:
            log.store_down += 1
        time.sleep(0.5)
        status, reveal = client.predict(api_name=api)[:2]
    m = REVEAL_RE.search(reveal if isinstance(reveal, str) else "")
    if "Thanks" not in status or m is None:
        raise RuntimeError(f"vote: {status}")
    with log.lock:
        log.cast.append((prompt, m.group(1), m.group(2), VOTE_APIS[api]))


def voter(url: str, rounds: int, seed: int, log: Log, until: threading.Event | None = None) -> None:
    rng = random.Random(seed)
    client = None
    for _ in range(rounds):
        if until is not None and until.is_set():
            break
        try:
            if client is None:
                client = new_client(url)
                with log.lock:
                    log.replicas.add(client.cookies.get("CODEARENA_REPLICA", "?"))
            vote_once(client, log, rng)
        except Exception as exc:  # noqa: BLE001 - counted; a voter whose replica died reloads the page
            with log.lock:
                log.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            client = None


def run_voters(url: str, n: int, rounds: int, log: Log, seed: int = 0,
               until: threading.Event | None = None) -> list[threading.Thread]:
    """``n`` voters of ``rounds`` battles each (fewer once ``until`` is set)."""
    threads = [threading.Thread(target=voter, args=(url, rounds, seed + i, log, until), daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    return threads


def stored_votes(url: str) -> Counter:
    rows = sql(url, "SELECT prompt, model_a, model_b, winner FROM battles WHERE source = 'human'")
    return Counter(rows)


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    """3 replicas behind HAProxy, on a fresh database reached through a forwarder we can cut."""
    pytest.importorskip("gradio_client")
    require_postgres()
    hard = require_shared("arena-hard-v0.1")
    tmp = tmp_path_factory.mktemp("replicas")
    toml = write_replay_models(tmp / "models.toml", hard / "model_answer", hard / "question.jsonl", MODELS,
                               chars_per_s=20000)
    with fresh_database() as url:
        fwd = TcpForwarder()
        fwd.start()
        deployment = Deployment(tmp, fwd.url(url), toml, hard / "question.jsonl", 3, "--leaderboard-refresh", "1")
        try:
            yield deployment, url, fwd
        finally:
            deployment.close()
            fwd.close()


def test_every_acknowledged_vote_is_stored_whichever_replica_took_it(arena) -> None:
    deployment, url, _ = arena
    log = Log()
    for t in run_voters(deployment.url, 9, 3, log):
        t.join(timeout=300)
    assert log.errors == []
    assert len(log.cast) == 27
    assert not Counter(log.cast) - stored_votes(url)  # nothing acknowledged is missing
    assert log.replicas == {"r0", "r1", "r2"}  # the load balancer spread the sessions over all three
    # one replica published the leaderboard of every vote for all of them
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shared = sql(url, "SELECT version FROM arena_shared WHERE key = 'leaderboard'")
        if shared and shared[0][0] == 27:
            break
        time.sleep(0.5)
    assert shared == [(27,)]


def test_a_replica_killed_mid_load_loses_no_acknowledged_vote(arena) -> None:
    deployment, url, _ = arena
    before = sum(stored_votes(url).values())
    log = Log()
    threads = run_voters(deployment.url, 9, 4, log, seed=100)
    deadline = time.monotonic() + 120
    while len(log.cast) < 8 and time.monotonic() < deadline:
        time.sleep(0.1)
    acked_at_kill = len(log.cast)
    deployment.kill(1)  # SIGKILL, mid-load
    for t in threads:
        t.join(timeout=300)
    assert log.errors  # the killed replica's voters lost the battle they were in, and reloaded
    assert not deployment.replicas[1].alive and deployment.replicas[0].alive and deployment.replicas[2].alive
    assert len(log.cast) > acked_at_kill + 5  # the other replicas kept serving
    stored = stored_votes(url)
    assert not Counter(log.cast) - stored  # nothing acknowledged is lost
    # what is stored beyond the acknowledged votes: at most the votes in flight on the killed replica
    assert sum(stored.values()) - before - len(log.cast) <= 9


def test_a_store_outage_is_an_error_on_the_page_and_the_arena_recovers(arena) -> None:
    deployment, url, fwd = arena
    client = new_client(deployment.url)
    prompt = client.predict("any", "any", api_name="/random_prompt")
    job = client.submit(prompt, api_name="/send")
    job.result(timeout=120)
    assert "complete" in job.outputs()[-1][2]
    before = stored_votes(url)
    log = Log()
    # The voters keep voting until after the outage, however fast their battles are.
    enough = threading.Event()
    threads = run_voters(deployment.url, 6, 1000, log, seed=200, until=enough)
    deadline = time.monotonic() + 120
    while len(log.cast) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    fwd.stop()  # PostgreSQL unreachable: open connections drop, new ones are refused
    try:
        status = client.predict(api_name="/vote_a")[0]
        assert STORE_DOWN in status and "vote again" in status  # a clear error, not a silent loss
        assert "Error" in status
        time.sleep(3)
    finally:
        fwd.start()  # the server is back; no replica is restarted
    status, reveal = client.predict(api_name="/vote_a")[:2]  # the same battle takes its vote now
    assert "Thanks" in status
    time.sleep(2)  # the voters' refused votes go through too
    enough.set()
    for t in threads:
        t.join(timeout=300)
    assert log.store_down > 0  # the voters' own votes during the outage were refused with the message, too
    m = REVEAL_RE.search(reveal)
    mine = (prompt, m.group(1), m.group(2), "model_a")
    stored = stored_votes(url)
    assert stored[mine] - before[mine] == 1  # stored once, though it was sent twice
    assert not Counter(log.cast) - stored  # every vote acknowledged during and after the outage is kept
    assert len(log.cast) >= 15, log.errors  # the voters went on once the store was back
    assert all(before[k] <= stored[k] for k in before)  # votes acknowledged before the outage are all there
