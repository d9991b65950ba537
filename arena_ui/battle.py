"""Server-side battle sessions: the only place that knows which models are fighting.

The browser holds an opaque random token (in a ``gr.State``, which Gradio keeps on the server); the model
names live here until the vote. A vote is accepted only for a live battle of the same browser session whose
answers are complete, and only once; everything else is refused with a reason. This is what makes a direct
API call unable to count a vote: there is no endpoint that takes model names or a winner for an arbitrary
battle.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from arena_ui.leak import leak_flags, run_leak_flags
from votes import Battle, BattleError, VoteStore
from votes.latency import AnswerTiming, BattleTimings, battle_with_timings
from votes.record import WINNERS, utc_now
from votes.runs import RUN_SIDES, BattleRun

Message = dict[str, str]


class Phase(str, Enum):
    GENERATING = "generating"  # answers are streaming: no vote yet, no new turn
    READY = "ready"  # both answers complete: a vote or a follow-up turn
    FAILED = "failed"  # a model failed: this battle can take no vote
    VOTED = "voted"  # done: names revealed


class VoteRefused(ValueError):
    """A vote (or a turn) the battle cannot take, with the reason for the user."""


@dataclass(frozen=True)
class PromptInfo:
    text: str
    prompt_id: str | None = None
    category: str | None = None
    language: str | None = None


@dataclass
class BattleSession:
    token: str
    owner: str  # Gradio session hash of the browser that opened it
    voter: str  # hash of the client, stored with the vote
    model_a: str
    model_b: str
    mode: str
    prompt: PromptInfo
    conversation_a: list[Message] = field(default_factory=list)
    conversation_b: list[Message] = field(default_factory=list)
    phase: Phase = Phase.GENERATING
    error: str | None = None
    touched: float = field(default_factory=time.monotonic)
    # Each finished turn's answer latency per side (None where it was not measured), stored with the vote.
    timings_a: list[AnswerTiming | None] = field(default_factory=list)
    timings_b: list[AnswerTiming | None] = field(default_factory=list)
    runs: list[BattleRun] = field(default_factory=list)  # stored with the vote, in the order they were asked
    pair_probability: float | None = None  # the sampler's probability of this pair (anonymous battles)
    running: set[str] = field(default_factory=set)  # sides whose code is running now (one run per side at once)
    # The id its vote is stored under, fixed for the battle: a vote sent again after the store failed to
    # answer (was it committed?) is stored once, never twice.
    vote_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def turn(self) -> int:
        return sum(1 for m in self.conversation_a if m["role"] == "user")

    @property
    def chars(self) -> int:
        """What this battle holds in memory, in characters (prompts, answers and run outputs of both sides)."""
        return sum(len(m["content"]) for m in (*self.conversation_a, *self.conversation_b)) + \
            sum(_run_chars(r) for r in self.runs)

    def answer(self, side: str) -> str:
        """The latest answer of a side ("model_a"/"model_b"): what its Run button runs."""
        conversation = self.conversation_a if side == "model_a" else self.conversation_b
        replies = [m["content"] for m in conversation if m["role"] == "assistant"]
        return replies[-1] if replies else ""

    def runs_of(self, side: str, turn: int | None = None) -> list[BattleRun]:
        """This side's runs (of the current turn unless another is named), oldest first."""
        turn = self.turn if turn is None else turn
        return [r for r in self.runs if r.side == side and r.turn == turn]


def _run_chars(r: BattleRun) -> int:
    return len(r.run.stdout) + len(r.run.stderr) + len(r.run.code)


@dataclass(frozen=True)
class RunTicket:
    """A run the registry allowed: which battle, side and turn, and the answer to run."""

    token: str
    side: str  # model_a | model_b
    turn: int
    answer: str
    language: str | None  # the prompt's language, a hint for untagged code blocks
    started_at: str


@dataclass(frozen=True)
class VoteResult:
    battle: Battle
    model_a: str
    model_b: str
    timings: BattleTimings | None = None  # the answers' latencies, as stored with the vote


class BattleRegistry:
    """Live battles keyed by token, bounded in count and age. Thread-safe."""

    def __init__(self, store: VoteStore, *, ttl_s: float = 6 * 3600, max_battles: int = 50_000,
                 max_chars: int = 64_000_000, clock: Callable[[], float] = time.monotonic) -> None:
        """``max_chars`` bounds the memory of live battles: past it the least recently used are forgotten
        (their tabs are told to start a new battle), so unvoted battles with huge prompts cannot pile up."""
        self.store = store
        self.ttl_s = ttl_s
        self.max_battles = max_battles
        self.max_chars = max_chars
        self._chars = 0
        self._clock = clock
        self._battles: OrderedDict[str, BattleSession] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._battles)

    def tokens(self) -> list[str]:
        """Tokens of the live battles (for monitoring and tests; never sent anywhere)."""
        with self._lock:
            return list(self._battles)

    def open(self, *, owner: str, voter: str, model_a: str, model_b: str, mode: str,
             prompt: PromptInfo, pair_probability: float | None = None) -> str:
        """Start a battle on its first user turn; returns the opaque token (the browser's only handle).
        ``pair_probability``: the sampler's probability of this pair, kept with the vote."""
        token = secrets.token_urlsafe(24)
        session = BattleSession(token=token, owner=owner, voter=voter, model_a=model_a, model_b=model_b,
                                mode=mode, prompt=prompt, touched=self._clock(), pair_probability=pair_probability)
        session.conversation_a.append({"role": "user", "content": prompt.text})
        session.conversation_b.append({"role": "user", "content": prompt.text})
        with self._lock:
            self._battles[token] = session
            self._chars += session.chars
            self._expire(keep=token)
        return token

    def _get(self, token: str | None, owner: str) -> BattleSession:
        session = self._battles.get(token or "")
        # An unknown token and another session's token get the same answer: no oracle for valid tokens.
        if session is None or not secrets.compare_digest(session.owner, owner):
            raise VoteRefused("no live battle in this session: start a new battle")
        return session

    def peek(self, token: str | None, owner: str) -> BattleSession | None:
        with self._lock:
            try:
                return self._get(token, owner)
            except VoteRefused:
                return None

    def add_turn(self, token: str, owner: str, text: str) -> BattleSession:
        """A follow-up question to both models, allowed before the vote once both answers are complete."""
        with self._lock:
            s = self._get(token, owner)
            if s.phase is not Phase.READY:
                raise VoteRefused(_phase_reason(s.phase, "ask a follow-up"))
            s.conversation_a.append({"role": "user", "content": text})
            s.conversation_b.append({"role": "user", "content": text})
            s.phase = Phase.GENERATING
            self._chars += 2 * len(text)
            self._touch(s)
            self._expire(keep=s.token)
            return s

    def finish_turn(self, token: str, owner: str, answer_a: str, answer_b: str, error: str | None = None, *,
                    timing_a: AnswerTiming | None = None, timing_b: AnswerTiming | None = None) -> None:
        """Record the answers of the turn that was streaming (and how long they took); an error fails the
        battle for good."""
        with self._lock:
            s = self._get(token, owner)
            if s.phase is not Phase.GENERATING:
                raise VoteRefused(_phase_reason(s.phase, "finish a turn"))
            # A model's reply can carry lone surrogates (JSON "\\ud800"): kept as U+FFFD, so the vote can be
            # stored as UTF-8 like everything else.
            answer_a, answer_b = _valid_text(answer_a), _valid_text(answer_b)
            s.conversation_a.append({"role": "assistant", "content": answer_a})
            s.conversation_b.append({"role": "assistant", "content": answer_b})
            s.timings_a.append(timing_a)
            s.timings_b.append(timing_b)
            s.phase = Phase.FAILED if error else Phase.READY
            s.error = error
            self._chars += len(answer_a) + len(answer_b)
            self._touch(s)
            self._expire(keep=s.token)

    def abandon(self, token: str | None, owner: str) -> None:
        """Forget a battle that will take no vote (new battle, regenerate, closed tab)."""
        with self._lock:
            s = self._battles.get(token or "")
            if s is not None and secrets.compare_digest(s.owner, owner) and s.phase is not Phase.VOTED:
                self._drop(s.token)

    def start_run(self, token: str | None, owner: str, side: str, *, max_per_side: int) -> RunTicket:
        """Allow one run of a side's latest answer: only in a live battle of this session whose answers are
        complete (as a vote), one at a time per side, at most ``max_per_side`` per side and turn."""
        if side not in RUN_SIDES:
            raise VoteRefused(f"unknown side {side!r}")
        with self._lock:
            s = self._get(token, owner)
            if s.phase is not Phase.READY:
                raise VoteRefused(_phase_reason(s.phase, "run the code"))
            if side in s.running:
                raise VoteRefused("this answer's code is running already: wait for its output")
            done = len(s.runs_of(side))
            if done >= max_per_side:
                raise VoteRefused(f"this answer has run {done} time(s) in this turn, the most this arena allows")
            s.running.add(side)
            self._touch(s)
            return RunTicket(token=s.token, side=side, turn=s.turn, answer=s.answer(side),
                             language=s.prompt.language, started_at=utc_now())

    def finish_run(self, ticket: RunTicket, owner: str, run: BattleRun | None) -> bool:
        """Record a run allowed by :meth:`start_run` (None: it did not happen). True when it is kept with the
        battle; False when the battle was voted on, abandoned or forgotten meanwhile (the run is not stored:
        the vote was cast without it)."""
        with self._lock:
            s = self._battles.get(ticket.token)
            if s is None or not secrets.compare_digest(s.owner, owner):
                return False
            s.running.discard(ticket.side)
            if run is None or s.phase is Phase.VOTED:
                return False
            s.runs.append(run)
            self._chars += _run_chars(run)
            self._touch(s)
            self._expire(keep=s.token)
            return True

    def vote(self, token: str | None, owner: str, winner: str) -> VoteResult:
        """Store the one vote of a complete battle of this session; refuse anything else."""
        if winner not in WINNERS:
            raise VoteRefused(f"unknown vote {winner!r}")
        with self._lock:
            s = self._get(token, owner)
            if s.phase is not Phase.READY:
                raise VoteRefused(_phase_reason(s.phase, "vote"))
            # Claimed under the lock: a double click or a replayed request finds VOTED and is refused.
            s.phase = Phase.VOTED
        timings = BattleTimings.of(s.timings_a, s.timings_b)
        try:
            battle = battle_with_timings(self._battle_of(s, winner), timings)
            try:
                self.store.add(battle)
            except BattleError:
                # Already stored under this battle's id: an earlier try was committed though its answer
                # was lost (a dropped connection at COMMIT). That vote stands.
                battle = self.store.get(s.vote_id)
        except Exception:
            # Not stored, whatever failed (building the record, or the store): the claim is released so
            # that the user can try again, instead of a lost vote and "already voted" on every retry.
            with self._lock:
                s.phase = Phase.READY
            raise
        with self._lock:
            self._drop(s.token)
        return VoteResult(battle=battle, model_a=s.model_a, model_b=s.model_b, timings=timings)

    @staticmethod
    def _battle_of(s: BattleSession, winner: str) -> Battle:
        answers_a = [m["content"] for m in s.conversation_a if m["role"] == "assistant"]
        answers_b = [m["content"] for m in s.conversation_b if m["role"] == "assistant"]
        multi = s.turn > 1
        return Battle(
            model_a=s.model_a, model_b=s.model_b, winner=winner, source="human", mode=s.mode,
            prompt_id=s.prompt.prompt_id, prompt=s.prompt.text, category=s.prompt.category,
            language=s.prompt.language, turn=s.turn, answer_a=answers_a[0], answer_b=answers_b[0],
            conversation_a=list(s.conversation_a) if multi else None,
            conversation_b=list(s.conversation_b) if multi else None,
            voter=s.voter,
            flags=_flags(s, answers_a, answers_b), runs=tuple(s.runs), pair_probability=s.pair_probability,
            id=s.vote_id,
        )

    def _touch(self, s: BattleSession) -> None:
        s.touched = self._clock()
        self._battles.move_to_end(s.token)  # keeps the dict ordered by last use, so expiry pops the oldest

    def _drop(self, token: str) -> None:
        s = self._battles.pop(token, None)
        if s is not None:
            self._chars -= s.chars

    def _expire(self, keep: str | None = None) -> None:
        """Forget battles past their age, and the least recently used while over the count or the memory
        bound; ``keep`` (the battle being worked on) stays."""
        now = self._clock()
        while self._battles:
            oldest = next(iter(self._battles.values()))
            if oldest.token == keep and len(self._battles) == 1:
                break
            over = len(self._battles) > self.max_battles or self._chars > self.max_chars
            if now - oldest.touched < self.ttl_s and not over:
                break
            if oldest.token == keep:
                self._battles.move_to_end(keep)
                continue
            self._drop(oldest.token)

    @property
    def live_chars(self) -> int:
        return self._chars


def _flags(s: BattleSession, answers_a: list[str], answers_b: list[str]) -> list[str]:
    """Identity-leak flags of the answers and of the run outputs the voter saw (each flag once)."""
    names = [s.model_a, s.model_b]
    flags = leak_flags("\n\n".join(answers_a), "\n\n".join(answers_b), names)
    outputs = [(r.side, f"{r.run.stdout}\n{r.run.stderr}") for r in s.runs]
    return list(dict.fromkeys([*flags, *run_leak_flags(outputs, names)]))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid_text(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _phase_reason(phase: Phase, action: str) -> str:
    return {
        Phase.GENERATING: f"cannot {action} yet: the answers are still being written",
        Phase.FAILED: f"cannot {action}: a model failed in this battle; start a new battle",
        Phase.VOTED: f"cannot {action}: this battle already has its vote; start a new battle",
        Phase.READY: f"cannot {action} now",
    }[phase]
