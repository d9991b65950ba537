"""The arena's server-side state, independent of Gradio: models and their availability, pair sampling, live
battles, rate limits and the leaderboard cache. The UI (``arena_ui.app``) only wires events to this."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arena_ui.battle import BattleRegistry, BattleSession, Phase, PromptInfo, VoteRefused, VoteResult
from arena_ui.downloads import DataFiles, DownloadCache
from arena_ui.leaderboard_cache import LeaderboardCache
from arena_ui.ratelimit import RateLimited, RateLimits, make_limiter
from arena_ui.runs import OFF as RUNS_OFF
from arena_ui.runs import NothingToRun, RunService, RunSettings, SideView
from arena_ui.sampling import PairSampler
from arena_ui.streams import PairSnapshot, stream_pair
from serving.backends import make_backend
from serving.backends.base import Backend, BackendError, ModelSpec
from serving.execution import QueueFull
from serving.prompts import Prompt
from votes import StoreError, text_hash
from votes.runs import BattleRun
from votes.store import open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputLimits:
    """What one client may ask of the models: a prompt's size and a battle's number of turns. Both are
    answered by two models and held in memory until the vote, so both are bounded."""

    max_prompt_chars: int = 20_000
    max_turns: int = 8

    def __post_init__(self) -> None:
        for name in ("max_prompt_chars", "max_turns"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive whole number, got {value!r}")


@dataclass(frozen=True)
class ArenaConfig:
    models: Mapping[str, ModelSpec]
    prompts: list[Prompt]
    db: str | Path
    weights: Mapping[str, float] = field(default_factory=dict)
    limits: RateLimits = field(default_factory=RateLimits)
    leaderboard_refresh_s: float = 30.0
    answer_timeout_s: float | None = 900.0
    input_limits: InputLimits = field(default_factory=InputLimits)
    # uniform: pairs by the models' --weight; active: pairs that shrink the ranking's uncertainty most
    sampling: str = "uniform"
    # Memory held by live (unvoted) battles, prompts and answers together; the least recently used go first.
    max_live_battle_chars: int = 64_000_000
    # Run buttons: the sandbox's limits, the arena's one run queue, on or off (--no-run).
    runs: RunSettings = field(default_factory=RunSettings)


@dataclass(frozen=True)
class SideRun:
    """A Run press answered: the run, and whether it is kept with the battle (not when the vote came first)."""

    record: BattleRun
    stored: bool
    page_key: str | None = None  # an HTML answer's page (arena_ui.pages)


@dataclass(frozen=True)
class ModelStatus:
    name: str
    usable: bool
    reason: str = ""


STORE_DOWN = ("Your vote could not be stored: the vote store cannot be reached right now. Your battle is kept: "
              "vote again in a moment (it is counted once).")


class ArenaError(ValueError):
    """Something the user asked for that cannot be done now; the message is shown on the page."""


class Arena:
    def __init__(self, config: ArenaConfig, *, backends: Mapping[str, Backend] | None = None) -> None:
        self.config = config
        # Weights are checked before the store is opened: a bad --weight leaves no new, empty store behind.
        PairSampler.build(config.models, config.weights)
        self.store = open_store(config.db)
        # A vote store that cannot take votes would fail every vote after the answers were written.
        self.store.check_writable()
        self.registry = BattleRegistry(self.store, max_chars=config.max_live_battle_chars)
        self._live_streams = 0  # battles whose answers stream now (the event loop's thread only)
        # Counted in the store when several replicas share it (PostgreSQL), else in this process.
        self.battle_limiter = make_limiter(self.store, "battles", config.limits.battles_per_minute)
        self.vote_limiter = make_limiter(self.store, "votes", config.limits.votes_per_minute)
        # Preparing downloads reads and writes the whole store: a few times a minute per client is plenty.
        self.download_limiter = make_limiter(self.store, "downloads", config.limits.downloads_per_minute)
        self.downloads = DownloadCache()
        self.runs = RunService(config.runs)
        self.run_limiter = make_limiter(self.store, "runs", config.runs.runs_per_minute)
        self.leaderboard = LeaderboardCache(self.store, refresh_s=config.leaderboard_refresh_s)
        self.prompts = list(config.prompts)
        self.prompts_by_text = {p.text.strip(): p for p in self.prompts}
        # A per-process salt: voter hashes group one client's votes without being reversible to its address.
        self._salt = secrets.token_hex(16)
        self.backends: dict[str, Backend] = {}
        self.status: dict[str, ModelStatus] = {}
        for name, spec in config.models.items():
            self._add_model(name, spec, (backends or {}).get(name))
        self.sampler = PairSampler.build(config.models, config.weights).restricted(self.usable_models)
        if config.sampling == "active":
            # Recomputed with each leaderboard refresh, off the request path; a vote only reads the sampler.
            self.leaderboard.on_refresh.append(self._update_active_sampler)

    def _add_model(self, name: str, spec: ModelSpec, backend: Backend | None) -> None:
        try:
            backend = backend or make_backend(spec)
            usable, reason = backend.availability()
        except Exception as exc:  # noqa: BLE001 - one broken model must not stop the arena from starting
            self.status[name] = ModelStatus(name, False, str(exc))
            # Debug only: the reason is kept in self.status, and whoever starts the arena lists it once.
            log.debug("model %s unavailable: %s", name, exc)
            return
        self.backends[name] = backend
        self.status[name] = ModelStatus(name, usable, reason)
        if not usable:
            log.debug("model %s unavailable: %s", name, reason)

    @property
    def usable_models(self) -> list[str]:
        return [n for n, s in self.status.items() if s.usable]

    def readiness(self) -> str | None:
        """None when battles can run, else the message the page shows."""
        n = len(self.usable_models)
        if n >= 2:
            return None
        down = [f"{s.name} ({s.reason})" for s in self.status.values() if not s.usable]
        return (f"The arena needs at least two usable models; {n} of {len(self.status)} configured "
                f"model(s) are usable. Unavailable: {'; '.join(down) or 'none'}.")

    # -- identities ------------------------------------------------------------------------------------
    def _update_active_sampler(self, battles: Any) -> None:
        """Pair probabilities that shrink the ranking's uncertainty fastest (ratings.active), from the votes
        the leaderboard just counted."""
        from ratings.active import arena_pair_probabilities

        usable = self.sampler.models
        if len(usable) < 2:
            return
        self.sampler = self.sampler.with_probabilities(arena_pair_probabilities(battles, usable))

    def voter_hash(self, host: str, session: str) -> str:
        return text_hash(f"{self._salt}|{host}|{session}")

    def prompt_info(self, text: str) -> PromptInfo:
        """A typed prompt that equals a catalogue prompt keeps that prompt's id and category."""
        p = self.prompts_by_text.get(text.strip())
        if p is None:
            return PromptInfo(text=text)
        return PromptInfo(text=p.text, prompt_id=p.id, category=p.category, language=p.language)

    # -- battles ---------------------------------------------------------------------------------------
    def _spend_battle(self, host: str, text: str) -> None:
        """Every generation of two answers (a new battle or a follow-up turn) costs one battle of the limit."""
        if not text.strip():
            raise ArenaError("Type a prompt, or pick one, before sending.")
        limit = self.config.input_limits.max_prompt_chars
        if len(text) > limit:
            raise ArenaError(f"The prompt has {len(text):,} characters; this arena takes at most {limit:,}.")
        if not is_valid_text(text):
            raise ArenaError("The prompt holds characters that are not valid Unicode text (lone surrogates).")
        try:
            self.battle_limiter.hit(host, "battles")
        except RateLimited as exc:
            raise ArenaError(str(exc)) from None

    def open_battle(self, *, host: str, session: str, text: str, mode: str = "anonymous",
                    models: tuple[str, str] | None = None) -> str:
        """Start a battle: rate-limited, models sampled (anonymous) or given (named)."""
        self._spend_battle(host, text)
        if models is None:
            not_ready = self.readiness()
            if not_ready:
                raise ArenaError(not_ready)
            model_a, model_b, probability = self.sampler.sample_with_probability()
        else:
            model_a, model_b = models
            probability = None
            for m in models:
                if m not in self.status:
                    raise ArenaError(f"unknown model {m!r}")
                if not self.status[m].usable:
                    raise ArenaError(f"model {m} is unavailable: {self.status[m].reason}")
            if model_a == model_b:
                raise ArenaError("Choose two different models.")
        return self.registry.open(owner=session, voter=self.voter_hash(host, session), model_a=model_a,
                                  model_b=model_b, mode=mode, prompt=self.prompt_info(text),
                                  pair_probability=probability)

    def add_turn(self, *, token: str | None, session: str, host: str, text: str) -> BattleSession:
        """A follow-up question in a complete battle: it makes both models answer again, so it costs the
        client one battle of its rate limit, exactly as a new battle does."""
        s = self.registry.peek(token, session)
        if s is not None and s.turn >= self.config.input_limits.max_turns:
            raise ArenaError(f"This battle has {s.turn} turn(s), the most this arena allows: vote, or start "
                             "a new battle.")
        self._spend_battle(host, text)
        try:
            return self.registry.add_turn(token or "", session, text)
        except VoteRefused as exc:
            raise ArenaError(str(exc)) from None

    def abandon(self, token: str | None, session: str) -> None:
        """Forget this session's live battle (New battle, Regenerate): it will take no vote."""
        self.registry.abandon(token, session)

    async def run_turn(self, token: str, session: str) -> AsyncIterator[PairSnapshot]:
        """Stream both answers of the battle's open turn, then record them (or the failure)."""
        s = self.registry.peek(token, session)
        if s is None or s.phase is not Phase.GENERATING:
            raise ArenaError("no turn is waiting for answers in this battle")
        last = PairSnapshot("", "", False, False)
        recorded = False
        self._live_streams += 1
        try:
            async for last in stream_pair(self.backends[s.model_a], self.backends[s.model_b],
                                          s.conversation_a, s.conversation_b,
                                          timeout_s=self.config.answer_timeout_s,
                                          min_interval_s=self.update_interval):
                if last.done:
                    # Recorded before the final yield: a caller that stops at ``done`` sees the battle ready.
                    self._record_turn(s, token, session, last)
                    recorded = True
                yield last
        finally:
            self._live_streams -= 1
            if not recorded:
                self._record_turn(s, token, session, last)

    @property
    def update_interval(self) -> float:
        """Seconds between two page updates of a streaming battle: 20 a second when few battles stream,
        fewer and larger ones as more do, so that 50 streams cost the server about what 5 would (each update
        is a Gradio event; their count, not the text, is what saturates a small CPU)."""
        return min(1.0, max(0.05, 0.006 * self._live_streams))

    def _record_turn(self, s: BattleSession, token: str, session: str, last: PairSnapshot) -> None:
        if last.done:
            error = failure_message(last, (s.model_a, s.model_b))
        else:
            error = "the answers were interrupted"
        try:
            self.registry.finish_turn(token, session, last.text_a, last.text_b, error,
                                      timing_a=last.timing_a, timing_b=last.timing_b)
        except VoteRefused:
            pass  # abandoned meanwhile (New battle clicked): nothing to record

    def vote(self, *, token: str | None, session: str, host: str, winner: str) -> VoteResult:
        try:
            self.vote_limiter.check(host, "votes")
        except RateLimited as exc:
            raise ArenaError(str(exc)) from None
        try:
            result = self.registry.vote(token, session, winner)
        except VoteRefused as exc:
            raise ArenaError(str(exc)) from None
        except StoreError as exc:
            # The battle stays open: the same vote can be sent again, and is stored once (its id is fixed).
            log.error("vote not stored: %s", exc)
            raise ArenaError(STORE_DOWN) from None
        # Counted only once stored: a refused vote (stale tab, double click) must not use up the limit.
        self.vote_limiter.record(host)
        return result

    # -- code runs -------------------------------------------------------------------------------------
    async def run_side(self, *, token: str | None, session: str, host: str, side: str) -> SideRun:
        """Run one side's latest answer ("model_a"/"model_b") through the arena's run queue, sandboxed, and
        keep the run with the battle. Refused as a vote is: no live battle of this session, answers not
        complete, already voted; and when nothing can run, the client is over its limit or the queue is full."""
        if not self.config.runs.enabled:
            raise ArenaError(RUNS_OFF)
        try:
            self.run_limiter.check(host, "runs")
            ticket = self.registry.start_run(token, session, side,
                                             max_per_side=self.config.runs.max_runs_per_side)
        except (RateLimited, VoteRefused) as exc:
            raise ArenaError(str(exc)) from None
        record: BattleRun | None = None
        try:
            record = await self.runs.run(ticket)
        except NothingToRun as exc:
            raise ArenaError(str(exc)[:1].upper() + str(exc)[1:] + ".") from None
        except QueueFull as exc:
            raise ArenaError(f"The arena is busy running code: {exc}.") from None
        finally:
            stored = self.registry.finish_run(ticket, session, record)
        self.run_limiter.record(host)
        key = self.runs.pages.put(record.run.code) if record.run.status == "rendered" else None
        return SideRun(record=record, stored=stored, page_key=key)

    def side_views(self, token: str | None, session: str) -> tuple[SideView, SideView] | None:
        """What both sides' Run buttons and panels show now; None without a live battle of this session."""
        s = self.registry.peek(token, session)
        if s is None:
            return None
        return self.runs.view(s, "model_a"), self.runs.view(s, "model_b")

    def data_files(self, host: str) -> DataFiles:
        """The Data tab's files for the current leaderboard snapshot (written once per store state)."""
        try:
            self.download_limiter.hit(host, "download preparations")
        except RateLimited as exc:
            raise ArenaError(str(exc)) from None
        snap = self.leaderboard.snapshot()
        key = (self.store.count(), snap.computed_at)
        return self.downloads.files(key, self.store, snap.overall, snap.meta)

    def session(self, token: str | None, session: str) -> BattleSession | None:
        return self.registry.peek(token, session)

    def start(self) -> None:
        self.runs.start()  # the sandbox probe, in its own thread
        self.leaderboard.refresh()
        self.leaderboard.start()

    async def aclose(self) -> None:
        self.leaderboard.stop()
        self.downloads.close()
        for b in self.backends.values():
            try:
                await b.aclose()
            except Exception:  # noqa: BLE001
                log.exception("closing backend %s", b.name)


def is_valid_text(text: str) -> bool:
    """Text that can be stored and sent as UTF-8 (JSON lets a client send a lone surrogate such as \\ud800)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def failure_message(snap: PairSnapshot, names: tuple[str, str]) -> str | None:
    """Which side failed, in words that cannot unmask a model; the detail goes to the server log.

    A backend's error text names its endpoint and provider ("HTTP 529 from https://api.anthropic.com:
    Overloaded"), which tells the voter who answered before the vote; scrubbing known names cannot catch
    every such word, so the browser gets a fixed sentence and the operator gets the whole error.
    """
    parts = []
    for side, name, err in (("A", names[0], snap.error_a), ("B", names[1], snap.error_b)):
        if err is not None:
            log.warning("battle model %s (side %s) failed: %s", name, side, err)
            parts.append(f"Model {side} failed to answer (provider or server error); start a new battle")
    return "; ".join(parts) or None


__all__ = ["Arena", "ArenaConfig", "ArenaError", "BackendError", "InputLimits", "ModelStatus", "RunSettings",
           "SideRun"]
