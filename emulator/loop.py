"""The agent loop: capture -> preprocess -> infer -> act -> wait for the screen to settle, with
step and time budgets, JSONL telemetry per step, a global stop hotkey and human takeover.

    loop = AgentLoop(screen, driver, policy, max_steps=100, telemetry="run.jsonl")
    summary = loop.run()       # returns when the policy says done, a budget runs out, or stop

Settling is event-driven: the X DAMAGE extension reports whether any pixel of the viewport changed
since the frame the policy saw. Nothing changed: that frame is still the screen and is the next
observation, so the step costs no capture at all. Something changed: capture, and repeat until no
damage arrives for `settle_poll` after a capture, or `settle_timeout` passes. Without DAMAGE (or
`damage=False`) the same is done by capturing until a capture equals the one before it.
Actions that make applications react (click, key, scroll, button) first wait up to
`react_window` for the screen to change at all: a Qt or Chromium repaint lands 5-20 ms after the
event, and a policy must not act again on the frame from before it. `settle_min` always waits.

Safety: `StopHotkey` (pynput listener, works whatever window has focus; default
ctrl+alt+shift+x) halts the loop between any two polls (a few ms); `TakeoverMonitor` sees every
real input event and, when one does not match what the emulator just injected, pauses the loop and
releases whatever it holds. It resumes after `takeover_idle` seconds without human input (None:
only `resume()` resumes).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from emulator.damage import DamageWatch
from emulator.errors import EmulatorError
from emulator.input import BUTTON_NUMBERS, InjectionLog, InputDriver, listener_key_name
from emulator.listen import keyboard_listener, mouse_listener, stop_listener
from emulator.schema import Action, Kind, Viewport
from emulator.screen import Screen, draw_cursor, same_pixels

DEFAULT_STOP_HOTKEY = "ctrl+alt+shift+x"
REACTIVE_KINDS = frozenset({Kind.CLICK, Kind.KEY, Kind.SCROLL, Kind.MOUSE_DOWN, Kind.MOUSE_UP})


@dataclass
class Observation:
    """What a policy sees: the viewport's pixels (BGRA, pointer drawn in) and a little state."""

    frame: np.ndarray
    pointer: tuple[float, float] | None  # viewport-normalized, None when outside the viewport
    held: bool  # a mouse button is down
    elapsed: float  # seconds since the episode started
    step: int


class Policy(Protocol):
    """observation -> action, in two timed halves."""

    def preprocess(self, obs: Observation) -> Any: ...

    def act(self, inputs: Any) -> Action: ...


class FunctionPolicy:
    """A policy from a plain function of the observation (scripted policies, tests)."""

    def __init__(self, fn: Callable[[Observation], Action]):
        self.fn = fn

    def preprocess(self, obs: Observation) -> Observation:
        return obs

    def act(self, obs: Observation) -> Action:
        return self.fn(obs)


@dataclass
class StepTiming:
    step: int
    action: dict
    capture_ms: float
    preprocess_ms: float
    infer_ms: float
    act_ms: float
    settle_ms: float
    settled: bool
    step_ms: float


@dataclass
class RunSummary:
    steps: int
    seconds: float
    stopped_by: str  # done | steps | seconds | hotkey | stop | error
    pauses: int = 0
    stop_latency_ms: float | None = None
    timings: list[StepTiming] = field(default_factory=list)

    def medians(self) -> dict[str, float]:
        keys = ("capture_ms", "preprocess_ms", "infer_ms", "act_ms", "settle_ms", "step_ms")
        if not self.timings:
            return {}
        return {k: float(np.median([getattr(t, k) for t in self.timings])) for k in keys}


def parse_hotkey(text: str) -> frozenset[str]:
    from emulator.schema import KEY_INDEX

    keys = frozenset(k.strip().lower() for k in text.split("+") if k.strip())
    if not keys or any(k not in KEY_INDEX for k in keys):
        raise EmulatorError(
            f"bad hotkey {text!r}: use schema key names joined by '+', e.g. {DEFAULT_STOP_HOTKEY}"
        )
    return keys


class StopHotkey:
    """Calls `on_hotkey` when all keys of the combination are down, on any window of `display`."""

    def __init__(self, display: str, on_hotkey: Callable[[], None], combo: str = DEFAULT_STOP_HOTKEY):
        self.combo = parse_hotkey(combo)
        self.on_hotkey = on_hotkey
        self._down: set[str] = set()
        self._listener = keyboard_listener(display, self._press, self._release)

    def _press(self, key, *_):
        name = listener_key_name(key)
        if name:
            self._down.add(name)
            if self.combo <= self._down:
                self.on_hotkey()

    def _release(self, key, *_):
        self._down.discard(listener_key_name(key) or "")

    def stop(self) -> None:
        stop_listener(self._listener)


class TakeoverMonitor:
    """Calls `on_human(description)` for every input event the emulator did not inject."""

    def __init__(self, display: str, injected: InjectionLog, on_human: Callable[[str], None]):
        self.injected = injected
        self.on_human = on_human
        self.last_human = 0.0
        self._mouse = mouse_listener(display, self._move, self._click, self._scroll)
        self._keys = keyboard_listener(
            display, lambda k, *_: self._key(k, True), lambda k, *_: self._key(k, False)
        )

    def _human(self, what: str) -> None:
        self.last_human = time.monotonic()
        self.on_human(what)

    def _move(self, x, y, *_):
        if not self.injected.match("move", int(x), int(y)):
            self._human(f"pointer moved to {int(x)},{int(y)}")

    def _click(self, x, y, button, pressed, *_):
        number = BUTTON_NUMBERS.get(getattr(button, "name", ""), 0)
        if not self.injected.match("button", int(x), int(y), detail=number, down=pressed) and not (
            not pressed and self.injected.match("button", -1, -1, detail=number, down=False)
        ):
            self._human(
                f"{getattr(button, 'name', button)} button {'down' if pressed else 'up'} at {int(x)},{int(y)}"
            )

    def _scroll(self, x, y, dx, dy, *_):
        if not self.injected.match("scroll"):
            self._human(f"scroll {dx},{dy}")

    def _key(self, key, down):
        if not self.injected.match("key", down=down):
            self._human(f"key {listener_key_name(key) or key} {'down' if down else 'up'}")

    def stop(self) -> None:
        stop_listener(self._mouse)
        stop_listener(self._keys)


class AgentLoop:
    """Runs one policy on one viewport until done, a budget, or a stop. A loop runs once (a stop
    requested before `run` starts still counts); make a new one for the next episode."""

    def __init__(
        self,
        screen: Screen,
        driver: InputDriver,
        policy: Policy,
        *,
        max_steps: int = 1000,
        max_seconds: float = 300.0,
        settle_min: float = 0.0,
        settle_timeout: float = 0.5,
        react_window: float = 0.05,
        settle_poll: float = 0.002,
        telemetry: str | None = None,
        stop_hotkey: str | None = DEFAULT_STOP_HOTKEY,
        takeover: bool = True,
        takeover_idle: float | None = 2.0,
        damage: bool = True,
        on_step: Callable[[StepTiming, Observation], None] | None = None,
        follow: Callable[[], Viewport] | None = None,
    ):
        self.screen, self.driver, self.policy = screen, driver, policy
        self.viewport = driver.viewport
        self.max_steps, self.max_seconds = max_steps, max_seconds
        self.settle_min, self.settle_timeout, self.settle_poll = settle_min, settle_timeout, settle_poll
        self.react_window = react_window
        self.telemetry_path = telemetry
        self.stop_hotkey, self.takeover, self.takeover_idle = stop_hotkey, takeover, takeover_idle
        self.on_step = on_step
        self.follow = follow  # where the viewport is now (a window that moves); asked every step
        self.use_damage = damage
        self._watch: DamageWatch | None = None
        self._stop = threading.Event()
        self._stop_reason = "stop"
        self._stop_requested_at: float | None = None
        self._paused = threading.Event()
        self._pause_count = 0
        self._steps_done = 0
        self._started = False
        self._log = None

    # -- control (thread-safe) --------------------------------------------------------------
    def stop(self, reason: str = "stop") -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop_requested_at = time.monotonic()
            self._stop.set()

    def pause(self, reason: str = "pause") -> None:
        if not self._paused.is_set():
            self._paused.set()
            self._pause_count += 1
            self.driver.release_all()
            self._event("pause", reason=reason)

    def resume(self) -> None:
        if self._paused.is_set():
            self._paused.clear()
            self._event("resume")

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @property
    def steps_done(self) -> int:
        """Steps taken so far in the current run."""
        return self._steps_done

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> RunSummary:
        if self._started:
            raise EmulatorError("an AgentLoop runs once; make a new one")
        self._started = True
        hotkey = (
            StopHotkey(self.screen.display, lambda: self.stop("hotkey"), self.stop_hotkey)
            if self.stop_hotkey
            else None
        )
        monitor = (
            TakeoverMonitor(self.screen.display, self.driver.injected, self.pause) if self.takeover else None
        )
        if self.use_damage:
            self._watch = DamageWatch.open(self.screen.display, self.viewport.rect)
        if self.telemetry_path:
            self._log = open(self.telemetry_path, "a", buffering=1)  # noqa: SIM115 (closed below)
        summary = RunSummary(0, 0.0, "error")
        start = time.monotonic()
        try:
            summary.stopped_by = self._run(start, summary, monitor)
        finally:
            self.driver.release_all()
            for listener in (hotkey, monitor):
                if listener:
                    listener.stop()
            if self._watch:
                self._watch.close()
                self._watch = None
            summary.seconds = time.monotonic() - start
            summary.pauses = self._pause_count
            if self._stop_requested_at is not None:
                summary.stop_latency_ms = (time.monotonic() - self._stop_requested_at) * 1000
            self._event(
                "end", stopped_by=summary.stopped_by, steps=summary.steps, seconds=round(summary.seconds, 4)
            )
            if self._log:
                self._log.close()
                self._log = None
        return summary

    def _run(self, start: float, summary: RunSummary, monitor: TakeoverMonitor | None) -> str:
        rect = self.viewport.rect
        frame, capture_ms = self._capture(rect)
        while True:
            if self._stop.is_set():
                return self._stop_reason
            if self._paused.is_set():
                self._wait_paused(monitor)
                if self._stop.is_set():
                    return self._stop_reason
                frame, capture_ms = self._capture(rect)
            if self.follow is not None and (moved := self._follow(rect)) is not None:
                rect = moved
                frame, capture_ms = self._capture(rect)
            if summary.steps >= self.max_steps:
                return "steps"
            if time.monotonic() - start >= self.max_seconds:
                return "seconds"
            t0 = time.perf_counter()
            px, py, held = self.screen.pointer()
            undraw = draw_cursor(frame, px - rect.x, py - rect.y, held)
            pointer = self.viewport.to_normalized(px, py) if self.viewport.contains_physical(px, py) else None
            obs = Observation(frame, pointer, held, time.monotonic() - start, summary.steps)
            inputs = self.policy.preprocess(obs)
            t1 = time.perf_counter()
            action = self.policy.act(inputs)
            t2 = time.perf_counter()
            undraw()  # compare raw captures while settling
            if self._stop.is_set() or self._paused.is_set():
                continue  # a stop or takeover during inference wins over the action
            if action.kind == Kind.WAIT:
                self._stop.wait(action.seconds)
            elif action.kind != Kind.DONE:
                self.driver.execute(action)
            t3 = time.perf_counter()
            settled = True
            if action.kind != Kind.DONE:
                frame, settled = self._settle(rect, frame, action)
            t4 = time.perf_counter()
            timing = StepTiming(
                summary.steps, action.to_json(), round(capture_ms, 3), round((t1 - t0) * 1000, 3),
                round((t2 - t1) * 1000, 3), round((t3 - t2) * 1000, 3), round((t4 - t3) * 1000, 3),
                settled, round(capture_ms + (t4 - t0) * 1000, 3),
            )  # fmt: skip
            summary.timings.append(timing)
            summary.steps += 1
            self._steps_done = summary.steps
            capture_ms = 0.0  # the settled capture is the next observation
            self._write(asdict(timing))
            if self.on_step:
                self.on_step(timing, obs)
            if action.kind == Kind.DONE:
                return "done"

    def _follow(self, rect):
        """The viewport's new rectangle if it moved or changed size since the last step, else None.
        The driver's gate moves with it: the agent still acts only inside what it was given."""
        viewport = self.follow()
        if viewport.rect == rect:
            return None
        self.viewport = self.driver.viewport = viewport
        if self._watch:
            self._watch.close()
            self._watch = DamageWatch.open(self.screen.display, viewport.rect)
        self._event("viewport", rect=viewport.rect.to_json())
        return viewport.rect

    def _capture(self, rect) -> tuple[np.ndarray, float]:
        t = time.perf_counter()
        if self._watch:
            self._watch.reset()  # damage from here on means the frame below is out of date
        frame = self.screen.grab(rect, cursor=False)
        return frame, (time.perf_counter() - t) * 1000

    def _settle(self, rect, before: np.ndarray, action: Action) -> tuple[np.ndarray, bool]:
        """Wait for the screen to settle after `action`; returns the last capture and whether it
        settled. An action that usually makes the application react (click, key, scroll, button)
        waits up to `react_window` for a first change; then, or at once for a move or wait, the
        screen counts as settled when a capture equals the previous one."""
        start = time.monotonic()
        deadline = start + self.settle_timeout
        if self.settle_min > 0:
            self._stop.wait(self.settle_min)
        expect_change = action.kind in REACTIVE_KINDS
        if self._watch:
            return self._settle_damage(rect, before, expect_change, deadline)
        prev, changed = before, False
        while True:
            frame = self.screen.grab(rect, cursor=False)
            now = time.monotonic()
            if same_pixels(frame, prev):
                if changed or not expect_change or now - start >= self.react_window:
                    return frame, True
            else:
                changed = True
            if self._stop.is_set() or now >= deadline:
                return frame, False
            prev = frame
            if self.settle_poll:
                self._stop.wait(self.settle_poll)

    def _settle_damage(self, rect, before: np.ndarray, expect_change: bool, deadline: float):
        watch = self._watch
        changed = watch.wait(self.react_window) if expect_change else watch.damaged()
        if not changed:
            return before, True  # no pixel changed since `before` was captured: it is the screen now
        while True:
            frame, _ = self._capture(rect)
            if self._stop.is_set() or time.monotonic() >= deadline:
                return frame, False
            if self.settle_poll:
                self._stop.wait(self.settle_poll)
            if not watch.damaged():
                return frame, True

    def _wait_paused(self, monitor: TakeoverMonitor | None) -> None:
        while self._paused.is_set() and not self._stop.is_set():
            self._stop.wait(0.01)
            idle = self.takeover_idle
            if idle is not None and monitor is not None and time.monotonic() - monitor.last_human >= idle:
                self.resume()

    def _event(self, name: str, **fields) -> None:
        self._write({"event": name, "t": time.time(), **fields})

    def _write(self, record: dict) -> None:
        if self._log:
            self._log.write(json.dumps(record) + "\n")
