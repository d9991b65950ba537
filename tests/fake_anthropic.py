"""A local HTTP server that speaks Anthropic's Messages API (JSON and SSE streaming), so the real
``anthropic`` client code runs in tests without the paid API. It stands in for that API only.

Behaviour is set per test: the reply text, HTTP error statuses to answer first (to exercise retries),
a chunk count after which the stream sends an ``error`` event (a mid-stream failure), and one after
which the connection just closes (a network cut).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeAnthropic:
    reply: str = "def add(a, b):\n    return a + b\n"
    fail_first: list[int] = field(default_factory=list)  # statuses to answer before succeeding
    error_after_chunks: int | None = None
    drop_after_chunks: int | None = None  # close the connection silently, as a network cut does
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeAnthropic:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append({"path": self.path, "headers": headers, "body": body})
                if self.path != "/v1/messages":
                    return self._json(404, _error("not_found_error", f"no route {self.path}"))
                if fake.fail_first:
                    status = fake.fail_first.pop(0)
                    return self._json(status, _error("overloaded_error", "Overloaded"),
                                      {"retry-after-ms": "10"})
                chunks = _chunks(fake.reply)
                if body.get("stream"):
                    return self._stream(body, chunks)
                self._json(200, {
                    "id": "msg_fake", "type": "message", "role": "assistant", "model": body["model"],
                    "content": [{"type": "text", "text": fake.reply}], "stop_reason": "end_turn",
                    "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": len(chunks)},
                })

            def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _event(self, name: str, data: dict[str, Any]) -> None:
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

            def _stream(self, body: dict[str, Any], chunks: list[str]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.end_headers()
                self._event("message_start", {"type": "message_start", "message": {
                    "id": "msg_fake", "type": "message", "role": "assistant", "content": [],
                    "model": body["model"], "stop_reason": None, "stop_sequence": None,
                    "usage": {"input_tokens": 12, "output_tokens": 1}}})
                self._event("content_block_start", {"type": "content_block_start", "index": 0,
                                                    "content_block": {"type": "text", "text": ""}})
                self._event("ping", {"type": "ping"})
                for i, chunk in enumerate(chunks):
                    if fake.error_after_chunks is not None and i == fake.error_after_chunks:
                        self._event("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                         "message": "Overloaded"}})
                        self.close_connection = True
                        return
                    if fake.drop_after_chunks is not None and i == fake.drop_after_chunks:
                        self.close_connection = True
                        return
                    self._event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                        "delta": {"type": "text_delta", "text": chunk}})
                self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
                self._event("message_delta", {"type": "message_delta",
                                               "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                               "usage": {"output_tokens": len(chunks)}})
                self._event("message_stop", {"type": "message_stop"})
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _chunks(text: str, size: int = 4) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]
