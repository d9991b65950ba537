"""The runnable code of an answer: its fenced blocks, their languages, and what a person would run.

An answer is Markdown. Its fenced blocks (``` or ~~~, with an info string like ``python`` or ``c++``)
are found in order; tags are normalised (py, python3 -> python; js, node -> javascript; c++, cc -> cpp;
rs -> rust; sh, shell -> bash; ...). A block without a tag takes the prompt's language when the block
looks like code, else a language guessed from the code. The chosen language's blocks are joined in the
order the answer shows them, as someone copying them into one file would; :class:`Extraction` says which
blocks ran. A self-contained web page (an html block, or html + css + javascript blocks) is an
:class:`Extraction` of kind "html": :func:`html_document` builds the one page to render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Tag (lower-case) -> canonical language. Tags not listed keep their own (lower-cased) name.
ALIASES: dict[str, str] = {
    "py": "python", "python": "python", "python3": "python", "py3": "python",
    "js": "javascript", "javascript": "javascript", "node": "javascript", "nodejs": "javascript",
    "mjs": "javascript", "cjs": "javascript",
    "ts": "typescript", "typescript": "typescript",
    "c": "c", "h": "c",
    "cpp": "cpp", "c++": "cpp", "cc": "cpp", "cxx": "cpp", "hpp": "cpp",
    "rs": "rust", "rust": "rust",
    "java": "java",
    "sh": "bash", "bash": "bash", "shell": "bash", "zsh": "bash",
    "go": "go", "golang": "go",
    "html": "html", "htm": "html", "xhtml": "html",
    "css": "css",
}
# Tags that are never code to run: program output, data, prose.
NOT_CODE: frozenset[str] = frozenset({
    "text", "txt", "plaintext", "plain", "output", "out", "console", "terminal", "log", "json", "yaml", "yml",
    "toml", "ini", "csv", "xml", "diff", "patch", "markdown", "md", "sql", "dockerfile", "makefile",
})
SUFFIXES: dict[str, str] = {
    ".py": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".ts": "typescript",
    ".c": "c", ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp", ".c++": "cpp", ".rs": "rust", ".java": "java",
    ".sh": "bash", ".bash": "bash", ".go": "go", ".html": "html", ".htm": "html", ".css": "css",
}
MARKDOWN_SUFFIXES: frozenset[str] = frozenset({".md", ".markdown", ".mdown", ".mkd"})
WEB_LANGUAGES: frozenset[str] = frozenset({"html", "css", "javascript"})

# A fence opens with 3+ backticks or tildes (up to 3 spaces of indent) and closes with the same character,
# at least as many, and nothing but spaces after (CommonMark's rule).
_FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")


def normalise_language(tag: str | None) -> str | None:
    """The canonical name for a fence tag or a --language value; None for an empty tag."""
    if tag is None:
        return None
    tag = tag.strip().lower()
    if not tag:
        return None
    tag = tag.split()[0].strip("{}.")  # "python title=x.py", "{.python}"
    return ALIASES.get(tag, tag)


def language_for_suffix(path: str | Path) -> str | None:
    return SUFFIXES.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block, in answer order (index 0 first)."""

    index: int
    tag: str | None  # the fence's info string as written (first word), None when untagged
    language: str | None  # what it was taken for: canonical name, or None when it is no code to run
    code: str
    guessed: bool  # the language came from the prompt's hint or a guess, not from a tag


@dataclass(frozen=True)
class Extraction:
    """What to run (or render) of an answer.

    kind is "code" (run ``code`` as ``language``), "html" (render :func:`html_document` of it) or "none"
    (no block to run). ``blocks`` are the indices of the blocks that make up ``code``.
    """

    kind: str
    language: str | None
    code: str
    blocks: tuple[int, ...]
    all_blocks: tuple[CodeBlock, ...]
    reason: str = ""  # for "none": why there is nothing to run

    def blocks_of(self, *languages: str) -> tuple[CodeBlock, ...]:
        return tuple(b for b in self.all_blocks if b.language in languages)


def fenced_blocks(markdown: str) -> list[tuple[str | None, str]]:
    """(first word of the info string or None, body) of each fenced block, in order.

    An unclosed fence runs to the end of the answer, as Markdown renders it (a truncated answer still
    shows its code).
    """
    blocks: list[tuple[str | None, str]] = []
    lines = markdown.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m or (m.group("fence")[0] == "`" and "`" in m.group("info")):
            i += 1
            continue
        fence, indent = m.group("fence"), len(m.group("indent"))
        info = m.group("info").strip()
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body: list[str] = []
        i += 1
        while i < len(lines) and not close.match(lines[i]):
            line = lines[i]
            # Content lines lose up to the fence's own indentation (CommonMark).
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            i += 1
        i += 1  # the closing fence (or past the end)
        blocks.append((info.split()[0] if info else None, "\n".join(body)))
    return blocks


# Signals of each language in code, with weights; the best total wins. Only for untagged code.
_SIGNALS: dict[str, tuple[tuple[str, int], ...]] = {
    "python": ((r"^\s*def \w+\(.*\)\s*(->.*)?:\s*$", 3), (r"^\s*(import \w+|from [\w.]+ import )", 3),
               (r"^\s*class \w+(\(.*\))?:\s*$", 3), (r"\bprint\(", 1), (r"if __name__ == ['\"]__main__['\"]", 5),
               (r"^\s*(elif|for \w+ in .*:|while .*:$)", 2), (r"\bself\.", 1)),
    "javascript": ((r"\bconsole\.log\(", 3), (r"^\s*(const|let|var) \w+\s*=", 2), (r"\bfunction\s*\w*\s*\(", 2),
                   (r"=>", 1), (r"\brequire\(['\"]", 3), (r"\bdocument\.", 2), (r"^\s*export (default )?", 1)),
    "typescript": ((r"^\s*(interface|type) \w+\s*(=|\{)", 4), (r"\w\s*:\s*(string|number|boolean|void)\b", 3),
                   (r"\bas (string|number|const)\b", 2)),
    "c": ((r"#include\s*<(stdio|stdlib|string|math)\.h>", 4), (r"\bprintf\s*\(", 2), (r"\bint main\s*\(", 2),
          (r"\bmalloc\s*\(", 2)),
    "cpp": ((r"#include\s*<(iostream|vector|string|map|algorithm|bits/stdc\+\+\.h)>", 5), (r"\bstd::", 3),
            (r"using namespace std", 4), (r"\bcout\s*<<", 3)),
    "rust": ((r"\bfn main\s*\(\)", 5), (r"\blet mut\b", 3), (r"\bprintln!\(", 4), (r"\bimpl\b.*\{", 2),
             (r"^\s*use std::", 4), (r"\bfn \w+\(.*\)\s*->", 2)),
    "java": ((r"\bpublic (final )?class \w+", 4), (r"public static void main\s*\(", 5), (r"System\.out\.print", 4),
             (r"^\s*import java\.", 4)),
    "go": ((r"^\s*package main\b", 5), (r"\bfunc main\s*\(\)", 5), (r"\bfmt\.Print", 4), (r":=", 1)),
    "bash": ((r"^#!\s*/(usr/)?bin/(env )?(ba)?sh", 6), (r"^\s*echo\b", 2), (r"^\s*(fi|done|esac)\s*$", 3),
             (r"\$\{?\w+\}?", 1), (r"^\s*if \[", 3)),
    "html": ((r"<!DOCTYPE html", 6), (r"<html[\s>]", 5), (r"<(body|div|head|canvas|script)[\s>]", 2)),
    "css": ((r"^\s*[.#]?[\w-]+(\s*[,>+~]\s*[.#]?[\w-]+)*\s*\{\s*$", 2), (r"^\s*[\w-]+\s*:\s*[^;]+;\s*$", 1)),
}
_COMPILED = {lang: tuple((re.compile(p, re.MULTILINE), w) for p, w in sig) for lang, sig in _SIGNALS.items()}
_CODE_LIKE = re.compile(r"[(){}\[\];=]|^\s*(def|class|import|function|fn|int|return|for|while|if)\b", re.MULTILINE)


def guess_language(code: str) -> str | None:
    """The language the code most looks like, or None when nothing points anywhere."""
    scores = {lang: sum(w for rx, w in sigs if rx.search(code)) for lang, sigs in _COMPILED.items()}
    # C++ and TypeScript contain C and JavaScript: let the superset win when its own signals are there.
    if scores["cpp"] >= 3:
        scores["c"] = 0
    if scores["typescript"] >= 3:
        scores["typescript"] += scores["javascript"]
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] >= 2 else None


def looks_like_code(text: str) -> bool:
    return bool(_CODE_LIKE.search(text))


def _block_language(tag: str | None, code: str, hint: str | None) -> tuple[str | None, bool]:
    if tag is not None:
        lang = normalise_language(tag)
        return (None if lang in NOT_CODE else lang), False
    guess = guess_language(code)
    if hint is not None and (guess is None or guess == hint) and looks_like_code(code):
        return hint, True
    return guess, True


def _join(blocks: list[CodeBlock]) -> str:
    return "\n\n".join(b.code.rstrip("\n") for b in blocks) + "\n"


def extract_code(answer: str, *, language_hint: str | None = None,
                 runnable: frozenset[str] | None = None) -> Extraction:
    """The code of a Markdown answer to run (or the page to render).

    language_hint is the prompt's language (any alias). runnable, if given, is the set of languages that
    have a runner; a language outside it can still be chosen (the caller reports it as unsupported) but
    one inside it is preferred.
    """
    hint = normalise_language(language_hint)
    raw = fenced_blocks(answer)
    if not raw:
        return Extraction("none", None, "", (), (), reason="the answer has no fenced code block")
    blocks = []
    for i, (tag, code) in enumerate(raw):
        lang, guessed = _block_language(tag, code, hint)
        if not code.strip():
            lang = None
        blocks.append(CodeBlock(index=i, tag=tag, language=lang, code=code, guessed=guessed))
    all_blocks = tuple(blocks)
    code_blocks = [b for b in blocks if b.language is not None]
    if not code_blocks:
        return Extraction("none", None, "", (), all_blocks,
                          reason="the answer's blocks hold no code (only output, data or empty blocks)")
    languages = {b.language for b in code_blocks}
    if "html" in languages and (hint in ("html", "css") or languages <= WEB_LANGUAGES):
        web = [b for b in code_blocks if b.language in WEB_LANGUAGES]
        return Extraction("html", "html", html_document(web), tuple(b.index for b in web), all_blocks)
    chosen = _choose_language(code_blocks, hint, runnable)
    picked = [b for b in code_blocks if b.language == chosen]
    return Extraction("code", chosen, _join(picked), tuple(b.index for b in picked), all_blocks)


_INSTALL = re.compile(r"^\s*(\$\s*)?(sudo\s+)?(pip3?|npm|yarn|apt(-get)?|brew|cargo|go|conda)\s+(install|add|get)\b",
                      re.MULTILINE)


def _choose_language(blocks: list[CodeBlock], hint: str | None, runnable: frozenset[str] | None) -> str:
    """The hint's language if a block has it; else the language with the most code (runnable ones first).

    Shell blocks that only install packages ("pip install x") are how-to, not the program.
    """
    langs = {b.language for b in blocks if b.language not in ("html", "css")}
    if hint in langs:
        return hint  # type: ignore[return-value]
    size: dict[str, int] = {}
    for b in blocks:
        if b.language is None or b.language in ("html", "css"):
            continue
        weight = len(b.code)
        if b.language == "bash" and _INSTALL.search(b.code):
            weight //= 10
        size[b.language] = size.get(b.language, 0) + weight
    if not size:  # only css and html-alongside-something blocks: the html wins as a page elsewhere
        return blocks[0].language or "text"
    return max(size, key=lambda lang: ((runnable is None or lang in runnable), size[lang]))


def extract_source(text: str, *, path: str | Path | None = None, language: str | None = None) -> Extraction:
    """A file to run: a Markdown answer (by suffix, or when it has a fence) or one plain source file.

    A plain file is one block; its language is --language, else its suffix, else a shebang or a guess.
    """
    suffix = Path(path).suffix.lower() if path is not None else ""
    lang = normalise_language(language)
    is_markdown = suffix in MARKDOWN_SUFFIXES or (suffix not in SUFFIXES and
                                                   any(_FENCE_OPEN.match(ln) for ln in text.splitlines()))
    if is_markdown:
        return extract_code(text, language_hint=lang)
    if not text.strip():
        return Extraction("none", None, "", (), (), reason="the file is empty")
    lang = lang or (language_for_suffix(path) if path is not None else None) or guess_language(text)
    block = CodeBlock(index=0, tag=None, language=lang, code=text, guessed=language is None)
    if lang is None:
        return Extraction("none", None, "", (), (block,),
                          reason="cannot tell the file's language: pass --language")
    if lang == "html":
        return Extraction("html", "html", html_document([block]), (0,), (block,))
    return Extraction("code", lang, text if text.endswith("\n") else text + "\n", (0,), (block,))


# The page may run its own scripts and styles; it may load nothing (no network, no exfiltration through
# images or fonts) except data: URIs. The UI's iframe adds sandbox="allow-scripts" on top.
DEFAULT_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
               "img-src data: blob:; font-src data:; media-src data: blob:; connect-src 'none'; "
               "form-action 'none'; base-uri 'none'")


def html_document(blocks: list[CodeBlock] | tuple[CodeBlock, ...], *, csp: str | None = DEFAULT_CSP) -> str:
    """One self-contained HTML page from an answer's html, css and javascript blocks (in answer order).

    A full document keeps its own structure; styles go before </head>, scripts before </body>. A
    fragment is wrapped in a minimal page. With csp set, a Content-Security-Policy meta tag comes first
    in <head>, so the page cannot reach the network even if the frame around it would let it.
    """
    html = "\n".join(b.code for b in blocks if b.language == "html")
    css = "\n".join(b.code for b in blocks if b.language == "css")
    js = "\n".join(b.code for b in blocks if b.language == "javascript")
    meta = f'<meta http-equiv="Content-Security-Policy" content="{csp}">' if csp else ""
    style = f"<style>\n{css}\n</style>\n" if css.strip() else ""
    script = f"<script>\n{js}\n</script>\n" if js.strip() else ""
    if not re.search(r"<html[\s>]", html, re.IGNORECASE):
        return (f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n{meta}\n{style}</head>\n<body>\n'
                f"{html}\n{script}</body>\n</html>\n")
    doc = html
    head = re.search(r"<head[^>]*>", doc, re.IGNORECASE)
    if head:
        doc = doc[: head.end()] + "\n" + meta + doc[head.end():]
    else:
        opening = re.search(r"<html[^>]*>", doc, re.IGNORECASE)
        assert opening is not None
        doc = doc[: opening.end()] + f"\n<head>{meta}</head>" + doc[opening.end():]
    if style:
        end_head = re.search(r"</head>", doc, re.IGNORECASE)
        doc = doc[: end_head.start()] + style + doc[end_head.start():] if end_head else style + doc
    if script:
        end_body = list(re.finditer(r"</body>", doc, re.IGNORECASE))
        doc = doc[: end_body[-1].start()] + script + doc[end_body[-1].start():] if end_body else doc + script
    return doc
