"""Running the code of answers, sandboxed: extraction, one runner per language, bubblewrap, a run queue.

The entry points (what the UI, the duel and the CLI call):

- :func:`run_answer` / :func:`run_answer_async` (through the global :class:`RunQueue`): a Markdown answer
  in, a :class:`votes.runs.CodeRun` out, whatever the code does.
- :func:`run_code`, :func:`run_file`: code of a known language; a file (Markdown or plain source).
- :func:`list_runners`, :func:`sandbox_status`: what can run here, and why not.
- :func:`extract_code`, :func:`html_document`: what would run, and the page an HTML answer renders.

No gradio and no arena_ui here: this is the serving room.
"""

from serving.execution.execute import (
    ExecutionInputError,
    RunnerInfo,
    available_languages,
    list_runners,
    run_answer,
    run_answer_async,
    run_code,
    run_extraction,
    run_file,
    runner_info,
)
from serving.execution.extract import (
    CodeBlock,
    Extraction,
    extract_code,
    extract_source,
    guess_language,
    html_document,
    normalise_language,
)
from serving.execution.queue import QueueFull, RunQueue, default_queue
from serving.execution.sandbox import SandboxStatus, SandboxUnavailable, sandbox_status

__all__ = [
    "CodeBlock", "ExecutionInputError", "Extraction", "QueueFull", "RunQueue", "RunnerInfo", "SandboxStatus",
    "SandboxUnavailable", "available_languages", "default_queue", "extract_code", "extract_source",
    "guess_language", "html_document", "list_runners", "normalise_language", "run_answer", "run_answer_async",
    "run_code", "run_extraction", "run_file", "runner_info", "sandbox_status",
]
