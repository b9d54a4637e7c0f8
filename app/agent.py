"""The agent worker: one thread that owns the target (MiniWoB world or a display), the policy, the
product's agent loop and the correction session, and reports to the window through Qt signals
carrying plain data. Every command is a quick, thread-safe call that never waits on the loop.

    agent = AgentWorker(TargetSpec.miniwob("click-test"), "models/default.onnx", "data/app/corrections")
    agent.signals.state.connect(...)      # starting idle running approving paused takeover error
    agent.start_thread()
    agent.start(); agent.pause(); agent.step(); agent.stop(); agent.hand_back()
    agent.decide(Decision.approve())      # approve mode
    agent.shutdown()                      # stops the run, finishes corrections, closes the target

Takeover: a `TakeoverMonitor` (emulator/loop.py) on the agent's display sees every input event the
agent did not inject; while a run is active the first one pauses the loop (releasing what it held)
and opens a takeover segment of the correction session, until the person hands back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.corrections import AgentInjections, CorrectionSession
from app.supervision import REJECT, Decision, SupervisedPolicy
from app.targets import TargetSpec
from emulator.errors import EmulatorError
from emulator.loop import DEFAULT_STOP_HOTKEY, AgentLoop, Policy, TakeoverMonitor

IDLE, STARTING, RUNNING, APPROVING, PAUSED, TAKEOVER, ERROR = (
    "idle", "starting", "running", "approving", "paused", "takeover", "error",
)  # fmt: skip
ACTIVE = (RUNNING, APPROVING, PAUSED, TAKEOVER)


class AgentSignals(QObject):
    state = Signal(str)
    target_ready = Signal(object)  # {"display", "viewport" (Viewport), "kind", "task"}
    proposal = Signal(object)  # supervision.Proposal
    step = Signal(object)  # StepTiming as a dict, plus "decision_ms" (the person's share) and "t"
    episode_started = Signal(object)  # {"task", "seed", "text", "t"}
    episode = Signal(object)  # {"task", "seed", "success", "reward", "steps", "seconds", "stopped_by"}
    corrections = Signal(int)  # corrections collected in this app session
    saved = Signal(str)  # a correction recording was written (its folder)
    error = Signal(str)


class AgentWorker:
    def __init__(self, spec: TargetSpec, policy: str | Policy, corrections_dir: str | Path,
                 approve: bool = False, stop_hotkey: str | None = DEFAULT_STOP_HOTKEY,
                 human_filter: Callable[[str], bool] | None = None, autostart: bool = False):  # fmt: skip
        self.spec = spec
        self.signals = AgentSignals()
        self.corrections_dir = Path(corrections_dir)
        self.stop_hotkey = stop_hotkey
        self.human_filter = human_filter  # True for input that is the person using the app itself
        self.autostart = autostart  # start a run as soon as the target is ready
        self.state = STARTING
        self.target = None
        self.loop: AgentLoop | None = None
        self.gate: SupervisedPolicy | None = None
        self.session: CorrectionSession | None = None
        self.collected = 0  # corrections saved by finished sessions of this app session
        self._policy_source = policy
        self._policy: Policy | None = None if isinstance(policy, str) else policy
        self._task = spec.task
        self._approve = approve
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._pending: list[tuple[str, bool]] = []  # ("run", stepping) / ("shutdown", _)
        self._stop_run = threading.Event()
        self._paused = self._stepping = self._takeover = False
        self._monitor: TakeoverMonitor | None = None
        self._thread = threading.Thread(target=self._main, name="app-agent", daemon=True)

    # -- commands (any thread, never block) -------------------------------------------------------
    def start_thread(self) -> AgentWorker:
        self._thread.start()
        return self

    def start(self) -> None:
        """Start a run, or resume a paused one (hand back after a takeover)."""
        with self._lock:
            if self.state == IDLE:
                self._begin_run(stepping=False)
            elif self.state in (PAUSED, TAKEOVER):
                self._continue(stepping=False)

    def step(self) -> None:
        """Exactly one action, then pause."""
        with self._lock:
            if self.state == IDLE:
                self._begin_run(stepping=True)
            elif self.state in (PAUSED, TAKEOVER):
                self._continue(stepping=True)

    def pause(self, reason: str = "pause") -> None:
        with self._lock:
            if self.state in (RUNNING, APPROVING):
                self._paused = True
                if self.loop is not None:
                    self.loop.pause(reason)
                self._set_state(PAUSED)

    def stop(self, reason: str = "stop") -> None:
        with self._lock:
            self._stop_run.set()
            if self.loop is not None:
                self.loop.stop(reason)

    def hand_back(self) -> None:
        self.start()

    def set_approve(self, on: bool) -> None:
        with self._lock:
            self._approve = on
            if self.gate is not None:
                self.gate.approve = on

    def decide(self, decision: Decision) -> bool:
        gate = self.gate
        return gate is not None and gate.decide(decision)

    def set_task(self, task: str) -> None:
        """MiniWoB: the task of the next episode."""
        self._task = task

    def set_model(self, policy: str | Policy) -> None:
        """The policy of the next run (a model path is loaded on the agent thread)."""
        with self._lock:
            self._policy_source = policy
            self._policy = None if isinstance(policy, str) else policy

    def shutdown(self, timeout: float = 20.0) -> bool:
        """Stop everything, finish the correction session, close the target; True when the
        thread has ended."""
        self.stop("shutdown")
        self._post("shutdown", False)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the agent thread --------------------------------------------------------------------------
    def _post(self, what: str, stepping: bool) -> None:
        with self._wake:
            self._pending.append((what, stepping))
            self._wake.notify_all()

    def _main(self) -> None:
        try:
            self.target = self.spec.build()
            self.injections = AgentInjections(self.target.driver)
            self._monitor = TakeoverMonitor(
                self.target.display_name, self.target.driver.injected, self._on_human
            )
        except Exception as e:
            self._fail(e)
            self._wait_for_shutdown()
            return
        self.signals.target_ready.emit({"display": self.target.display_name, "viewport": self.target.viewport,
                                        "kind": self.spec.kind, "task": self._task})  # fmt: skip
        self._set_state(IDLE)
        if self.autostart:
            self.start()
        try:
            while True:
                with self._wake:
                    while not self._pending:
                        self._wake.wait()
                    what, stepping = self._pending.pop(0)
                if what == "shutdown":
                    break
                self._run(stepping)
        finally:
            self._monitor.stop()
            self.target.close()  # releases whatever the agent's driver holds

    def _wait_for_shutdown(self) -> None:
        with self._wake:
            while not any(what == "shutdown" for what, _ in self._pending):
                self._wake.wait()

    def _load_policy(self) -> Policy:
        if self._policy is None:
            from models.policy import OnnxPolicy

            self._policy = OnnxPolicy(str(self._policy_source))  # its own session: the tap shadows logits
        return self._policy

    def _begin_run(self, stepping: bool) -> None:
        """(lock held) The run starts on the agent thread; its state is visible at once."""
        self._stop_run.clear()
        self._paused, self._stepping, self._takeover = False, stepping, False
        self._set_state(RUNNING)
        self._post("run", stepping)

    def _run(self, stepping: bool) -> None:
        target = self.target
        try:
            policy = self._load_policy()
            while not self._stop_run.is_set():
                if self.session is not None and self.session.task != self._task:
                    self._finish_session()
                if target.episodic:
                    target.task = self._task
                text = target.begin_episode()
                if self.session is None:
                    self.session = CorrectionSession(self.corrections_dir, target.display_name, target.viewport,
                                                     task=target.task, stop_hotkey=self.stop_hotkey,
                                                     injections=self.injections)  # fmt: skip
                gate = SupervisedPolicy(policy, self._proposed, self.session, self._should_abort,
                                        self._decided)  # fmt: skip
                gate.approve = self._approve
                loop = AgentLoop(
                    target.screen, target.driver, gate, max_steps=target.max_steps, max_seconds=target.max_seconds,
                    settle_timeout=0.5, react_window=0.05, settle_poll=0.02, stop_hotkey=None, takeover=False,
                    on_step=self._on_step,
                )  # fmt: skip
                with self._lock:
                    if self._stop_run.is_set():
                        break
                    if self._paused or self._takeover:
                        loop.pause("paused")
                    self.loop, self.gate = loop, gate
                started = time.monotonic()
                self.signals.episode_started.emit({"task": target.task, "seed": target.episode_seed, "text": text,
                                                   "t": started})  # fmt: skip
                summary = loop.run()
                with self._lock:
                    self.loop = self.gate = None
                status = target.status()
                self.signals.episode.emit({
                    "task": target.task, "seed": target.episode_seed, "steps": summary.steps,
                    "seconds": round(time.monotonic() - started, 3), "stopped_by": summary.stopped_by,
                    "success": None if status is None else status.success,
                    "reward": None if status is None else status.reward,
                })  # fmt: skip
                if not target.episodic or summary.stopped_by in ("stop", "hotkey", "shutdown"):
                    break
        except Exception as e:  # a broken model, an action outside the viewport, a dead browser
            self._fail(e, keep_going=True)
        finally:
            with self._lock:
                self.loop = self.gate = None
                self._takeover = False
            self._finish_session()
            if self.state != ERROR:
                self._set_state(IDLE)

    def _finish_session(self) -> None:
        with self._lock:
            session, self.session = self.session, None
        if session is None:
            return
        try:
            path = session.finish()
        except Exception as e:
            self.signals.error.emit(f"corrections could not be saved: {e}")
            return
        if path is not None:
            self.collected += session.count
            self.signals.saved.emit(str(path))
        self.signals.corrections.emit(self.collected)

    # -- callbacks from the loop, the gate and the listeners ---------------------------------------
    def _on_step(self, timing, obs) -> None:
        gate = self.gate
        decision_ms = round(gate.decision_ms, 3) if gate is not None else 0.0
        self.signals.step.emit({**asdict(timing), "decision_ms": decision_ms, "t": time.monotonic()})
        session = self.session
        if session is not None and session.recount_due:
            self.signals.corrections.emit(self.collected + session.recount())
        if self.target.episodic and self.target.status().done:
            self.loop.stop("done")
        with self._lock:
            if self._stepping and self.loop is not None and self.state in (RUNNING, APPROVING):
                self._paused = True
                self.loop.pause("step")
                self._set_state(PAUSED)

    def _proposed(self, proposal) -> None:
        self.signals.proposal.emit(proposal)  # first: the window has it when the state says so
        if proposal.waiting:
            with self._lock:
                if self.state == RUNNING:
                    self._set_state(APPROVING)

    def _should_abort(self) -> bool:
        return self._paused or self._takeover or self._stop_run.is_set()  # no lock: the gate holds its own

    def _decided(self, verdict: str) -> None:
        session = self.session
        if verdict in ("replace", REJECT) and session is not None:
            self.signals.corrections.emit(self.collected + session.count)
        if verdict == REJECT:
            self.pause("rejected")
        elif verdict != "abort":
            with self._lock:
                if self.state == APPROVING:
                    self._set_state(RUNNING)

    def _on_human(self, what: str) -> None:
        if self.human_filter is not None and self.human_filter(what):
            return
        with self._lock:
            if self.state not in ACTIVE or self._takeover or self.session is None:
                return
            self._takeover = True
            self.session.takeover_started(time.monotonic())
            if self.loop is not None:
                self.loop.pause("takeover")
            self._set_state(TAKEOVER)

    def _continue(self, stepping: bool) -> None:
        """Resume a paused or taken-over run (lock held)."""
        if self._takeover and self.session is not None:
            self.session.takeover_ended(time.monotonic())
        self._takeover = self._paused = False
        self._stepping = stepping
        if self.loop is not None:
            self.loop.resume()
        self._set_state(RUNNING)

    def _set_state(self, state: str) -> None:
        with self._lock:
            if state == RUNNING and self.gate is not None and self.gate.waiting:
                state = APPROVING
            if state != self.state:
                self.state = state
                self.signals.state.emit(state)

    def _fail(self, e: BaseException, keep_going: bool = False) -> None:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        if not isinstance(e, EmulatorError):
            message = f"{type(e).__name__}: {message}"
        self.signals.error.emit(message)
        if not keep_going:
            self._set_state(ERROR)
