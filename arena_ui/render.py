"""What the page shows of untrusted text (model answers, prompts): Markdown, never raw HTML.

An answer is written by a model, and a replayed or remote model can write anything: a full-screen
``<div style="position:fixed">`` over the other answer, a ``<form>`` that posts elsewhere, an ``<img>`` that
calls home before the vote (a tracking pixel with the arena as Referer), ``display:none`` text the voter never
sees. Gradio's own sanitiser keeps style attributes and remote images, so the text is made inert here, before
it reaches the browser:

- outside code, ``<`` becomes ``&lt;``: every tag shows as the text it is, so no element, attribute or style
  from an answer exists in the page; inside fenced blocks and inline code Markdown already shows ``<`` as is;
- Markdown images (``![alt](url)``) become plain text, so no remote resource is fetched by showing an answer.

The page's Content-Security-Policy (``arena_ui.http``) is the second wall: no image, font, frame or form
target outside the arena's own origin.
"""

from __future__ import annotations

import re

# Text left as is must be code for the page's Markdown renderer (Gradio uses marked) too, or raw HTML would
# slip through: so what counts as code here is never more than what marked takes as code. A fence opens
# where marked opens one (a backtick fence's info string has no backtick) and closes at the first line marked
# would close it on (the fence, then any run of fence characters); an inline code span stays on one line
# and is not opened by an escaped backtick. Where the two disagree the text is escaped: a stray "&lt;" in
# odd code is a small price; HTML from a model in the page is not.
_FENCE_OPEN = re.compile(r"^[ ]{0,3}(`{3,}(?=[^`\n]*(?:\n|$))|~{3,})", re.M)
_INLINE_CODE = re.compile(r"(?<![\\`])(`+)(?!`)([^\n]+?)(?<!`)\1(?!`)")


def _fenced_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    pos = 0
    while True:
        m = _FENCE_OPEN.search(text, pos)
        if m is None:
            return spans
        fence = m.group(1)
        close = re.compile(rf"^[ ]{{0,3}}{re.escape(fence)}[~`]*[ \t]*$", re.M)
        line_end = text.find("\n", m.end())
        if line_end < 0:
            spans.append((m.start(), len(text)))
            return spans
        c = close.search(text, line_end + 1)
        end = len(text) if c is None else c.end()
        spans.append((m.start(), end))
        pos = end


def _inert_prose(text: str) -> str:
    out = []
    pos = 0
    for m in _INLINE_CODE.finditer(text):
        out.append(_inert_plain(text[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_inert_plain(text[pos:]))
    return "".join(out)


def _inert_plain(text: str) -> str:
    # "![" -> "!\[": the bracket is escaped, so Markdown sees no image (and shows the alt text and URL).
    return text.replace("<", "&lt;").replace("![", "!\\[")


def safe_markdown(text: str | None) -> str:
    """``text`` as Markdown that renders without any HTML element or remote resource of its own."""
    if not text:
        return text or ""
    out = []
    pos = 0
    for start, end in _fenced_spans(text):
        out.append(_inert_prose(text[pos:start]))
        out.append(text[start:end])
        pos = end
    out.append(_inert_prose(text[pos:]))
    return "".join(out)


def safe_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Chat messages (OpenAI format) ready for a ``gr.Chatbot``: every content made inert."""
    return [{"role": m["role"], "content": safe_markdown(m["content"])} for m in messages]
