"""Extraction: which code of an answer runs, in which language, and the page an HTML answer renders."""

from __future__ import annotations

import pytest

from serving.execution.extract import (
    DEFAULT_CSP,
    extract_code,
    extract_source,
    fenced_blocks,
    guess_language,
    html_document,
    normalise_language,
)


@pytest.mark.parametrize("tag,expected", [
    ("py", "python"), ("python3", "python"), ("Python", "python"), ("js", "javascript"), ("node", "javascript"),
    ("ts", "typescript"), ("c", "c"), ("cpp", "cpp"), ("c++", "cpp"), ("cc", "cpp"), ("rs", "rust"),
    ("rust", "rust"), ("java", "java"), ("sh", "bash"), ("shell", "bash"), ("bash", "bash"), ("go", "go"),
    ("golang", "go"), ("html", "html"), ("css", "css"), ("python title=main.py", "python"), ("{.python}", "python"),
    ("", None), (None, None), ("haskell", "haskell"),
])
def test_tags_are_normalised(tag: str | None, expected: str | None) -> None:
    assert normalise_language(tag) == expected


def test_backtick_and_tilde_fences_with_their_tags_in_order() -> None:
    answer = ("Intro\n\n```python\nprint(1)\n```\n\ntext\n\n~~~js\nconsole.log(2)\n~~~\n\n"
              "````c\nint x;\n```\nstill c\n````\n")
    assert fenced_blocks(answer) == [("python", "print(1)"), ("js", "console.log(2)"), ("c", "int x;\n```\nstill c")]


def test_blocks_of_one_language_are_joined_in_order_and_named() -> None:
    answer = ("First the function:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nInstall:\n\n```bash\n"
              "pip install nothing\n```\n\nThen use it:\n\n```py\nprint(add(1, 2))\n```\n\n"
              "Output:\n\n```text\n3\n```\n")
    ex = extract_code(answer)
    assert ex.kind == "code" and ex.language == "python"
    assert ex.blocks == (0, 2)
    assert ex.code == "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n"
    assert [b.language for b in ex.all_blocks] == ["python", "bash", "python", None]


def test_an_untagged_block_takes_the_prompts_language() -> None:
    answer = "```\nx = [1, 2, 3]\nprint(sum(x))\n```\n"
    ex = extract_code(answer, language_hint="python3")
    assert (ex.kind, ex.language, ex.blocks) == ("code", "python", (0,))
    assert ex.all_blocks[0].guessed


def test_an_untagged_output_block_does_not_join_the_code() -> None:
    answer = "```python\nprint('hello world')\n```\n\nIt prints:\n\n```\nhello world\n```\n"
    ex = extract_code(answer, language_hint="python")
    assert ex.blocks == (0,) and ex.code == "print('hello world')\n"


def test_an_untagged_block_without_a_hint_is_guessed() -> None:
    answer = "```\n#include <iostream>\nint main() { std::cout << \"hi\"; }\n```\n"
    ex = extract_code(answer)
    assert ex.language == "cpp"


@pytest.mark.parametrize("code,language", [
    ("def f(x):\n    return x\n\nprint(f(1))", "python"),
    ("const x = 1;\nconsole.log(x);", "javascript"),
    ("interface P { name: string }\nconst p: P = {name: 'a'};\nconsole.log(p);", "typescript"),
    ("#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); }", "c"),
    ("#include <vector>\nint main() { std::vector<int> v; }", "cpp"),
    ("fn main() {\n    let mut x = 1;\n    println!(\"{}\", x);\n}", "rust"),
    ("public class Main {\n  public static void main(String[] a) { System.out.println(1); }\n}", "java"),
    ("package main\nimport \"fmt\"\nfunc main() { fmt.Println(1) }", "go"),
    ("#!/bin/bash\nfor f in *; do\n  echo $f\ndone", "bash"),
    ("<!DOCTYPE html>\n<html><body>hi</body></html>", "html"),
    ("just some words", None),
])
def test_language_guesses(code: str, language: str | None) -> None:
    assert guess_language(code) == language


def test_the_hint_wins_among_several_languages_else_the_most_code() -> None:
    answer = "```js\nconsole.log(1)\n```\n\n```python\nimport sys\nprint(sys.argv)\nprint('long long block')\n```\n"
    assert extract_code(answer).language == "python"
    assert extract_code(answer, language_hint="javascript").language == "javascript"
    # A runnable language is preferred over one without a runner, whatever its size.
    answer2 = "```haskell\nmain = putStrLn \"a very long haskell program indeed\"\n```\n\n```python\nprint(1)\n```\n"
    assert extract_code(answer2, runnable=frozenset({"python"})).language == "python"


def test_no_code_says_why() -> None:
    assert extract_code("Just prose, no code.").kind == "none"
    ex = extract_code("```text\n42\n```\n\n```json\n{}\n```\n")
    assert ex.kind == "none" and "no code" in ex.reason
    assert extract_code("```python\n\n```\n").kind == "none"


def test_an_unclosed_fence_runs_to_the_end() -> None:
    ex = extract_code("Here:\n```python\nprint('cut off mid-answer')\n")
    assert ex.code == "print('cut off mid-answer')\n"


def test_html_answer_becomes_one_page_with_css_and_js() -> None:
    answer = ("```html\n<!DOCTYPE html>\n<html>\n<head><title>T</title></head>\n<body><div id=\"x\"></div></body>\n"
              "</html>\n```\n\n```css\n#x { color: red; }\n```\n\n```javascript\ndocument.getElementById('x')"
              ".textContent = 'hi';\n```\n")
    ex = extract_code(answer)
    assert ex.kind == "html" and ex.blocks == (0, 1, 2)
    page = ex.code
    assert page.index("Content-Security-Policy") < page.index("<title>")
    assert page.index("#x { color: red; }") < page.index("</head>")
    assert page.index("textContent") < page.index("</body>")
    assert "default-src 'none'" in DEFAULT_CSP and "connect-src 'none'" in DEFAULT_CSP


def test_an_html_fragment_is_wrapped_into_a_page() -> None:
    ex = extract_code("```html\n<button onclick=\"go()\">Go</button>\n```\n```js\nfunction go() { alert(1) }\n```\n")
    assert ex.kind == "html"
    assert ex.code.startswith("<!DOCTYPE html>") and "<button" in ex.code and "function go()" in ex.code
    assert html_document(list(ex.all_blocks), csp=None).count("Content-Security-Policy") == 0


def test_html_next_to_a_server_program_is_code() -> None:
    answer = ("```python\nfrom flask import Flask\napp = Flask(__name__)\n\n@app.route('/')\ndef index():\n"
              "    return open('index.html').read()\n```\n\n```html\n<h1>Hi</h1>\n```\n")
    ex = extract_code(answer)
    assert ex.kind == "code" and ex.language == "python"


def test_plain_source_files_are_one_block() -> None:
    ex = extract_source("int main() { return 0; }\n", path="prog.c")
    assert (ex.kind, ex.language, ex.blocks) == ("code", "c", (0,))
    assert extract_source("print(1)", path="x.txt", language="py").language == "python"
    assert extract_source("#!/bin/sh\necho hi\n", path="script").language == "bash"
    assert extract_source("", path="a.py").kind == "none"
    assert extract_source("some words", path="notes").kind == "none"


def test_a_markdown_file_is_an_answer() -> None:
    ex = extract_source("Answer:\n\n```\nprint(2)\n```\n", path="answer.md", language="python")
    assert ex.language == "python" and ex.code == "print(2)\n"
    # No Markdown suffix, but fences: still an answer.
    assert extract_source("```js\nconsole.log(1)\n```\n", path="answer.txt").language == "javascript"
