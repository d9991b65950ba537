"""vLLM backend: offline batched generation with an in-process ``vllm.LLM``, for duels on a GPU.

vLLM lives in its own environment (official wheels pin pillow>=13, gradio 6 needs pillow<13): install
this project's core into it (``pip install -e .``) and run ``codearena duel`` / ``generate`` there.

``spec.model`` is a local HF-format folder or a hub id. ``spec.options`` are passed to ``vllm.LLM``
unchanged (``dtype``, ``max_model_len``, ``gpu_memory_utilization``, ``tensor_parallel_size``, ...),
except ``chat_template``, which overrides the tokenizer's template for every chat.

One engine thread owns the ``vllm.LLM`` (created on first use) and runs every generation, so the
asyncio loops stay free. Requests that arrive while it is busy are merged into its next ``LLM.chat``
call: concurrent ``complete()`` calls batch on their own, and ``complete_many()`` is always one call.
The engine is offline, so ``stream()`` yields the whole answer once it is generated.
"""

from __future__ import annotations

import asyncio
import importlib.util
import queue
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from serving.backends.base import Backend, BackendError, Completion, Message, ModelSpec, SamplingParams

if TYPE_CHECKING:  # vllm is importable only inside its own environment
    import vllm

NOT_INSTALLED = "vllm is not installed in this environment; see README 'vLLM'"

# Options consumed here rather than by the vllm.LLM constructor.
_CHAT_OPTIONS = frozenset({"chat_template"})


def _looks_like_path(model: str) -> bool:
    """A hub id is ``org/name``; anything absolute, dotted, home-based or existing is a folder."""
    return model.startswith(("/", ".", "~")) or Path(model).expanduser().exists()


@dataclass
class _Job:
    """Conversations submitted together; answered together, in order, through ``future``."""

    conversations: list[list[Message]]
    params: SamplingParams
    future: Future[list[Completion]] = field(default_factory=Future)


_STOP = None  # queue sentinel: the engine thread shuts the engine down and exits


class VLLMBackend(Backend):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        # The engine thread and its own queue (a thread started after aclose() must not take the stop
        # sentinel meant for the one before it).
        self._worker: tuple[threading.Thread, queue.SimpleQueue[_Job | None]] | None = None
        self._worker_lock = threading.Lock()
        self.engine_calls = 0  # LLM.chat calls made; fewer than requests when batching merged them

    # -- engine thread -----------------------------------------------------------------------------
    def _check_spec(self) -> None:
        if "sha256" in self.spec.options:
            # models.toml's sha256 checks one weights file; refusing beats silently skipping the check.
            raise BackendError(self.name, "sha256 is not supported for vLLM models (a folder or hub id, "
                               "not one weights file): remove it from the models file")
        model = self.spec.model
        if not _looks_like_path(model):
            return
        folder = Path(model).expanduser()
        needs = "vLLM needs a Hugging Face format folder (config.json, weights, tokenizer)"
        if folder.is_file():
            raise BackendError(self.name, f"{folder} is a file: {needs}, not a GGUF file")
        if not folder.is_dir():
            raise BackendError(self.name, f"model folder {folder} not found")
        if not (folder / "config.json").is_file():
            raise BackendError(self.name, f"{folder} has no config.json: {needs}")

    def _load(self) -> vllm.LLM:
        """Tens of seconds: weights load, the KV cache is allocated, the engine process starts."""
        self._check_spec()
        if importlib.util.find_spec("vllm") is None:
            raise BackendError(self.name, NOT_INSTALLED)
        import vllm

        kwargs = {k: v for k, v in self.spec.options.items() if k not in _CHAT_OPTIONS}
        model = self.spec.model
        if _looks_like_path(model):
            model = str(Path(model).expanduser())
        try:
            return vllm.LLM(model=model, **kwargs)
        except Exception as exc:  # vLLM raises many types (ValueError, OSError, pydantic errors, ...)
            raise BackendError(self.name, f"vLLM could not load {self.spec.model}: "
                               f"{type(exc).__name__}: {exc}") from exc

    def _submit(self, job: _Job) -> Future[list[Completion]]:
        with self._worker_lock:
            if self._worker is None:
                jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
                thread = threading.Thread(target=self._serve, args=(jobs,), name=f"vllm-{self.name}",
                                          daemon=True)
                thread.start()
                self._worker = (thread, jobs)
            self._worker[1].put(job)
        return job.future

    def _serve(self, jobs_queue: queue.SimpleQueue[_Job | None]) -> None:
        llm: vllm.LLM | None = None
        try:
            while True:
                first = jobs_queue.get()
                if first is _STOP:
                    return
                jobs = [first]
                stop = False
                while True:  # take everything queued meanwhile: one engine call answers it all
                    try:
                        job = jobs_queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is _STOP:
                        stop = True
                        break
                    jobs.append(job)
                try:
                    if llm is None:
                        llm = self._load()
                    results = self._generate(llm, jobs)
                except BaseException as exc:  # any failure must reach the waiting callers, never hang them
                    error = exc if isinstance(exc, BackendError) else BackendError(
                        self.name, f"vLLM generation failed: {type(exc).__name__}: {exc}")
                    for job in jobs:
                        job.future.set_exception(error)
                else:
                    for job, result in zip(jobs, results, strict=True):
                        job.future.set_result(result)
                if stop:
                    return
        finally:
            if llm is not None:
                # Stop the engine-core process now rather than at garbage collection: frees GPU memory.
                engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
                if engine_core is not None and hasattr(engine_core, "shutdown"):
                    engine_core.shutdown()

    def _generate(self, llm: vllm.LLM, jobs: list[_Job]) -> list[list[Completion]]:
        import vllm

        conversations = [self.with_system(c) for job in jobs for c in job.conversations]
        sampling = [vllm.SamplingParams(temperature=job.params.temperature, top_p=job.params.top_p,
                                        max_tokens=job.params.max_tokens, seed=job.params.seed)
                    for job in jobs for _ in job.conversations]
        start = time.perf_counter()
        outputs = llm.chat(conversations, sampling, use_tqdm=False,
                           chat_template=self.spec.options.get("chat_template"))
        seconds = time.perf_counter() - start
        self.engine_calls += 1
        completions = []
        for out in outputs:
            best = out.outputs[0]
            completions.append(Completion(
                text=best.text,
                model=self.name,
                prompt_tokens=len(out.prompt_token_ids) if out.prompt_token_ids is not None else None,
                completion_tokens=len(best.token_ids),
                # Every answer of a batch is ready when the batch is: its latency is the batch's.
                seconds=seconds,
                finish_reason=best.finish_reason,
            ))
        results, at = [], 0
        for job in jobs:
            results.append(completions[at:at + len(job.conversations)])
            at += len(job.conversations)
        return results

    # -- Backend -----------------------------------------------------------------------------------
    def availability(self) -> tuple[bool, str]:
        # The models file's mistakes first: they need fixing whatever the environment.
        try:
            self._check_spec()
        except BackendError as exc:
            return False, exc.cause
        if importlib.util.find_spec("vllm") is None:
            return False, NOT_INSTALLED
        return True, ""

    async def complete_many(self, conversations: Sequence[list[Message]],
                            params: SamplingParams | None = None) -> list[Completion]:
        """Answers to many chats from one batched engine call, in the order given."""
        if not conversations:
            return []
        job = _Job([list(c) for c in conversations], params or self.spec.params)
        return await asyncio.wrap_future(self._submit(job))

    async def complete(self, messages: list[Message], params: SamplingParams | None = None) -> Completion:
        (completion,) = await self.complete_many([messages], params)
        return completion

    async def stream(self, messages: list[Message], params: SamplingParams | None = None) -> AsyncIterator[str]:
        # Offline engine: no token stream, so the whole answer arrives as one delta.
        completion = await self.complete(messages, params)
        if completion.text:
            yield completion.text

    async def aclose(self) -> None:
        """Stop the engine (a later call loads it again: callers may free memory for the next model)."""
        with self._worker_lock:
            worker, self._worker = self._worker, None
        if worker is None:
            return
        thread, jobs = worker
        jobs.put(_STOP)
        await asyncio.to_thread(thread.join)
