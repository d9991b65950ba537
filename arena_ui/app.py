"""The Gradio app: Battle (anonymous), Side by side (named), Leaderboard, Data.

No ``from __future__ import annotations`` here: Gradio finds the ``gr.Request`` parameter of a handler by its
evaluated annotation.

What reaches the browser before a vote: the prompt, the answers, and an opaque token held in a ``gr.State``
(server-side). Model names exist only in :class:`arena_ui.battle.BattleRegistry`; the Side-by-side and
Leaderboard tabs fetch their model lists when opened, so the Battle page's HTML and config name no model.
"""

import random
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from arena_ui.arena import Arena, ArenaError
from arena_ui.battle import Phase
from arena_ui.leaderboard_cache import ALL_CATEGORIES, CATEGORY_RULE, LeaderboardSnapshot
from arena_ui.render import safe_messages
from arena_ui.run_panel import RunPanel, build_run_panel, wire_run_panel
from arena_ui.streams import PairSnapshot
from serving.prompts import filter_prompts

ANY = "any"
VOTES = (("vote-a", "A is better", "model_a"), ("vote-b", "B is better", "model_b"),
         ("vote-tie", "Tie", "tie"), ("vote-bothbad", "Both are bad", "tie (bothbad)"))
VOTE_WORDS = {"model_a": "A is better", "model_b": "B is better", "tie": "tie", "tie (bothbad)": "both are bad"}
NEW_BATTLE = "New battle"
REGENERATE = "Regenerate"
HIDDEN = "*The models' names are hidden until you vote.*"
# System fonts: the default theme loads Google Fonts, a request to another host on every page view (and one
# the page's Content-Security-Policy refuses).
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
CSS = """
#reveal {min-height: 2em}
#status {min-height: 1.5em}
"""
N_PLOTS = 3  # ratings.plots.figures: ratings with CIs, win fractions, battle counts
LEADERBOARD_SHOWN = ["rank", "model", "rating", "ci_low", "ci_high", "rank_ub", "battles", "wins", "losses", "ties",
                     # tier: models a simultaneous 95% test cannot tell apart share one (ratings.tiers);
                     # median_s: the model's median answer time, where answers were timed
                     "tier", "rank_low", "rank_high", "median_s"]


@dataclass
class BattlePanel:
    """The components of one battle view; ``suffix`` keeps element ids unique between the two tabs."""

    mode: str
    token: gr.State
    prompt: gr.Textbox
    send: gr.Button
    chat_a: gr.Chatbot
    chat_b: gr.Chatbot
    status: gr.Markdown
    reveal: gr.Markdown
    votes: list[gr.Button]
    new_battle: gr.Button
    regenerate: gr.Button
    runs: RunPanel | None = None  # Run buttons and output panels (arena_ui.run_panel); None with --no-run

    def components(self, fields: tuple[str, ...]) -> list[Any]:
        """The components of ``fields`` in order (``votes`` is the four vote buttons)."""
        out: list[Any] = []
        for name in fields:
            value = getattr(self, name)
            out.extend(value if name == "votes" else [value])
        return out

    @property
    def turn_outputs(self) -> list[Any]:
        return self.components(TurnView.FIELDS)

    @property
    def vote_outputs(self) -> list[Any]:
        return self.components(VoteView.FIELDS)


KEEP: Any = object()  # a view field that leaves its component as it is


@dataclass(frozen=True)
class TurnView:
    """What one step of a turn (send, stream, new battle) changes on the page, by name; a field left KEEP
    stays as it is. ``FIELDS`` is the one place that orders them, for the handler's outputs and its values
    alike, so a new component is one field here, not a shift of every positional tuple."""

    FIELDS = ("token", "chat_a", "chat_b", "status", "reveal", "votes", "new_battle", "regenerate", "prompt")

    token: Any = KEEP
    chat_a: Any = KEEP
    chat_b: Any = KEEP
    status: Any = KEEP
    reveal: Any = KEEP
    votes: Any = KEEP  # one value for the four vote buttons, or a list of four
    new_battle: Any = KEEP
    regenerate: Any = KEEP
    prompt: Any = KEEP

    def outputs(self) -> tuple[Any, ...]:
        values: list[Any] = []
        for name in self.FIELDS:
            value = getattr(self, name)
            if name == "votes":
                values.extend(value if isinstance(value, list) else [_value(value)] * len(VOTES))
            else:
                values.append(_value(value))
        return tuple(values)


@dataclass(frozen=True)
class VoteView(TurnView):
    """What a vote changes: the same names, fewer components."""

    FIELDS = ("token", "status", "reveal", "votes", "new_battle", "regenerate")


def _value(value: Any) -> Any:
    return gr.update() if value is KEEP else value


def _panel(mode: str, suffix: str, arena: Arena | None = None) -> BattlePanel:
    token = gr.State(None)
    with gr.Row(equal_height=True):
        chat_a = gr.Chatbot(label="Model A", elem_id=f"answer-a{suffix}", height=480, autoscroll=False,
                            buttons=["copy"], feedback_options=None)
        chat_b = gr.Chatbot(label="Model B", elem_id=f"answer-b{suffix}", height=480, autoscroll=False,
                            buttons=["copy"], feedback_options=None)
    runs = build_run_panel(arena, suffix) if arena is not None else None
    reveal = gr.Markdown(HIDDEN if mode == "anonymous" else "", elem_id=f"reveal{suffix}")
    with gr.Row():
        votes = [gr.Button(label, elem_id=f"{eid}{suffix}", interactive=False) for eid, label, _ in VOTES]
    status = gr.Markdown("", elem_id=f"status{suffix}")
    with gr.Row():
        prompt = gr.Textbox(show_label=False, placeholder="Type a coding question, or pick one above; after "
                            "both answers, type a follow-up here", lines=3, scale=8,
                            elem_id=f"prompt-input{suffix}")
        send = gr.Button("Send", variant="primary", scale=1, elem_id=f"send{suffix}")
    with gr.Row():
        new_battle = gr.Button(NEW_BATTLE, elem_id=f"new-battle{suffix}")
        regenerate = gr.Button(REGENERATE, elem_id=f"regenerate{suffix}", interactive=False)
    return BattlePanel(mode, token, prompt, send, chat_a, chat_b, status, reveal, votes, new_battle, regenerate, runs)


def _chats(session: Any, snap: PairSnapshot | None) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Chatbot values: the stored turns plus the answers streaming now (if any), made inert
    (``arena_ui.render``): prompts and answers are untrusted text and reach the page as Markdown only."""
    a, b = list(session.conversation_a), list(session.conversation_b)
    if snap is not None:
        a.append({"role": "assistant", "content": snap.text_a or "..."})
        b.append({"role": "assistant", "content": snap.text_b or "..."})
    return safe_messages(a), safe_messages(b)


def _buttons(votes_on: bool, regenerate_on: bool) -> dict[str, Any]:
    return {"votes": gr.update(interactive=votes_on), "regenerate": gr.update(interactive=regenerate_on)}


def _labels() -> dict[str, Any]:
    """The buttons' own labels as values: "no change" without the cost of a property update."""
    return {"votes": [label for _, label, _ in VOTES], "new_battle": NEW_BATTLE, "regenerate": REGENERATE}


def _client(request: gr.Request) -> tuple[str, str]:
    host = request.client.host if request is not None and request.client is not None else "unknown"
    session = (request.session_hash if request is not None else None) or "no-session"
    return host, session


async def _run_turn(arena: Arena, panel_mode: str, text: str, token: str | None, request: gr.Request,
                    models: tuple[str, str] | None = None, force_new: bool = False):
    """Send: a follow-up in a complete battle of this session, else a new battle; stream both answers."""
    host, session = _client(request)
    text = (text or "").strip()
    s = arena.session(token, session)
    # With no live battle (fresh page, after a vote, after New battle) the buttons are already disabled:
    # skipping that update saves Gradio five component rebuilds on the commonest path.
    buttons_live = s is not None
    try:
        if not text:
            raise ArenaError("Type a prompt, or pick one, before sending.")
        if s is not None and s.phase is Phase.GENERATING:
            raise ArenaError("The answers are still being written; wait for them to finish.")
        same_models = models is None or (s is not None and (s.model_a, s.model_b) == models)
        if s is not None and s.phase is Phase.READY and same_models and not force_new:
            arena.add_turn(token=token, session=session, host=host, text=text)
        else:
            arena.abandon(token, session)
            token = arena.open_battle(host=host, session=session, text=text, mode=panel_mode, models=models)
    except ArenaError as exc:
        yield TurnView(token=token, status=f"**Error:** {exc}").outputs()
        return
    s = arena.session(token, session)
    reveal = HIDDEN if panel_mode == "anonymous" else f"**A:** {s.model_a} · **B:** {s.model_b}"
    first = True
    try:
        async for snap in arena.run_turn(token, session):
            if snap.done:
                break
            if arena.session(token, session) is None:  # abandoned (New battle): stop writing into the page
                return
            a, b = _chats(s, snap)
            # Buttons change once per turn: a property update makes Gradio rebuild the component, per frame.
            buttons = _buttons(False, False) if first and buttons_live else _labels()
            first = False
            yield TurnView(token=token, chat_a=a, chat_b=b, status="Both models are answering...", reveal=reveal,
                           prompt="", **buttons).outputs()
    except ArenaError as exc:
        yield TurnView(token=token, status=f"**Error:** {exc}", reveal=reveal, **_buttons(False, True)).outputs()
        return
    s = arena.session(token, session)
    if s is None:  # abandoned while streaming (New battle)
        return
    a, b = _chats(s, None)
    if s.phase is Phase.FAILED:
        status = (f"**Error:** {s.error}. This battle cannot take a vote: click **New battle** (or "
                  "**Regenerate** to try the same prompt with another pair).")
        yield TurnView(token=token, chat_a=a, chat_b=b, status=status, reveal=reveal, prompt="",
                       **_buttons(False, True)).outputs()
    else:
        yield TurnView(token=token, chat_a=a, chat_b=b, prompt="", reveal=reveal,
                       status="Both answers are complete: vote below, or type a follow-up question.",
                       **_buttons(True, True)).outputs()


def _vote(arena: Arena, token: str | None, winner: str, request: gr.Request) -> tuple[Any, ...]:
    host, session = _client(request)
    try:
        result = arena.vote(token=token, session=session, host=host, winner=winner)
    except ArenaError as exc:
        return VoteView(token=token, status=f"**Error:** {exc}").outputs()
    flags = result.battle.flags
    note = f" Flagged: {', '.join(flags)} (an answer named its model or maker)." if flags else ""
    reveal = (f"### Model A: **{result.model_a}** · Model B: **{result.model_b}**\n"
              f"Your vote (*{VOTE_WORDS[winner]}*) is stored.{note}")
    return VoteView(token=None, status="Thanks for voting! Click **New battle** for another one.", reveal=reveal,
                    **_buttons(False, False)).outputs()


def _new_battle(arena: Arena, panel: BattlePanel, token: str | None, request: gr.Request) -> tuple[Any, ...]:
    _, session = _client(request)
    arena.abandon(token, session)
    reveal = HIDDEN if panel.mode == "anonymous" else ""
    return TurnView(token=None, chat_a=[], chat_b=[], status=arena.readiness() or "", reveal=reveal, prompt="",
                    **_buttons(False, False)).outputs()


def _first_prompt(arena: Arena, token: str | None, request: gr.Request) -> str:
    s = arena.session(token, _client(request)[1])
    return s.prompt.text if s is not None else ""


def _wire_panel(arena: Arena, panel: BattlePanel, model_inputs: list[Any] | None = None) -> None:
    prefix = "" if panel.mode == "anonymous" else "named_"
    extra = model_inputs or []

    # Gradio injects gr.Request by annotation and maps inputs by position, so each tab gets plain signatures.
    if not extra:
        async def send(text: str, token: str | None, request: gr.Request):
            async for update in _run_turn(arena, panel.mode, text, token, request):
                yield update

        async def regenerate(token: str | None, request: gr.Request):
            async for update in _run_turn(arena, panel.mode, _first_prompt(arena, token, request), token,
                                          request, force_new=True):
                yield update
    else:
        async def send(text: str, token: str | None, model_a: str, model_b: str, request: gr.Request):
            async for update in _run_turn(arena, panel.mode, text, token, request, (model_a, model_b)):
                yield update

        async def regenerate(token: str | None, model_a: str, model_b: str, request: gr.Request):
            async for update in _run_turn(arena, panel.mode, _first_prompt(arena, token, request), token,
                                          request, (model_a, model_b), force_new=True):
                yield update

    # Every panel's streams share one limit (the queue's default: serve --concurrency); arena_ui.serve gives
    # Gradio's queue room for that many streams *and* the short events, so a vote never waits behind them.
    gen_kwargs = {"outputs": panel.turn_outputs, "concurrency_limit": "default", "concurrency_id": STREAMS_ID}
    streaming = [
        panel.send.click(send, [panel.prompt, panel.token, *extra], api_name=f"{prefix}send", **gen_kwargs),
        panel.prompt.submit(send, [panel.prompt, panel.token, *extra], api_name=False, **gen_kwargs),
        panel.regenerate.click(regenerate, [panel.token, *extra], api_name=f"{prefix}regenerate", **gen_kwargs),
    ]
    vote_events = []
    for button, (eid, _, winner) in zip(panel.votes, VOTES, strict=True):
        def vote(token: str | None, request: gr.Request, _winner: str = winner) -> tuple[Any, ...]:
            return _vote(arena, token, _winner, request)
        vote_events.append(button.click(vote, [panel.token], panel.vote_outputs,
                                        api_name=f"{prefix}{eid.replace('-', '_')}", concurrency_limit=None))

    def new_battle(token: str | None, request: gr.Request) -> tuple[Any, ...]:
        return _new_battle(arena, panel, token, request)
    # Cancelling the streams stops an abandoned battle from writing into the fresh, empty one.
    new_battle_event = panel.new_battle.click(new_battle, [panel.token], panel.turn_outputs,
                                              api_name=f"{prefix}new_battle", cancels=streaming)
    if panel.runs is not None:
        wire_run_panel(arena, panel.runs, panel.token, prefix, client=_client, turn_events=streaming,
                       vote_events=vote_events, new_battle_event=new_battle_event)


def _leaderboard_view(snap: LeaderboardSnapshot, category: str | None) -> tuple[Any, ...]:
    table = snap.category_table(category)
    shown = _round(table.reindex(columns=LEADERBOARD_SHOWN)) if not table.empty else pd.DataFrame(
        columns=LEADERBOARD_SHOWN)
    when = pd.Timestamp(snap.computed_at, unit="s").strftime("%Y-%m-%d %H:%M:%S UTC") if snap.computed_at else "never"
    info = (f"{len(table)} models from {int(table['battles'].sum() // 2) if not table.empty else 0} anonymous "
            f"human votes · {snap.battles_seen} battles stored in all · computed {when}\n\n"
            f"Left out of the ranking: {'; '.join(snap.notes) or 'nothing'} (named votes and answers that "
            f"named their model are not blind) · {CATEGORY_RULE}")
    if snap.errors:
        info += "\n\n**Error:** " + "; ".join(snap.errors)
    hvj = _round(snap.human_vs_judge) if not snap.human_vs_judge.empty else pd.DataFrame(
        columns=["model", "rating_human", "rank_human", "battles_human"])
    named = _round(snap.named.reindex(columns=LEADERBOARD_SHOWN)) if not snap.named.empty else pd.DataFrame(
        columns=LEADERBOARD_SHOWN)
    choices = [ALL_CATEGORIES, *sorted(snap.by_category)]
    figs = list(snap.figures)[:N_PLOTS] if category in (None, ALL_CATEGORIES) else []
    figs += [None] * (N_PLOTS - len(figs))
    return (shown, info, *figs, hvj, named, gr.update(choices=choices))


def _round(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(1)
    return out


STREAMS_ID = "answers"


def build_app(arena: Arena) -> gr.Blocks:
    """The whole arena UI over a started or unstarted :class:`Arena` (``arena.start()`` begins the cache)."""
    categories = sorted({p.category for p in arena.prompts if p.category})
    languages = sorted({p.language for p in arena.prompts if p.language})
    # delete_cache: Gradio copies every file it serves (the Data tab's downloads) into its cache; sweep it.
    with gr.Blocks(title="CodeArena", analytics_enabled=False, delete_cache=(600, 1800)) as demo:
        gr.Markdown("# CodeArena\nAsk a coding question; two anonymous models answer side by side. "
                    "Vote for the better answer, then see who they were.")
        with gr.Tabs():
            with gr.Tab("Battle", id="battle"):
                with gr.Row():
                    category = gr.Dropdown([ANY, *categories], value=ANY, label="Category", scale=2,
                                           elem_id="prompt-category")
                    language = gr.Dropdown([ANY, *languages], value=ANY, label="Language", scale=2,
                                           elem_id="prompt-language")
                    pick = gr.Button("Random prompt", scale=1, elem_id="random-prompt")
                    gr.Markdown(f"{len(arena.prompts)} prompts · {len(arena.usable_models)} of "
                                f"{len(arena.status)} models ready", elem_id="arena-info")
                battle = _panel("anonymous", "", arena)
                if arena.readiness():
                    battle.status.value = f"**Error:** {arena.readiness()}"
            with gr.Tab("Side by side", id="named") as named_tab:
                gr.Markdown("Choose both models. These votes are stored as *named* and are kept out of the "
                            "main ranking (the voter knew who answered).")
                with gr.Row():
                    # Empty until the tab opens (no names in the page config); the server checks the names.
                    pick_a = gr.Dropdown([], label="Model A", elem_id="model-a-select", allow_custom_value=True)
                    pick_b = gr.Dropdown([], label="Model B", elem_id="model-b-select", allow_custom_value=True)
                named = _panel("named", "-named", arena)
            with gr.Tab("Leaderboard", id="leaderboard-tab") as board_tab:
                with gr.Row():
                    board_category = gr.Dropdown([ALL_CATEGORIES], value=ALL_CATEGORIES, label="Category",
                                                 elem_id="leaderboard-category")
                    refresh = gr.Button("Refresh", elem_id="leaderboard-refresh")
                board_info = gr.Markdown("", elem_id="leaderboard-info")
                board = gr.Dataframe(pd.DataFrame(columns=LEADERBOARD_SHOWN), elem_id="leaderboard",
                                     interactive=False, label="Bradley-Terry ratings (human, anonymous battles, "
                                     "95% CI; rank_ub = 1 + models significantly better)")
                with gr.Row():
                    plots = [gr.Plot(label=label, elem_id=f"leaderboard-plot-{i}") for i, label in enumerate(
                        ("Ratings with confidence intervals", "Win fraction", "Battle counts"))]
                hvj = gr.Dataframe(pd.DataFrame(), interactive=False, elem_id="human-vs-judge",
                                   label="Human vs LLM judge: one column group per judge source, each "
                                   "judge fitted on its own votes")
                named_board = gr.Dataframe(pd.DataFrame(), interactive=False, elem_id="leaderboard-named",
                                           label="Side-by-side (named) votes, not in the main ranking")
                models_md = gr.Markdown("", elem_id="models-status")
            with gr.Tab("Data", id="data"):
                gr.Markdown("Download the human votes (Chatbot Arena battle schema, the files `codearena "
                            "export votes` writes; named votes have `anony` false and `flags` marks answers "
                            "that named their model) and the leaderboard with its method, CI method, vote "
                            "count and date.")
                prepare = gr.Button("Prepare downloads", elem_id="prepare-downloads")
                with gr.Row():
                    dl = [gr.DownloadButton(label, visible=False, elem_id=eid) for eid, label in (
                        ("download-votes-jsonl", "votes.jsonl"), ("download-votes-csv", "votes.csv"),
                        ("download-leaderboard-csv", "leaderboard.csv"),
                        ("download-leaderboard-json", "leaderboard.json"),
                        ("download-leaderboard-meta", "leaderboard.csv.meta.json"))]
                data_info = gr.Markdown("", elem_id="data-info")

        # -- battle: prompt picking ---------------------------------------------------------------
        def random_prompt(cat: str, lang: str) -> str:
            pool = filter_prompts(arena.prompts, category=None if cat == ANY else cat,
                                  language=None if lang == ANY else lang)
            if not pool:
                raise gr.Error("No prompt matches that category and language.")
            return random.choice(pool).text
        pick.click(random_prompt, [category, language], battle.prompt, api_name="random_prompt")
        _wire_panel(arena, battle)
        _wire_panel(arena, named, [pick_a, pick_b])

        # -- side by side: model lists load when the tab opens ------------------------------------
        def model_choices() -> tuple[Any, Any]:
            usable = arena.usable_models
            second = usable[1] if len(usable) > 1 else None
            return (gr.update(choices=usable, value=usable[0] if usable else None),
                    gr.update(choices=usable, value=second))
        named_tab.select(model_choices, None, [pick_a, pick_b], api_name=False)

        # -- leaderboard: read the cache, never compute here --------------------------------------
        def show_board(cat: str) -> tuple[Any, ...]:
            return (*_leaderboard_view(arena.leaderboard.snapshot(), cat), _models_status(arena))
        board_outputs = [board, board_info, *plots, hvj, named_board, board_category, models_md]
        board_tab.select(show_board, [board_category], board_outputs, api_name=False)
        refresh.click(show_board, [board_category], board_outputs, api_name="leaderboard")
        board_category.change(show_board, [board_category], board_outputs, api_name=False)

        # -- data ---------------------------------------------------------------------------------
        def prepare_files(request: gr.Request) -> tuple[Any, ...]:
            try:
                files = arena.data_files(_client(request)[0])
            except ArenaError as exc:
                return (*[gr.update() for _ in dl], f"**Error:** {exc}")
            return (*[gr.update(value=str(p), visible=True) for p in (
                files.votes_jsonl, files.votes_csv, files.leaderboard_csv, files.leaderboard_json,
                files.leaderboard_meta)],
                f"{files.n_votes} human votes exported" + "".join(f"; {n}" for n in files.notes)
                + " (the rule `codearena export votes` applies).")
        prepare.click(prepare_files, None, [*dl, data_info], api_name="prepare_downloads")
    return demo


def _models_status(arena: Arena) -> str:
    lines = ["**Models**"]
    for s in arena.status.values():
        lines.append(f"- {s.name}: " + ("ready" if s.usable else f"unavailable ({s.reason})"))
    return "\n".join(lines)
