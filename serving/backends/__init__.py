"""Backends by name. Each lives in its own module and is imported only when a spec asks for it, so a
machine without llama-cpp (or without vllm) can still use the others."""

from __future__ import annotations

import importlib

from serving.backends.base import Backend, BackendError, Completion, ModelSpec, SamplingParams

# backend name -> (module, class)
BACKENDS: dict[str, tuple[str, str]] = {
    "llamacpp": ("serving.backends.llamacpp", "LlamaCppBackend"),
    "openai": ("serving.backends.openai", "OpenAIBackend"),
    "anthropic": ("serving.backends.anthropic", "AnthropicBackend"),
    "vllm": ("serving.backends.vllm", "VLLMBackend"),
    "replay": ("serving.backends.replay", "ReplayBackend"),
}


def make_backend(spec: ModelSpec) -> Backend:
    """The backend for one models.toml entry (not started: clients and weights load on first use)."""
    try:
        module_name, class_name = BACKENDS[spec.backend]
    except KeyError:
        raise ValueError(f"model {spec.name!r}: unknown backend {spec.backend!r}; "
                         f"known: {', '.join(BACKENDS)}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(spec.name, f"backend {spec.backend!r} cannot be imported here ({exc})") from exc
    return getattr(module, class_name)(spec)


__all__ = ["BACKENDS", "Backend", "BackendError", "Completion", "ModelSpec", "SamplingParams", "make_backend"]
