"""Flag answers that reveal which model wrote them ("I am Claude", "developed by OpenAI").

Only the answers are checked, never the prompt, and code (fenced blocks and inline spans) is removed first:
an answer that writes ``import openai`` or ``client = Anthropic()`` names a library, not itself. A flag keeps
the vote (the voter did nothing wrong) but lets the ratings drop or down-weight it.
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


def _alt(names: Iterable[str]) -> str:
    # Longest first so "GPT-4o" wins over "GPT"; word boundaries keep "Phi" out of "Philadelphia".
    uniq = sorted({n for n in names if n}, key=len, reverse=True)
    return "|".join(re.escape(n) for n in uniq)


def _self_patterns(names: Iterable[str]) -> list[re.Pattern[str]]:
    who = _alt(names)
    makers = _alt(MAKERS)
    return [
        # "I am Claude", "I'm ChatGPT", "my name is Qwen", "as Gemini, I ..."
        re.compile(rf"\b(?:I\s*am|I'm|I’m|my name is|call me|this is)\s+(?:an?\s+)?(?:AI\s+)?(?:model\s+)?"
                   rf"(?:called\s+|named\s+)?(?:{who})\b", re.I),
        re.compile(rf"^\s*as\s+(?:{who})\s*,", re.I | re.M),
        # "developed by OpenAI", "trained by Anthropic", "I was created by Meta"
        re.compile(rf"\b(?:developed|created|trained|built|made|designed|programmed)\s+by\s+(?:the\s+)?"
                   rf"(?:{makers})\b", re.I),
        re.compile(rf"\b(?:an?\s+)?(?:AI|language model|assistant|model)\s+(?:from|by)\s+(?:{makers})\b", re.I),
        re.compile(rf"\b(?:{makers})\s*(?:'s|’s)?\s+(?:AI\s+)?(?:language\s+)?(?:model|assistant)\b[^.\n]*"
                   rf"\b(?:I|me)\b", re.I),
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
