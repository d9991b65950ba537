"""The arena in headless Chromium, as a user meets it: pick a prompt, watch both answers stream, vote, see
the reveal, find the vote in the store; a backend that dies shows a clear message; the leaderboard tab shows
the ranking. Every byte the browser receives before the vote is scanned for the models' names.

Skipped when /usr/bin/chromium is absent, failed instead when CODEARENA_REQUIRE_BROWSER=1 (CI).
Set CODEARENA_SCREENSHOT_DIR to save battle.png and leaderboard.png (docs/img is made this way).
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
from pathlib import Path

import pytest

from arena_ui.replay_config import write_replay_models
from tests.test_ui_app import MODELS, broken_openai_entry, http_server_then_closed, running_arena

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000


def _require_browser() -> None:
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} is absent (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "playwright is not installed (pip install playwright)"
    if problem:
        if os.environ.get("CODEARENA_REQUIRE_BROWSER") == "1":
            pytest.fail(problem + " and CODEARENA_REQUIRE_BROWSER=1")
        pytest.skip(problem)


@pytest.fixture
def browser_page(tmp_path):
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "chromium-profile"), executable_path=CHROMIUM,
                                                   headless=True, args=ARGS, viewport={"width": 1400, "height": 1000})
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            ctx.close()


class Traffic:
    """Every byte the page receives over the network, via the Chrome DevTools protocol: whole bodies of
    finished responses, and the chunks of streams (Gradio's server-sent events) as they arrive."""

    def __init__(self, page) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.chunks: list[str] = []
        self.streaming: set[str] = set()
        self.unreadable: list[str] = []
        self.cdp.on("Network.responseReceived", self._response)
        self.cdp.on("Network.dataReceived", self._data)
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.on("Network.webSocketFrameReceived", lambda ev: self.chunks.append(ev["response"]["payloadData"]))
        self.cdp.send("Network.enable")

    def _response(self, ev: dict) -> None:
        r = ev["response"]
        self.chunks.append(json.dumps(r.get("headers", {})))
        if "event-stream" in r.get("mimeType", ""):
            try:
                got = self.cdp.send("Network.streamResourceContent", {"requestId": ev["requestId"]})
            except Exception:  # noqa: BLE001 - already finished: its body is read on loadingFinished
                return
            self.streaming.add(ev["requestId"])
            self.chunks.append(base64.b64decode(got.get("bufferedData", "")).decode("utf-8", "replace"))

    def _data(self, ev: dict) -> None:
        if ev["requestId"] in self.streaming and ev.get("data"):
            self.chunks.append(base64.b64decode(ev["data"]).decode("utf-8", "replace"))

    def _finished(self, ev: dict) -> None:
        if ev["requestId"] in self.streaming:
            return
        try:
            got = self.cdp.send("Network.getResponseBody", {"requestId": ev["requestId"]})
        except Exception as exc:  # noqa: BLE001 - e.g. a redirect: recorded, so a gap is visible
            self.unreadable.append(str(exc))
            return
        body = got["body"]
        self.chunks.append(base64.b64decode(body).decode("utf-8", "replace") if got.get("base64Encoded") else body)

    def received(self) -> str:
        return "\n".join(self.chunks)


def _saw(text: str, names: list[str]) -> list[str]:
    # JSON escapes nothing in these names, but be safe about case.
    low = text.lower()
    return [n for n in names if n.lower() in low]


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("CODEARENA_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


@pytest.fixture
def hard(shared_data) -> Path:
    return shared_data("arena-hard-v0.1")


def test_battle_vote_reveal_and_stored_without_leaking_names(browser_page, tmp_path, hard):
    page = browser_page
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl", MODELS,
                               chars_per_s=4000)
    with running_arena(tmp_path, toml, hard / "question.jsonl") as (arena, url):
        traffic = Traffic(page)
        page.goto(url)
        page.locator("#random-prompt").click()
        prompt_box = page.locator("#prompt-input textarea")
        page.wait_for_function("() => document.querySelector('#prompt-input textarea').value.length > 0")
        prompt = prompt_box.input_value()
        page.locator("#send").click()
        # streaming: an answer grows while the votes are still disabled
        page.locator("#answer-a .message-row, #answer-a [data-testid='bot']").first.wait_for()
        page.locator("#vote-a:not([disabled])").wait_for()
        page.locator("#status", has_text="Both answers are complete").wait_for()
        assert page.locator("#answer-a").inner_text().strip() and page.locator("#answer-b").inner_text().strip()
        assert page.locator("#reveal").inner_text().strip().startswith("The models")
        page.wait_for_timeout(500)  # let the event stream close, so its body is complete
        before = traffic.received() + page.content()
        # the scan does see the streamed content (a plain run of the prompt: no JSON or HTML escapes in it)
        plain = max(re.findall(r"[A-Za-z0-9 ]+", prompt), key=len)
        assert plain in traffic.received(), plain
        assert _saw(before, MODELS) == [], "a model name reached the browser before the vote"
        tokens = arena.registry.tokens()
        assert len(tokens) == 1 and tokens[0] not in before  # gr.State stays on the server

        page.locator("#vote-b").click()
        reveal = page.locator("#reveal")
        reveal.locator("text=Model A:").wait_for()
        row = arena.store.battles_frame().iloc[0]
        text = reveal.inner_text()
        assert row["model_a"] in text and row["model_b"] in text
        assert row["winner"] == "model_b" and row["mode"] == "anonymous" and row["prompt"] == prompt
        assert page.locator("#vote-a").is_disabled()
        page.wait_for_timeout(500)
        # positive control: after the vote, the same scan finds the revealed names
        assert set(_saw(traffic.received(), MODELS)) >= {row["model_a"], row["model_b"]}

        page.locator("#new-battle").click()
        page.wait_for_function("() => !document.querySelector('#reveal').innerText.includes('Model A:')")
        assert arena.store.count() == 1


def test_code_in_answers_is_highlighted_with_a_copy_button(browser_page, tmp_path, hard):
    page = browser_page
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl", MODELS,
                               chars_per_s=4000)
    with running_arena(tmp_path, toml, hard / "question.jsonl") as (arena, url):
        page.goto(url)
        page.locator("#prompt-input textarea").fill('Write a python class "Circle" that inherits from class "Shape"')
        page.locator("#send").click()
        page.locator("#vote-a:not([disabled])").wait_for()
        for side in ("#answer-a", "#answer-b"):
            block = page.locator(f"{side} .code_wrap", has_text="class Circle").first
            block.wait_for()
            # highlighted: the code is split into styled tokens, not one plain text node
            assert block.locator("pre code span.token").count() > 5
            assert block.locator("button[title='copy']").count() == 1  # the code block's copy button
        _screenshot(page, "battle.png")


def test_backend_failure_shows_a_clear_message(browser_page, tmp_path, hard):
    page = browser_page
    with http_server_then_closed() as (port, shut):
        toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl",
                                   MODELS[:1], extra=broken_openai_entry(port))
        with running_arena(tmp_path, toml, hard / "question.jsonl") as (arena, url):
            shut()  # the remote model dies after startup
            page.goto(url)
            page.locator("#prompt-input textarea").fill("Write a function that reverses a linked list in C.")
            page.locator("#send").click()
            status = page.locator("#status", has_text="failed")
            status.wait_for()
            text = status.inner_text()
            assert re.search(r"Model [AB] failed", text) and "cannot take a vote" in text
            assert "remote-broken" not in text
            for vote in ("#vote-a", "#vote-b", "#vote-tie", "#vote-bothbad"):
                assert page.locator(vote).is_disabled()
            assert arena.store.count() == 0


def test_leaderboard_tab_shows_the_ranking(browser_page, tmp_path, hard):
    from gradio_client import Client

    page = browser_page
    toml = write_replay_models(tmp_path / "models.toml", hard / "model_answer", hard / "question.jsonl", MODELS)
    rng = random.Random(7)
    with running_arena(tmp_path, toml, hard / "question.jsonl", votes_per_minute=0, battles_per_minute=0,
                       leaderboard_refresh_s=3600) as (arena, url):
        client = Client(url, verbose=False)
        for _ in range(24):
            client.submit(client.predict("any", "any", api_name="/random_prompt"), api_name="/send").result(60)
            client.predict(api_name=rng.choice(["/vote_a", "/vote_b", "/vote_a", "/vote_tie"]))
        arena.leaderboard.refresh()
        page.goto(url)
        page.get_by_role("tab", name="Leaderboard").click()
        from playwright.sync_api import expect

        table = page.locator("#leaderboard")
        for model in MODELS:
            expect(table).to_contain_text(model)
        page.locator("#leaderboard-info", has_text="24 anonymous human votes").wait_for()
        page.locator("#leaderboard-plot-0 .js-plotly-plot, #leaderboard-plot-0 .plotly").first.wait_for()
        _screenshot(page, "leaderboard.png")
