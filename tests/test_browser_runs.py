"""Run buttons in headless Chromium: run both sides' Python, see the outputs, vote, find the runs with the vote;
an HTML answer renders in a sandboxed frame whose script runs there but cannot read the arena page or reach
the network.

Needs Chromium (see tests/test_browser_arena.py); the runs need the sandbox (skipped without, failed when
CODEARENA_REQUIRE_SANDBOX=1), the HTML page does not.
"""

from __future__ import annotations

from tests.sandbox_helpers import require_runner
from tests.test_browser_arena import browser_page  # noqa: F401 - the fixture
from tests.test_browser_hostile import elsewhere
from tests.test_ui_app import running_arena
from tests.test_ui_runs import ANSWER_A, ANSWER_B, MODELS, PROMPT, write_code_battle
from votes import VoteStore

STDOUT = {MODELS[0]: "16\n25", MODELS[1]: "1,4,9,16,25\ndone"}


def test_run_both_sides_see_the_outputs_vote_and_the_runs_are_stored(browser_page, tmp_path):  # noqa: F811
    require_runner("python")
    page = browser_page
    toml, questions = write_code_battle(tmp_path, {MODELS[0]: ANSWER_A, MODELS[1]: ANSWER_B})
    with running_arena(tmp_path, toml, questions) as (arena, url):
        arena.runs.wait_probed()
        page.goto(url)
        assert page.locator("#run-a").is_disabled() and page.locator("#run-b").is_disabled()
        page.locator("#prompt-input textarea").fill(PROMPT)
        page.locator("#send").click()
        page.locator("#status", has_text="Both answers are complete").wait_for()
        page.locator("#run-a:not([disabled])").wait_for()
        page.locator("#run-b:not([disabled])").wait_for()
        assert "in a sandbox" in page.locator("#run-output-a").inner_text()
        page.locator("#run-a").click()
        page.locator("#run-b").click()
        page.locator("#run-output-a", has_text="exit code 0").wait_for()
        page.locator("#run-output-b", has_text="exit code 0").wait_for()
        out_a = page.locator("#run-output-a").inner_text()
        out_b = page.locator("#run-output-b").inner_text()
        before_vote = page.content()
        assert all(m not in before_vote for m in MODELS), "a model name reached the page before the vote"
        # voting stays possible, and is done after the runs
        page.locator("#vote-b").click()
        page.locator("#reveal", has_text="Model A:").wait_for()
        page.locator("#run-a[disabled]").wait_for()  # the battle is closed: no more runs
        assert "exit code 0" in page.locator("#run-output-a").inner_text()  # the outputs stay after the vote

        (battle,) = list(VoteStore(arena.store.path).iter_battles())
        assert battle.winner == "model_b"
        assert STDOUT[battle.model_a] in out_a and STDOUT[battle.model_b] in out_b
        assert sorted(r.side for r in battle.runs) == ["model_a", "model_b"]
        by_side = {r.side: r.run for r in battle.runs}
        assert STDOUT[battle.model_a] in by_side["model_a"].stdout
        assert STDOUT[battle.model_b] in by_side["model_b"].stdout
        assert all(r.status == "ok" and r.language == "python" and r.sandbox for r in by_side.values())

        page.locator("#new-battle").click()
        page.wait_for_function("() => !document.querySelector('#run-output-a').innerText.includes('exit code')")


HTML_PAGE = ("""```html
<!DOCTYPE html>
<html><head><title>answer page</title></head>
<body>
<h1 id="title">static text</h1>
<p id="parent">not tried</p>
<p id="fetch">not tried</p>
<p id="same-origin-fetch">not tried</p>
<script>
document.getElementById('title').textContent = 'the script ran';
let seen;
try { seen = 'read: ' + window.parent.document.title; } catch (e) { seen = 'blocked: ' + e.name; }
document.getElementById('parent').textContent = seen;
const mark = (id, text) => { document.getElementById(id).textContent = text; };
fetch('OTHER/fetch').then(() => mark('fetch', 'fetch went out'), () => mark('fetch', 'fetch refused'));
fetch('/config').then(() => mark('same-origin-fetch', 'arena fetched'),
                      () => mark('same-origin-fetch', 'arena fetch refused'));
new Image().src = 'OTHER/image.gif';
const s = document.createElement('script'); s.src = 'OTHER/script.js'; document.head.appendChild(s);
"""
             # One line of the page, split only in the source.
             "const l = document.createElement('link'); l.rel = 'stylesheet'; l.href = 'OTHER/style.css'; "
             "document.head.appendChild(l);\n"
             """try { navigator.sendBeacon('OTHER/beacon', 'x'); } catch (e) {}
try { window.top.location = 'OTHER/top'; } catch (e) {}
try { window.open('OTHER/popup'); } catch (e) {}
</script>
</body></html>
```
""")


def test_an_html_answer_renders_in_a_sandboxed_frame_without_network(browser_page, tmp_path):  # noqa: F811
    page = browser_page
    with elsewhere() as (other, requested):
        answer = HTML_PAGE.replace("OTHER", other)
        toml, questions = write_code_battle(tmp_path, {MODELS[0]: answer, MODELS[1]: answer}, language="html")
        with running_arena(tmp_path, toml, questions) as (arena, url):
            arena.runs.wait_probed()
            done: list[str] = []  # requests of the frame that got an answer
            refused: list[tuple[str, str]] = []  # and those the browser stopped, with why
            page.on("requestfinished", lambda r: done.append(r.url) if r.frame != page.main_frame else None)
            page.on("requestfailed", lambda r: refused.append((r.url, r.failure or "")) if r.frame != page.main_frame
                    else None)
            response = page.goto(url)
            csp = response.headers["content-security-policy"]
            # the arena page's own policy is not loosened for the frames
            assert "frame-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
            page.locator("#prompt-input textarea").fill(PROMPT)
            page.locator("#send").click()
            page.locator("#run-a:not([disabled])", has_text="Show page").wait_for()
            page.locator("#run-a").click()
            frame_el = page.locator("#run-page-a iframe")
            frame_el.wait_for()
            assert frame_el.get_attribute("sandbox") == "allow-scripts"
            inner = page.frame_locator("#run-page-a iframe")
            inner.locator("#title", has_text="the script ran").wait_for()  # rendered, and its script ran
            assert inner.locator("#parent").inner_text() == "blocked: SecurityError"  # no same origin
            inner.locator("#fetch", has_text="fetch refused").wait_for()
            inner.locator("#same-origin-fetch", has_text="arena fetch refused").wait_for()
            page.wait_for_timeout(1000)  # anything else it asked for has had time to go out
            assert requested == [], f"the answer's page reached another host: {requested}"
            # the frame loaded its own page and nothing else; what it tried to load, the browser refused (CSP)
            assert done and all("/answer-page/" in u for u in done), done
            assert {u.rsplit("/", 1)[1] for u, _ in refused} >= {"script.js", "style.css", "image.gif"}, refused
            assert all(why == "csp" for _, why in refused), refused
            # the arena page is still whole: the vote works
            page.locator("#vote-tie").click()
            page.locator("#reveal", has_text="Model A:").wait_for()
            (battle,) = list(VoteStore(arena.store.path).iter_battles())
            (run,) = battle.runs
            assert run.side == "model_a" and run.run.status == "rendered" and "the script ran" in run.run.code


def test_a_hostile_program_output_shows_as_text(browser_page, tmp_path):  # noqa: F811
    require_runner("python")
    page = browser_page
    with elsewhere() as (other, requested):
        # The output tries to close the panel's fence, then be HTML and Markdown (an image that calls home).
        program = ("print('````')\nprint('```')\n"
                   f"print('<img src=\"{other}/pixel.gif\"><b id=\"bold\">bold</b>')\n"
                   f"print('![x]({other}/md.gif)')\nprint('$$x^2$$')\n")
        answer = f"```python\n{program}```\n"
        toml, questions = write_code_battle(tmp_path, {MODELS[0]: answer, MODELS[1]: answer})
        with running_arena(tmp_path, toml, questions) as (arena, url):
            arena.runs.wait_probed()
            page.goto(url)
            page.locator("#prompt-input textarea").fill(PROMPT)
            page.locator("#send").click()
            page.locator("#run-a:not([disabled])").wait_for()
            page.locator("#run-a").click()
            panel = page.locator("#run-output-a")
            panel.locator("text=exit code 0").wait_for()
            page.wait_for_timeout(500)
            text = panel.inner_text()
            assert "<img src=" in text and "<b id=\"bold\">bold</b>" in text and "![x](" in text and "$$x^2$$" in text
            assert panel.locator("img, b#bold, .katex").count() == 0
            assert requested == []
