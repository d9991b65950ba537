"""The endpoint pool's rules on a hand-driven clock: least busy first, down endpoints left out and probed
after a doubling backoff, a success resetting it, and the models file's base_urls."""

from __future__ import annotations

import threading

import pytest

from serving.backends.pool import EndpointPool, PoolPolicy
from serving.models import ModelsFileError, load_models

A, B, C = "http://a/v1", "http://b/v1", "http://c/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pool(*urls: str, retry_s: float = 2.0, retry_max_s: float = 16.0) -> tuple[EndpointPool, Clock]:
    clock = Clock()
    return EndpointPool(list(urls or (A, B)), PoolPolicy(retry_s=retry_s, retry_max_s=retry_max_s),
                        clock=clock), clock


def state(p: EndpointPool) -> dict[str, str]:
    return {s.url: s.state for s in p.snapshot()}


def test_least_busy_endpoint_first_and_sequential_requests_alternate():
    p, _ = pool(A, B, C)
    first = p.acquire()
    second = p.acquire()
    third = p.acquire()
    assert {first.url, second.url, third.url} == {A, B, C}  # each busy one is passed over
    second.release()
    again = p.acquire()
    assert again.url == second.url  # the only one with nothing in flight
    for lease in (first, third, again):
        lease.release()
    picks = []
    for _ in range(6):  # all idle: round robin, not always the first
        lease = p.acquire()
        picks.append(lease.url)
        lease.release()
    assert set(picks[:3]) == {A, B, C} and picks[:3] == picks[3:]


def test_failed_endpoint_is_left_out_until_its_backoff_then_probed():
    p, clock = pool()
    lease = p.acquire()
    dead = lease.url
    lease.release(f"cannot reach {dead}")
    (alive,) = {A, B} - {dead}
    status = {s.url: s for s in p.snapshot()}[dead]
    assert (status.state, status.failed, status.last_error) == ("down", 1, f"cannot reach {dead}")
    assert status.retry_in_s == pytest.approx(2.0)
    for _ in range(3):
        lease = p.acquire()
        assert lease.url == alive and not lease.trial
        lease.release()
    assert p.due_probes() == []  # not yet: the backoff runs
    clock.now += 2.0
    assert p.due_probes() == [dead]
    assert state(p)[dead] == "probing" and p.due_probes() == []  # claimed once
    p.probe_result(dead, f"cannot reach {dead}")  # still dead: the wait doubles
    assert {s.url: s for s in p.snapshot()}[dead].retry_in_s == pytest.approx(4.0)
    clock.now += 4.0
    assert p.due_probes() == [dead]
    p.probe_result(dead, "")  # it answers again
    assert state(p) == {A: "healthy", B: "healthy"}
    served = set()
    for _ in range(2):
        lease = p.acquire()
        served.add(lease.url)
        lease.release()
    assert served == {A, B}


def test_backoff_doubles_to_its_cap_and_a_success_resets_it():
    policy = PoolPolicy(retry_s=1.0, retry_max_s=5.0)
    assert [policy.wait_s(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    p, clock = pool(A, B, retry_s=1.0, retry_max_s=5.0)
    for _ in range(4):
        lease = p.acquire(exclude={B})
        lease.release("HTTP 503")
        clock.now += 10
    assert {s.url: s.failures_in_row for s in p.snapshot()}[A] == 4
    lease = p.acquire(exclude={B})  # every other endpoint excluded: a trial of the down one
    assert lease.url == A and lease.trial
    lease.answered()
    lease.release()
    status = {s.url: s for s in p.snapshot()}[A]
    assert (status.state, status.failures_in_row, status.served) == ("healthy", 0, 1)
    lease = p.acquire(exclude={B})
    lease.release("HTTP 503")
    assert {s.url: s for s in p.snapshot()}[A].retry_in_s == pytest.approx(1.0)  # from the start again


def test_a_probe_alone_does_not_reset_the_backoff():
    """An endpoint that lists its models but fails every request must not be retried at full rate."""
    p, clock = pool(A, B)
    for expected in (2.0, 4.0, 8.0):
        lease = p.acquire(exclude={B})
        lease.release("HTTP 500")
        assert {s.url: s for s in p.snapshot()}[A].retry_in_s == pytest.approx(expected)
        clock.now += expected
        assert p.due_probes() == [A]
        p.probe_result(A, "")


def test_when_every_endpoint_is_down_the_soonest_due_is_tried():
    p, clock = pool(A, B)
    la = p.acquire(exclude={B})
    la.release("down a")
    clock.now += 1.0
    lb = p.acquire(exclude={A})
    lb.release("down b")
    assert state(p) == {A: "down", B: "down"}
    assert p.due_probes() == []  # none healthy: requests probe themselves
    lease = p.acquire()
    assert (lease.url, lease.trial) == (A, True)  # A's wait ends first
    lease.cancel()
    assert p.acquire(exclude={A, B}) is None  # this request has tried them all


def test_busy_and_bad_requests_do_not_take_an_endpoint_down_and_cancel_counts_nothing():
    p, _ = pool(A, B)
    lease = p.acquire(exclude={B})
    lease.release("HTTP 429 (rate limited)", fault=False)
    status = {s.url: s for s in p.snapshot()}[A]
    assert (status.state, status.failed, status.last_error) == ("healthy", 0, "HTTP 429 (rate limited)")
    lease = p.acquire(exclude={B})
    lease.cancel()
    lease.release("ignored: already over")  # only the first ending counts
    status = {s.url: s for s in p.snapshot()}[A]
    assert (status.in_flight, status.served, status.failed) == (0, 0, 0)


def test_counters_hold_under_threads():
    p, _ = pool(A, B, C)

    def work() -> None:
        for i in range(500):
            lease = p.acquire()
            if i % 50 == 0:
                lease.release("HTTP 502", fault=False)
            else:
                lease.release()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = p.snapshot()
    assert sum(s.in_flight for s in snap) == 0
    assert sum(s.served for s in snap) == 8 * 490
    assert all(s.state == "healthy" for s in snap)


def test_bad_pools_and_policies_are_refused():
    with pytest.raises(ValueError, match="at least one endpoint"):
        EndpointPool([])
    with pytest.raises(ValueError, match="listed twice"):
        EndpointPool([A, A])
    with pytest.raises(ValueError, match="retry_s must be a positive"):
        PoolPolicy(retry_s=0)
    with pytest.raises(ValueError, match="at least retry_s"):
        PoolPolicy.from_options({"endpoint_retry_s": 5, "endpoint_retry_max_s": 1})
    assert PoolPolicy.from_options({"endpoint_retry_s": 90}).retry_max_s == 90


ENTRY = '[[models]]\nname = "pool"\nbackend = "openai"\nmodel = "m"\n'


def test_models_file_base_urls(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text(ENTRY + f'base_urls = ["{A}/", "{B}"]\nconcurrency = 4\n[models.options]\n'
                    'endpoint_retry_s = 0.5\n', encoding="utf-8")
    spec = load_models(path)["pool"]
    assert (spec.base_urls, spec.base_url, spec.concurrency) == ((A, B), None, 4)


@pytest.mark.parametrize(("extra", "message"), [
    (f'base_urls = ["{A}"]\nbase_url = "{B}"\n', "not both"),
    ("base_urls = []\n", "is empty"),
    (f'base_urls = ["{A}", "{A}/"]\n', "lists a server twice"),
    ('base_urls = ["127.0.0.1:8000"]\n', r"http:// or https:// URLs"),
    (f'base_urls = "{A}"\n', "field 'base_urls' must be list"),
    (f'base_urls = ["{A}"]\n[models.options]\nendpoint_retry_s = -1\n', "retry_s must be a positive"),
])
def test_models_file_bad_base_urls(tmp_path, extra, message):
    path = tmp_path / "models.toml"
    path.write_text(ENTRY + extra, encoding="utf-8")
    with pytest.raises(ModelsFileError, match=message):
        load_models(path)


def test_base_urls_only_for_openai_compatible_backends(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text(f'[[models]]\nname = "p"\nbackend = "anthropic"\nmodel = "m"\nbase_urls = ["{A}"]\n',
                    encoding="utf-8")
    with pytest.raises(ModelsFileError, match="'base_urls' is for backend openai"):
        load_models(path)


def test_the_readme_pool_example_parses(tmp_path):
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Large models", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "models.toml"
    path.write_text(block, encoding="utf-8")
    spec = load_models(path)["qwen-coder-32b"]
    assert spec.base_urls == ("http://gpu-a:8000/v1", "http://gpu-b:8000/v1") and spec.concurrency == 32
    assert PoolPolicy.from_options(spec.options) == PoolPolicy(retry_s=2, retry_max_s=60)


def test_a_missing_key_is_the_models_problem_not_the_endpoints(monkeypatch):
    import asyncio

    from serving.backends import make_backend
    from serving.backends.base import BackendError, ModelSpec

    monkeypatch.delenv("CODEARENA_NO_SUCH_KEY", raising=False)
    backend = make_backend(ModelSpec(name="p", backend="openai", model="m", base_urls=(A, B),
                                     api_key_env="CODEARENA_NO_SUCH_KEY"))
    assert backend.availability() == (False, "environment variable CODEARENA_NO_SUCH_KEY (api_key_env) is not set")
    with pytest.raises(BackendError, match="CODEARENA_NO_SUCH_KEY"):
        asyncio.run(backend.complete([{"role": "user", "content": "hi"}]))
    assert [(e.state, e.in_flight, e.failed) for e in backend.endpoints()] == [("healthy", 0, 0)] * 2
