"""Serving: everything that talks to models (backends, prompts, generation, the judge, duels).

Never imports gradio: this package must run inside a vLLM environment where gradio cannot be installed.
"""
