"""Flag answers that reveal which model wrote them ("I am Claude", "As an AI developed by OpenAI").

Only the answers are checked, never the prompt, and code (fenced blocks and inline spans) is removed first:
an answer that writes ``import openai`` or ``client = Anthropic()`` names a library, not itself. Only
self-identification counts: every pattern is anchored on a first-person phrase ("I am", "I'm", "I was",
"my name is", "As an AI ...", "... trained me") next to the name, so ordinary prose about models ("download
the model from Hugging Face", "a language model from OpenAI via their API") is not flagged. A flag keeps the
vote (the voter did nothing wrong) but lets the ratings drop or down-weight it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Makers and model families an answer may claim; the configured model names are added per battle.
MAKERS = ("OpenAI", "Anthropic", "Google", "Google DeepMind", "DeepMind", "Meta", "Meta AI", "Mistral AI",
          "Mistral", "Alibaba", "Alibaba Cloud", "Qwen Team", "DeepSeek", "Microsoft", "Hugging Face",
          "HuggingFace", "Cohere", "xAI", "01.AI", "Zhipu", "Moonshot")
FAMILIES = ("ChatGPT", "GPT-3.5", "GPT-4", "GPT-4o", "GPT", "Claude", "Gemini", "Bard", "Gemma", "LLaMA",
            "Llama", "Mistral", "Mixtral", "Qwen", "DeepSeek", "Phi", "Command R", "Grok", "Yi", "SmolLM")

_CODE_FENCE = re.compile(r"```.*?(?:```|$)|~~~.*?(?:~~~|$)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")

# A first-person subject that introduces what the speaker is or who made it.
_SELF = r"(?:\bI\s+am|\bI['’]m|\bI\s+was|\bI\s+have\s+been|\bI['’]ve\s+been|\bI\s*,)"
# "As an AI ...", "As a large language model ...": an "As" anchor must name what the speaker is, so "As a
# result, the Google API ..." or "As an OpenAI customer, you ..." stay unflagged.
_AS_AI = r"\bAs\s+an?\s+(?:[\w-]+\s+){0,2}?(?:AI|model|assistant|chatbot)\b"
# Words allowed between that subject and the maker: an identity noun phrase ("a large language model
# trained by"), nothing else. A verb such as "using" or "download" breaks the chain, so "I am using a model
# from OpenAI" is a statement about a tool, not about the speaker.
_FILLER = (r"(?:[\s,]+(?:an?|the|large|helpful|friendly|AI|artificial|intelligence|language|model|assistant|"
           r"chatbot|conversational|virtual|multimodal|open|open-source|text-based|created|developed|trained|"
           r"built|made|designed|programmed|released|originally|by|from|of))*")
_MAKER_VERBS = r"(?:created|developed|trained|built|made|designed|programmed)"


def _alt(names: Iterable[str]) -> str:
    # Longest first so "GPT-4o" wins over "GPT"; word boundaries keep "Phi" out of "Philadelphia".
    uniq = sorted({n for n in names if n}, key=len, reverse=True)
    return "|".join(re.escape(n) for n in uniq)


def _self_patterns(names: Iterable[str]) -> list[re.Pattern[str]]:
    who = _alt(names)
    # Makers match case-sensitively: "I'm a meta-programming fan" is not a claim to be Meta's.
    makers = f"(?-i:{_alt(MAKERS)})"
    return [
        # "I am Claude", "I'm ChatGPT", "my name is Qwen", "call me Llama", "I am an AI model called Gemini";
        # a version may follow the name at once ("I'm Qwen2.5-Coder", "I am Llama3"), where \b cannot match
        re.compile(rf"(?:\bI\s*am|\bI['’]m|\bmy\s+name\s+is|\bcall\s+me)\s+(?:an?\s+)?(?:AI\s+)?(?:model\s+)?"
                   rf"(?:called\s+|named\s+)?(?:{who})(?:\b|(?=\d))", re.I),
        # "As Gemini, I ...": the speaker takes the name and speaks in the first person in that sentence
        re.compile(rf"\bas\s+(?:{who})[\w.-]*\s*,[^.!?\n]*\b(?:I|me|my)\b", re.I),
        # "I was trained by Google", "As an AI developed by OpenAI", "I am a large language model from Meta"
        re.compile(rf"(?:{_SELF}|{_AS_AI}){_FILLER}[\s,]+(?:the\s+)?{makers}\b", re.I),
        # "OpenAI trained me", "Anthropic created me"
        re.compile(rf"\b{makers}\s+(?:has\s+)?{_MAKER_VERBS}\s+me\b", re.I),
        # "my creators at OpenAI", "my developers, Anthropic"
        re.compile(rf"\bmy\s+(?:creators?|developers?|makers?|trainers?)\b[\s,]*(?:are\s+|is\s+|at\s+|from\s+)?"
                   rf"(?:the\s+)?{makers}\b", re.I),
    ]


def strip_code(text: str) -> str:
    """The prose of a markdown answer: fenced blocks and inline code removed."""
    return _INLINE_CODE.sub(" ", _CODE_FENCE.sub(" ", text))


def find_identity_claim(answer: str, model_names: Iterable[str] = ()) -> str | None:
    """The first phrase in ``answer`` where the model names itself or its maker, or None."""
    prose = strip_code(answer or "")
    names = [*FAMILIES, *model_names]
    for pattern in _self_patterns(names):
        m = pattern.search(prose)
        if m:
            return m.group(0).strip()
    return None


def leak_flags(answer_a: str, answer_b: str, model_names: Iterable[str] = ()) -> list[str]:
    """Vote flags: ``identity_leak:model_a`` / ``identity_leak:model_b`` for each side that named itself."""
    names = list(model_names)
    flags = []
    for side, text in (("model_a", answer_a), ("model_b", answer_b)):
        if find_identity_claim(text, names):
            flags.append(f"identity_leak:{side}")
    return flags


def output_names_model(output: str, model_names: Iterable[str] = ()) -> str | None:
    """The phrase in a program's output (stdout/stderr of a run) that names a model, or None.

    An output is checked as an answer's prose is (self-identification, with the configured names added),
    and also for the battle's own model names anywhere in it: code can print what its model put into it
    (``print("written by qwen2.5-coder-0.5b")``) without any first-person phrase, and an exact configured
    name in the output tells the voter who answered just as well.
    """
    names = [n for n in model_names if n]
    claim = find_identity_claim(output or "", names)
    if claim:
        return claim
    for name in sorted(names, key=len, reverse=True):
        # Whole names only (not "gpt-4o" inside "gpt-4o-mini" or a word), case-insensitive.
        m = re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", output or "", re.I)
        if len(name) >= 3 and m:
            return m.group(0)
    return None


def run_leak_flags(outputs: Iterable[tuple[str, str]], model_names: Iterable[str] = ()) -> list[str]:
    """Vote flags for run outputs: ``identity_leak:<side>`` for each side ("model_a"/"model_b") one of whose
    outputs (``(side, stdout + stderr)`` pairs) names a model, in the order of ``leak_flags``."""
    names = list(model_names)
    leaked = {side for side, text in outputs if output_names_model(text, names)}
    return [f"identity_leak:{side}" for side in ("model_a", "model_b") if side in leaked]
