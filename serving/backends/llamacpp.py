"""In-process GGUF models on CPU with llama-cpp-python.

llama.cpp is not thread-safe per model, so calls run one after the other on a worker thread; tokens cross
from that thread into the caller's event loop through a queue. It is ONE thread for every loaded model:
llama.cpp's CPU backend uses OpenMP, which keeps a spinning thread team per calling thread, and measured
here (2 cores, SmolLM2) a second calling thread cut generation from ~120 to ~70-80 tok/s for both. Two
models on one CPU gain nothing from running at once anyway: each already uses every core.
Loaded models are cached per (weights file, n_ctx, n_threads): two specs over the same weights share
memory. Cancelling the consumer (or a timeout) stops generation at the next token.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.backends._limits import LoopSemaphore
from serving.backends.base import Backend, BackendError, Completion, Message, ModelSpec, SamplingParams
from serving.weights import BUILTIN_PREFIX, WeightsError, locate, resolve_weights


@dataclass
class Engine:
    llama: Any  # llama_cpp.Llama
    path: Path
    worker: ThreadPoolExecutor  # max_workers=1: the one thread allowed to touch ``llama``


# The single llama.cpp thread (see the module docstring); loads run there too.
WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp")
_engines: dict[tuple[str, int, int], Engine] = {}
_engines_lock = threading.Lock()


def _engine_key(spec: ModelSpec, path: Path) -> tuple[str, int, int]:
    n_ctx = int(spec.options.get("n_ctx", 4096))
    n_threads = int(spec.options.get("n_threads") or min(os.cpu_count() or 2, 8))
    return str(path.resolve()), n_ctx, n_threads


def load_engine(spec: ModelSpec) -> Engine:
    """The shared Llama for this spec's weights, loading (and verifying) them on first use. Blocking; not
    to be called from the llama.cpp worker thread itself."""
    try:
        path = resolve_weights(spec.model, spec.options.get("sha256"))
    except WeightsError as exc:
        raise BackendError(spec.name, str(exc)) from exc
    key = _engine_key(spec, path)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise BackendError(spec.name, "llama-cpp-python is not installed (pip install "
                                   "'codearena[local]')") from exc
            try:
                llama = WORKER.submit(Llama, model_path=key[0], n_ctx=key[1], n_threads=key[2],
                                      verbose=False).result()
            except Exception as exc:  # llama.cpp raises ValueError/RuntimeError for unreadable GGUFs
                raise BackendError(spec.name, f"llama.cpp cannot load {path}: {exc}") from exc
            engine = Engine(llama, path, WORKER)
            _engines[key] = engine
        return engine


def loaded_engines() -> int:
    return len(_engines)


@atexit.register
def close_engines() -> None:
    """Free every loaded model. At exit this runs before interpreter teardown, where llama-cpp-python's
    own ``__del__`` would fail noisily (its C bindings are already gone)."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    WORKER.shutdown(wait=True, cancel_futures=True)
    for engine in engines:
        engine.llama.close()


class _Done:
    def __init__(self, finish_reason: str | None) -> None:
        self.finish_reason = finish_reason


class LlamaCppBackend(Backend):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._limit = LoopSemaphore(spec.concurrency)
        self._engine: Engine | None = None

    def availability(self) -> tuple[bool, str]:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            return False, "llama-cpp-python is not installed (pip install 'codearena[local]')"
        try:
            if self.spec.model.startswith(BUILTIN_PREFIX):
                _, exists = locate(self.spec.model[len(BUILTIN_PREFIX):])
                if not exists:
                    return True, ""  # parts present; joined and verified on first use
                resolve_weights(self.spec.model)
            else:
                resolve_weights(self.spec.model, self.spec.options.get("sha256"))
        except (WeightsError, KeyError) as exc:
            return False, str(exc)
        return True, ""

    def weights_path(self) -> Path | None:
        """Where the GGUF is (None when it cannot be found); for listings."""
        try:
            if self.spec.model.startswith(BUILTIN_PREFIX):
                return locate(self.spec.model[len(BUILTIN_PREFIX):])[0]
            return Path(self.spec.model)
        except (WeightsError, KeyError):
            return None

    async def engine(self) -> Engine:
        if self._engine is None:
            self._engine = await asyncio.to_thread(load_engine, self.spec)
        return self._engine

    def _generate(self, engine: Engine, messages: list[Message], p: SamplingParams, stop: threading.Event,
                  on_token: Callable[[str], None]) -> str | None:
        """Blocking, on the engine's worker thread: hand each token's text to ``on_token``; return the finish
        reason (None when ``stop`` was set). Tokens stay on this thread unless ``on_token`` moves them."""
        if stop.is_set():  # cancelled while queued behind another call
            return None
        chunks = engine.llama.create_chat_completion(
            messages=self.with_system(messages), stream=True, temperature=p.temperature, top_p=p.top_p,
            max_tokens=p.max_tokens, seed=p.seed,
        )
        finish: str | None = None
        try:
            for chunk in chunks:
                if stop.is_set():
                    return None
                choice = chunk["choices"][0]
                delta = choice.get("delta") or {}
                # One chunk per generated token carries "content" (possibly "" mid-UTF-8 sequence).
                if "content" in delta:
                    on_token(delta["content"] or "")
                finish = choice.get("finish_reason") or finish
        finally:
            chunks.close()
        return finish

    def _timeout(self, partial: list[str]) -> BackendError:
        return BackendError(self.name, f"timed out after {self.spec.timeout_s:g} s", partial="".join(partial))

    async def stream(self, messages: list[Message], params: SamplingParams | None = None) -> AsyncIterator[str]:
        p = params or self.spec.params
        engine = await self.engine()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | _Done | BaseException] = asyncio.Queue()
        stop = threading.Event()

        def put(item: str | _Done | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the caller's loop is gone: nobody is listening any more
                stop.set()

        def work() -> None:
            try:
                put(_Done(self._generate(engine, messages, p, stop, put)))
            except BaseException as exc:  # noqa: BLE001 - handed to the async side, which re-raises
                put(exc)

        async with self._limit.get():
            loop.run_in_executor(engine.worker, work)
            received: list[str] = []
            deadline = loop.time() + self.spec.timeout_s
            try:
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout=max(deadline - loop.time(), 0.0))
                    except (asyncio.TimeoutError, TimeoutError):
                        raise self._timeout(received) from None
                    if isinstance(item, _Done):
                        return
                    if isinstance(item, BaseException):
                        raise BackendError(self.name, f"llama.cpp generation failed: {item}",
                                           partial="".join(received)) from item
                    if item:
                        received.append(item)
                        yield item
            finally:
                stop.set()  # consumer gone, timed out or done: the worker stops at the next token

    supports_grammar = True

    async def complete_with_grammar(self, messages: list[Message], params: SamplingParams,
                                    grammar: str) -> Completion:
        """A short reply constrained by a GBNF grammar (the judge's verdict follow-up), on the engine's own
        worker thread (llama.cpp is not thread-safe). Non-streaming: it is a few tokens."""
        engine = await self.engine()
        loop = asyncio.get_running_loop()
        start = time.perf_counter()

        def work() -> tuple[str, str | None]:
            from llama_cpp import LlamaGrammar

            out = engine.llama.create_chat_completion(
                messages=self.with_system(messages), temperature=params.temperature, top_p=params.top_p,
                max_tokens=params.max_tokens, seed=params.seed,
                grammar=LlamaGrammar.from_string(grammar, verbose=False))
            choice = out["choices"][0]
            return choice["message"]["content"] or "", choice.get("finish_reason")

        async with self._limit.get():
            try:
                text, finish = await asyncio.wait_for(loop.run_in_executor(engine.worker, work),
                                                      timeout=self.spec.timeout_s)
            except (asyncio.TimeoutError, TimeoutError):
                raise self._timeout([]) from None
            except Exception as exc:  # noqa: BLE001 - llama.cpp raises plain ValueError/RuntimeError
                raise BackendError(self.name, f"llama.cpp grammar-constrained generation failed: {exc}") from exc
        return Completion(text=text, model=self.name, seconds=time.perf_counter() - start, finish_reason=finish)

    async def complete(self, messages: list[Message], params: SamplingParams | None = None) -> Completion:
        """Like joining ``stream`` but the tokens stay on the worker thread until the end: no per-token
        wake-up of the event loop, which on a small CPU costs generation speed."""
        p = params or self.spec.params
        engine = await self.engine()
        loop = asyncio.get_running_loop()
        parts: list[str] = []
        stop = threading.Event()
        start = time.perf_counter()
        first: list[float] = []  # when the first token came, set once on the worker thread

        def put(text: str) -> None:
            if not first:
                first.append(time.perf_counter() - start)
            parts.append(text)

        async with self._limit.get():
            future = loop.run_in_executor(engine.worker, self._generate, engine, messages, p, stop, put)
            try:
                finish = await asyncio.wait_for(future, timeout=self.spec.timeout_s)
            except (asyncio.TimeoutError, TimeoutError):
                raise self._timeout(parts) from None
            except Exception as exc:
                raise BackendError(self.name, f"llama.cpp generation failed: {exc}", partial="".join(parts)) from exc
            finally:
                stop.set()
        return Completion(text="".join(parts), model=self.name, completion_tokens=len(parts),
                          seconds=time.perf_counter() - start, finish_reason=finish,
                          first_token_s=first[0] if first else None)


__all__ = ["Engine", "LlamaCppBackend", "load_engine", "loaded_engines"]
