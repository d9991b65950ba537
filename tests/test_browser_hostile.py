"""Answers and prompts are untrusted: a model (or a replay file) that writes HTML must not take over the page.

Each payload the hardening issue found is replayed into a real battle in headless Chromium: an overlay over
the answer panel, a form posting to another host, a tracking pixel, a Markdown image, hidden text, and the
same in the prompt. The "other host" is a real HTTP server on another loopback port that records every
request, so a request that leaves the page is seen. Then the page's Content-Security-Policy is checked as the
second wall: an image injected by script into the page is refused by the browser.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from arena_ui.replay_config import write_replay_models
from tests.test_browser_arena import browser_page  # noqa: F401 - the fixture
from tests.test_ui_app import running_arena

SECRET = "HIDDEN-FROM-THE-VOTER"


@contextmanager
def elsewhere() -> Iterator[tuple[str, list[str]]]:
    """A server standing for another site: (base URL, paths it was asked for)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.end_headers()
            self.wfile.write(b"GIF89a")

        do_GET = do_POST = _record

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def hostile_answer(other: str, tag: str) -> str:
    return (
        f"Here is the answer {tag}.\n\n"
        f'<div style="position:fixed;inset:0;z-index:2147483647;background:red" id="overlay-{tag}">gotcha</div>\n\n'
        f'<form action="{other}/steal-{tag}" method="post"><button id="steal-{tag}">Click for the answer</button>'
        f"</form>\n\n"
        f'<img src="{other}/track-{tag}.gif">\n\n'
        f"![pixel]({other}/md-{tag}.gif)\n\n"
        f'<span style="display:none">{SECRET}-{tag}</span>\n\n'
        "```python\nprint(1 < 2)  # code keeps its < as is\n```\n"
    )


def write_hostile_replay(folder: Path, other: str) -> tuple[Path, Path, str]:
    prompt = f'Is 1 < 2? <img src="{other}/prompt.gif"> Answer in Python.'
    questions = folder / "question.jsonl"
    questions.write_text(json.dumps({"question_id": "q1", "category": "hostile",
                                     "turns": [{"content": prompt}]}) + "\n", encoding="utf-8")
    answers = folder / "model_answer"
    answers.mkdir()
    for model, tag in (("alpha-model", "a"), ("beta-model", "b")):
        row = {"question_id": "q1", "model_id": model,
               "choices": [{"turns": [{"content": hostile_answer(other, tag)}]}]}
        (answers / f"{model}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    toml = write_replay_models(folder / "models.toml", answers, questions, ["alpha-model", "beta-model"])
    return toml, questions, prompt


def test_hostile_answers_and_prompt_render_inert_and_nothing_leaves_the_page(browser_page, tmp_path):  # noqa: F811
    page = browser_page
    with elsewhere() as (other, requested):
        toml, questions, prompt = write_hostile_replay(tmp_path, other)
        with running_arena(tmp_path, toml, questions) as (arena, url):
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) else None)
            violations: list[str] = []
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            response = page.goto(url)
            csp = response.headers.get("content-security-policy", "")
            assert "img-src 'self'" in csp and "form-action 'self'" in csp and "object-src 'none'" in csp
            assert response.headers.get("referrer-policy") == "no-referrer"

            page.locator("#prompt-input textarea").fill(prompt)
            page.locator("#send").click()
            page.locator("#status", has_text="Both answers are complete").wait_for()
            page.wait_for_timeout(1000)  # anything an answer could load has had time to ask

            for side, tag in (("#answer-a", None), ("#answer-b", None)):
                panel = page.locator(side)
                # no element of the answers' making: no overlay, form, image, styled or hidden element
                for selector in ("form", "img", "[style*='position']", "[style*='display']", "[id^='overlay-']"):
                    assert panel.locator(f".message-row {selector}, .message {selector}").count() == 0, selector
                text = panel.inner_text()
                # the would-be hidden text and the tags are shown to the voter as the text they are
                assert SECRET in text and "<div style=" in text and "<form action=" in text, tag
                assert "1 < 2" in text  # inside code, < is shown as is (not as &lt;)
            assert requested == [], f"the page asked another host for {requested}"
            assert outside == [], f"requests left the arena's origin: {outside}"
            assert violations == [], f"the page itself broke the CSP: {violations}"
            # the battle still works: vote, reveal
            page.locator("#vote-a").click()
            page.locator("#reveal", has_text="Model A:").wait_for()
            assert arena.store.count() == 1

            # second wall: an image injected into the page by script is refused by the browser's CSP
            blocked = page.evaluate("""(src) => new Promise((resolve) => {
                document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective),
                                          {once: true});
                const img = document.createElement('img'); img.src = src; document.body.appendChild(img);
                setTimeout(() => resolve('not blocked'), 3000);
            })""", f"{other}/injected.gif")
            assert blocked.startswith("img-src"), blocked
            assert requested == []


def test_uploads_are_refused_and_large_bodies_cut_off(tmp_path, shared_data):
    import urllib.error
    import urllib.request

    hard = shared_data("arena-hard-v0.1")
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl",
                               ["gpt-4o-2024-05-13", "gemma-2-9b-it"])
    with running_arena(tmp_path, toml, hard / "question.jsonl") as (_, url):
        body = b"--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.bin\"\r\n\r\n" + b"0" * 4096 + \
            b"\r\n--x--\r\n"
        req = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": "multipart/form-data; boundary=x"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 403 and b"no file uploads" in err.value.read()
        # a 4 MiB body is refused from its headers, before any of it is read
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /gradio_api/queue/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 4194304\r\n\r\n{")
            assert sock.recv(64).startswith(b"HTTP/1.1 413")
        # ordinary pages still come, with the policy on them
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
