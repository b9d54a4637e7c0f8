"""The supervised policy: wraps the agent's policy so the person sees every action before it
happens (kind, pointer target, the model's pointer heatmap and confidence) and, in approve mode,
decides it: approve, replace (another pointer target or another key), or reject.

    gate = SupervisedPolicy(policy, on_proposal=show, corrections=session, should_abort=paused)
    loop = AgentLoop(screen, driver, gate, ...)          # the product's own loop, unchanged
    gate.decide(Decision.replace(Action.click(0.2, 0.4)))  # from the window, any thread

Plain threading, no Qt: `act` runs on the agent loop's thread and, in approve mode, blocks there
(never on the window's thread) until a decision arrives or `should_abort()` turns true (pause,
stop, takeover; the loop then discards the action). A replaced or rejected action is a correction:
it is written to the `CorrectionSession` (app/corrections.py) with the time of the frame the
agent saw. A rejection is stored as a `wait` (the person's answer: do nothing here) and pauses
the agent, so the same proposal is not offered again on the same screen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from emulator.loop import Observation, Policy
from emulator.schema import Action, Kind

APPROVE, REPLACE, REJECT = "approve", "replace", "reject"
REJECTED_LABEL = Action.wait(0.05)  # what a rejection teaches: nothing should happen on this frame
POLL_S = 0.02  # how often a waiting approval checks should_abort


@dataclass(frozen=True)
class Decision:
    verdict: str  # approve | replace | reject
    action: Action | None = None  # the person's action, for replace

    @classmethod
    def approve(cls) -> Decision:
        return cls(APPROVE)

    @classmethod
    def replace(cls, action: Action) -> Decision:
        return cls(REPLACE, action)

    @classmethod
    def reject(cls) -> Decision:
        return cls(REJECT)


@dataclass(frozen=True)
class Proposal:
    """What the agent is about to do, as the window shows it (plain data)."""

    step: int
    action: Action
    waiting: bool  # approve mode: nothing happens until the person decides
    heatmap: np.ndarray | None = None  # (rows, cols) pointer probabilities, when the model gives them
    kind_p: float | None = None  # the model's probability of the action's kind
    target_p: float | None = None  # ... of its pointer cell, or of its key


class LogitsTap:
    """Keeps the last head logits of a policy with a `logits(x)` method (models.policy.OnnxPolicy),
    by shadowing that method on the instance: `act` computes them once, we read them after."""

    def __init__(self, policy: Any):
        self.last: dict[str, np.ndarray] | None = None
        inner = policy.logits

        def logits(*args, **kwargs):
            self.last = out = inner(*args, **kwargs)
            return out

        policy.logits = logits


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max())
    return e / e.sum()


def inspect_logits(logits: dict[str, np.ndarray], action: Action) -> dict:
    """Heatmap and confidences for one decision, from the heads of a model (models/spec.py)."""
    from emulator.schema import KEY_INDEX, KINDS
    from models.spec import GRID

    out: dict = {}
    if "cell" in logits:
        p = _softmax(np.asarray(logits["cell"], np.float64).reshape(-1))
        out["heatmap"] = p.reshape(GRID.rows, GRID.cols).astype(np.float32)
        if action.has_position:
            out["target_p"] = float(p[GRID.cell(action.x, action.y)])
    if "kind" in logits:
        out["kind_p"] = float(
            _softmax(np.asarray(logits["kind"], np.float64).reshape(-1))[KINDS.index(action.kind)]
        )
    if action.kind == Kind.KEY and "key" in logits:
        out["target_p"] = float(
            _softmax(np.asarray(logits["key"], np.float64).reshape(-1))[KEY_INDEX[action.key]]
        )
    return out


class SupervisedPolicy:
    """The agent loop's Policy: the inner policy's decision, shown and (in approve mode) decided."""

    def __init__(
        self,
        policy: Policy,
        on_proposal: Callable[[Proposal], None] = lambda p: None,
        corrections=None,
        should_abort: Callable[[], bool] = lambda: False,
        on_decided: Callable[[str], None] = lambda verdict: None,
    ):
        self.inner = policy
        self.on_proposal, self.on_decided = on_proposal, on_decided
        self.corrections = corrections
        self.should_abort = should_abort
        self.approve = False
        self._tap = LogitsTap(policy) if callable(getattr(policy, "logits", None)) else None
        self._cond = threading.Condition()
        self._waiting = False
        self._decision: Decision | None = None
        self._step = 0
        self._label_t: float | None = None
        self.decision_ms = 0.0  # how long the last action waited for the person (approve mode)

    # -- the Policy protocol (agent loop thread) --------------------------------------------------
    def preprocess(self, obs: Observation) -> Any:
        self._step = obs.step
        self._label_t = None
        self.decision_ms = 0.0
        if self.approve and self.corrections is not None:
            self._label_t = self.corrections.frame_time()  # a recorded frame shows what the agent sees
        return self.inner.preprocess(obs)

    def act(self, inputs: Any) -> Action:
        action = self.inner.act(inputs)
        details = {}
        if self._tap is not None and self._tap.last is not None:
            details = inspect_logits({k: v[0] for k, v in self._tap.last.items()}, action)
        if not self.approve:
            self.on_proposal(Proposal(self._step, action, False, **details))
            return action
        if self._label_t is None and self.corrections is not None:
            self._label_t = self.corrections.frame_time()
        with self._cond:
            self._decision, self._waiting = None, True
        self.on_proposal(Proposal(self._step, action, True, **details))
        t = time.perf_counter()
        decision = self._wait()
        self.decision_ms = (time.perf_counter() - t) * 1000
        if decision is None:  # paused, stopped or taken over: the loop discards what we return
            self._rewrite_history(None)
            self.on_decided("abort")
            return Action.wait(0.0)
        if decision.verdict == APPROVE:
            self.on_decided(APPROVE)
            return action
        if decision.verdict == REPLACE:
            self._correct(decision.action, action, "replaced")
            self._rewrite_history(decision.action)
            self.on_decided(REPLACE)
            return decision.action
        self._correct(REJECTED_LABEL, action, "rejected")
        self._rewrite_history(None)
        self.on_decided(REJECT)
        return Action.wait(0.0)

    # -- the window's side (any thread) ---------------------------------------------------------
    @property
    def waiting(self) -> bool:
        return self._waiting

    def decide(self, decision: Decision) -> bool:
        """Deliver the person's decision; False when no action is waiting for one."""
        with self._cond:
            if not self._waiting or self._decision is not None:
                return False
            self._decision = decision
            self._cond.notify_all()
            return True

    # -- internals ----------------------------------------------------------------------------------
    def _wait(self) -> Decision | None:
        with self._cond:
            try:
                while self._decision is None:
                    if self.should_abort():
                        return None
                    self._cond.wait(POLL_S)
                return self._decision
            finally:
                self._waiting = False

    def _rewrite_history(self, executed: Action | None) -> None:
        """A model that remembers its own last actions (models/policy.py keeps `history`, one token
        per `act`) must remember what was executed instead: the replacement, or nothing."""
        history = getattr(self.inner, "history", None)
        if not isinstance(history, list) or not history:
            return
        if executed is None:
            history.pop()
            return
        try:
            from models.spec import GRID, history_token
        except ImportError:
            return
        idx = executed.to_index(GRID)
        history[-1] = history_token(idx.kind, idx.key, idx.mods)

    def _correct(self, label: Action, proposed: Action, how: str) -> None:
        if self.corrections is not None:
            t = self._label_t if self._label_t is not None else time.monotonic()
            self.corrections.add(t, label, proposed=proposed, how=how)
