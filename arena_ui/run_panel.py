"""The Run buttons and output panels of a battle view (Gradio): components and their events.

Kept apart from ``arena_ui.app``: the panel follows the battle's own events (``.then`` after a turn, a vote,
a new battle) instead of adding outputs to them, so the turn and vote handlers stay as they are. The server
decides everything (``Arena.run_side``, ``Arena.side_views``); a button's state here is only a hint, and a
run asked for through the API is refused by the same rules.

Element ids: ``run-a``/``run-b`` (buttons), ``run-output-a``/``run-output-b`` (panels), ``run-page-a``/
``run-page-b`` (an HTML answer's sandboxed frame), each with the view's suffix (``-named`` on Side by side).
API names: ``run_a``/``run_b`` (``named_run_a``/``named_run_b``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from arena_ui.arena import Arena, ArenaError
from arena_ui.pages import iframe_html
from arena_ui.render import safe_markdown
from arena_ui.run_view import RUNNING, run_markdown
from arena_ui.runs import SideView

SIDES = (("a", "model_a"), ("b", "model_b"))
NOT_STORED = "The vote was stored before this run finished, so the run is not part of it."


@dataclass
class RunPanel:
    buttons: list[gr.Button]  # side A, side B
    outputs: list[gr.Markdown]
    pages: list[gr.Markdown]

    @property
    def components(self) -> list[Any]:
        """Both sides' button, panel and frame, in that order: the outputs of a refresh."""
        return [c for i in range(2) for c in (self.buttons[i], self.outputs[i], self.pages[i])]

    def side(self, i: int) -> list[Any]:
        return [self.buttons[i], self.outputs[i], self.pages[i]]


def build_run_panel(arena: Arena, suffix: str) -> RunPanel | None:
    """A row under the answers: per side, a Run button, its output panel, and a frame for HTML pages.
    None when the arena runs no code (``--no-run``)."""
    if not arena.config.runs.enabled:
        return None
    buttons, outputs, pages = [], [], []
    with gr.Row(equal_height=False):
        for letter, _ in SIDES:
            with gr.Column():
                buttons.append(gr.Button("Run", elem_id=f"run-{letter}{suffix}", interactive=False, size="sm"))
                # LaTeX off: an output holding "$$" must show as printed.
                outputs.append(gr.Markdown("", elem_id=f"run-output-{letter}{suffix}", latex_delimiters=[]))
                # The frame: a Markdown component, not gr.HTML, which compiles its template with new Function()
                # (the page's CSP allows no eval). Unsanitised because its only value is iframe_html(key).
                pages.append(gr.Markdown("", elem_id=f"run-page-{letter}{suffix}", sanitize_html=False,
                                         latex_delimiters=[]))
    return RunPanel(buttons, outputs, pages)


def _updates(view: SideView | None) -> tuple[Any, Any, Any]:
    if view is None:  # no live battle (voted, new battle): the outputs stay, the button is off
        return gr.update(interactive=False), gr.update(), gr.update()
    page = iframe_html(view.page_key) if view.page_key else ""
    return gr.update(interactive=view.can_run, value=view.label), view.markdown, page


def wire_run_panel(arena: Arena, runs: RunPanel, token: gr.State, prefix: str, *,
                   client: Callable[[Any], tuple[str, str]], turn_events: list[Any], vote_events: list[Any],
                   new_battle_event: Any) -> None:
    """Wire the panel to a battle view: ``turn_events`` (send, submit, regenerate) refresh it when they end,
    a vote refreshes it (the buttons go off, the outputs stay), a new battle clears it.

    Nothing turns the buttons off as a follow-up turn starts: a second event on the same click could end
    after the turn's refresh and leave them off for good. A press while the answers stream is refused by
    the server ("still being written") and says so in the panel."""

    def refresh(token_value: str | None, request: gr.Request) -> tuple[Any, ...]:
        views = arena.side_views(token_value, client(request)[1])
        return (*_updates(views[0] if views else None), *_updates(views[1] if views else None))

    def clear() -> tuple[Any, ...]:
        return (gr.update(interactive=False, value="Run"), "", "") * 2

    for event in [*turn_events, *vote_events]:
        event.then(refresh, [token], runs.components, api_name=False, concurrency_limit=None)
    new_battle_event.then(clear, None, runs.components, api_name=False, concurrency_limit=None)

    for i, (letter, side) in enumerate(SIDES):
        async def run(token_value: str | None, request: gr.Request, _i: int = i, _side: str = side):
            host, session = client(request)
            yield gr.update(interactive=False), RUNNING, gr.update()
            try:
                result = await arena.run_side(token=token_value, session=session, host=host, side=_side)
            except ArenaError as exc:
                views = arena.side_views(token_value, session)
                view = views[_i] if views else None
                shown = f"\n\n{view.markdown}" if view is not None and view.markdown != RUNNING else ""
                button, _, page = _updates(view)
                yield button, safe_markdown(f"**Error:** {exc}") + shown, page
                return
            views = arena.side_views(token_value, session)
            if views is None:  # the vote (or a new battle) came while it ran
                page = iframe_html(result.page_key) if result.page_key else gr.update()
                yield (gr.update(interactive=False), run_markdown(result.record, note="" if result.stored else
                                                                  NOT_STORED), page)
                return
            yield _updates(views[_i])

        runs.buttons[i].click(run, [token], runs.side(i), api_name=f"{prefix}run_{letter}", concurrency_limit=None)
