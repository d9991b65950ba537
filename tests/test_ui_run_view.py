"""What the run panels say (arena_ui.run_view): outputs fenced so nothing in them closes the fence, our own
words for each outcome, which blocks ran."""

from __future__ import annotations

import re

from arena_ui.run_view import blocks_text, fenced, idle_markdown, run_markdown, status_text
from serving.execution import extract_code
from votes.runs import RUN_STATUSES, BattleRun, CodeRun, RunLimits


def _fence_spans(markdown: str) -> list[str]:
    """The bodies of fenced blocks as CommonMark closes them (a closing line of at least as many backticks)."""
    out, lines, i = [], markdown.split("\n"), 0
    while i < len(lines):
        m = re.match(r"^(`{3,})", lines[i])
        if not m:
            i += 1
            continue
        fence, body, i = m.group(1), [], i + 1
        while i < len(lines) and not re.match(rf"^{fence}`*\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        out.append("\n".join(body))
        i += 1
    return out


def test_an_output_cannot_close_its_fence() -> None:
    nasty = "```\n````\n<img src=x>\n```````\nend"
    block = fenced(nasty)
    assert block.startswith("````````text\n")  # one more backtick than the longest run inside
    assert _fence_spans(block) == [nasty]
    assert fenced("plain").startswith("```text\nplain\n```")


def test_a_run_shows_what_ran_how_it_ended_and_its_outputs() -> None:
    run = CodeRun(language="cpp", status="runtime_error", exit_code=None, signal="SIGSEGV", stdout="partial\n",
                  stderr="```\n<b>x</b>\n", wall_s=0.12, cpu_s=0.1, compile_s=1.5, blocks=(0, 2))
    md = run_markdown(BattleRun(side="model_a", turn=1, run=run, queued_s=2.0))
    assert md.startswith("Ran **C++** (blocks 1, 3 of the answer) · **failed: killed by SIGSEGV**")
    assert "compiled in 1.50 s" in md and "waited 2.00 s" in md
    assert _fence_spans(md) == ["partial", "```\n<b>x</b>"]
    # everything outside the fences is ours: no tag from the run reaches the page
    outside = re.sub(r"^(`{3,})text\n.*?^\1$", "", md, flags=re.S | re.M)
    assert "<" not in outside


def test_every_status_has_words_and_limits_are_named() -> None:
    limits = RunLimits(wall_s=2.0, memory_mb=128)
    for status in RUN_STATUSES:
        assert status_text(CodeRun(language="python", status=status, limits=limits))
    assert "2 s time limit" in status_text(CodeRun(language="python", status="timeout", limits=limits))
    assert "128 MB" in status_text(CodeRun(language="python", status="memory_limit", limits=limits))
    not_run = run_markdown(BattleRun(side="model_b", turn=1, run=CodeRun(
        language="go", status="unavailable", stderr="go is not installed")))
    assert "not run" in not_run and "go is not installed" in _fence_spans(not_run)[0]


def test_idle_panels_say_what_would_run_or_why_nothing_can() -> None:
    limits = RunLimits()
    two = extract_code("```python\nx = 1\n```\ntext\n```python\nprint(x)\n```")
    assert "**Python** code (blocks 1, 2)" in idle_markdown(two, frozenset({"python"}), limits)
    assert "Nothing to run" in idle_markdown(extract_code("just words"), None, limits)
    ruby = extract_code("```ruby\nputs 1\n```")
    assert "no runner on this arena" in idle_markdown(ruby, frozenset({"python"}), limits)
    page = extract_code("```html\n<p>hi</p>\n```")
    assert "HTML page" in idle_markdown(page, None, limits)
    assert blocks_text((0,)) == "block 1" and blocks_text(()) == ""
