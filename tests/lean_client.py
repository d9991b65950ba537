"""A lean simulated voter for load tests and benchmarks: Gradio's queue protocol (join, then the session's event
stream) on one asyncio loop, as a browser speaks it.

Why not ``gradio_client``: it polls its message queue every 50 ms (a 0-50 ms floor under every latency it
measures), rebuilds each streamed output by diff in Python, and runs a few threads per call. With 200
simulated voters on the machine that serves them, that measured the client more than the arena. This one
skips the intermediate frames of a stream (a voter only needs the last), so its cost per event is one POST
and one parsed message.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx


class EventFailed(RuntimeError):
    """The server answered the event with an error (its message, as the page would show it)."""


@dataclass(frozen=True)
class Endpoint:
    fn_index: int
    state_inputs: tuple[bool, ...]  # per input: a gr.State (the server keeps it; the client sends null)
    state_outputs: tuple[bool, ...]


class LeanApp:
    """The app's endpoints by API name, read once from ``/config`` (through ``http``); shared by every
    session."""

    def __init__(self, base_url: str, http: httpx.AsyncClient, config: dict[str, Any]) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.prefix = config.get("api_prefix", "/gradio_api").rstrip("/")
        kinds = {c["id"]: c.get("type") for c in config["components"]}
        self.endpoints: dict[str, Endpoint] = {}
        for i, dep in enumerate(config["dependencies"]):
            name = dep.get("api_name")
            if name:
                self.endpoints["/" + name] = Endpoint(
                    dep.get("id", i), tuple(kinds.get(c) == "state" for c in dep["inputs"]),
                    tuple(kinds.get(c) == "state" for c in dep["outputs"]))

    @classmethod
    async def connect(cls, base_url: str, http: httpx.AsyncClient) -> LeanApp:
        response = await http.get(base_url.rstrip("/") + "/config")
        response.raise_for_status()
        return cls(base_url, http, response.json())

    def session(self) -> LeanSession:
        return LeanSession(self)


class LeanSession:
    """One visitor: its own session hash (so its gr.State, e.g. the battle token, lives on the server), and
    its own connections and cookies, as a browser's: a load balancer that keeps a connection on one replica
    must not see every visitor on one shared pool. ``async with``, or :meth:`aclose` when done."""

    def __init__(self, app: LeanApp) -> None:
        self.app = app
        self.session_hash = uuid.uuid4().hex[:11]
        self.http = httpx.AsyncClient(timeout=app.http.timeout, limits=httpx.Limits(max_connections=None))

    async def __aenter__(self) -> LeanSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, api_name: str, *args: Any, timeout_s: float = 900.0) -> list[Any]:
        """Run one event to its end; its outputs (gr.State outputs left out), the last frame of a stream."""
        ep = self.app.endpoints[api_name]
        data, it = [], iter(args)
        for is_state in ep.state_inputs:
            data.append(None if is_state else next(it))
        base = self.app.base_url + self.app.prefix
        join = await self.http.post(f"{base}/queue/join", json={
            "data": data, "fn_index": ep.fn_index, "session_hash": self.session_hash, "event_data": None,
            "trigger_id": None})
        join.raise_for_status()
        event_id = join.json()["event_id"]
        async with self.http.stream("GET", f"{base}/queue/data", params={"session_hash": self.session_hash},
                                    timeout=timeout_s) as stream:
            async for line in stream.aiter_lines():
                # Only the end of this event is read: the frames before it are skipped unparsed.
                if not line.startswith("data:") or "process_completed" not in line:
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") != "process_completed" or msg.get("event_id") != event_id:
                    continue
                output = msg.get("output") or {}
                if not msg.get("success", True):
                    raise EventFailed(str(output.get("error") or output))
                values = output.get("data", [])
                return [v for v, is_state in zip(values, ep.state_outputs, strict=False) if not is_state]
        raise EventFailed(f"{api_name}: the event stream ended before the event did")
