"""Write a tiny randomly-initialised Llama (HF format, with tokenizer and chat template) to a folder.

Runs inside the vLLM environment (transformers, tokenizers and torch come with vllm); nothing is
downloaded. Usage: python build_tiny_llama.py OUT_DIR

The tokenizer is word-level over a fixed vocabulary, so every generated token decodes to a visible
word: a random model's answer is never empty or a broken UTF-8 fragment. The vocabulary declares no
end-of-sequence token and the config none either, so generation always runs to max_tokens, which makes
token counts exact.
"""

from __future__ import annotations

import keyword
import string
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
WORDS = [
    *keyword.kwlist,
    *string.ascii_lowercase,
    *string.digits,
    *"()[]{}:.,=+-*/<>#'\"",
    "system", "user", "assistant", "print", "len", "range", "int", "str", "list", "dict", "self",
    "write", "a", "function", "that", "returns", "the", "sum", "of", "two", "numbers", "reverse",
    "string", "sort", "prime", "fizzbuzz", "python", "code", "test", "value", "result", "x", "y", "n",
]
# ChatML, the format most code models use; vLLM renders it with the tokenizer's template.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab: dict[str, int] = {}
    for token in [*SPECIAL, *WORDS]:
        vocab.setdefault(token, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation()])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build(out: Path) -> None:
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,  # head_dim 64: vLLM's CPU attention rejects 16
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        eos_token_id=None,
        tie_word_embeddings=True,
        # Far above the usual 0.02: peaked logits make the answer depend on the prompt, so a test can
        # tell the chats of a batch apart; near-uniform logits would give every prompt the same text.
        initializer_range=0.5,
    )
    torch.manual_seed(0)  # the same weights on every run
    model = LlamaForCausalLM(config).to(torch.float32)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_tiny_llama.py OUT_DIR")
    build(Path(sys.argv[1]))
    print(f"tiny llama written to {sys.argv[1]}")
