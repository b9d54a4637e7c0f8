"""Where the supervised agent works: a MiniWoB++ task in real Chromium on a private Xvfb that the
app starts, or an existing X display (the whole screen, a region, a window or a monitor of it).

    spec = TargetSpec.miniwob("click-test", seed=100_000)          # what the window asks for
    spec = TargetSpec.on_display(":1", region=Rect(0, 0, 160, 210))
    target = spec.build()            # on the agent worker's thread only (app/workers.py)
    text = target.begin_episode()    # MiniWoB: reset to the next seed, returns the instruction
    target.status()                  # EpisodeStatus(done, success, reward) or None (a desktop)
    target.close()

A target owns the agent's `Screen` and `InputDriver`; both are used from the agent thread only.
The window learns the display name and viewport through a signal and captures on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.errors import EmulatorError
from emulator.input import InputDriver
from emulator.schema import Rect, Viewport
from emulator.screen import Screen


@dataclass(frozen=True)
class EpisodeStatus:
    done: bool
    success: bool
    reward: float


@dataclass(frozen=True)
class TargetSpec:
    """What to work on. kind "miniwob": `task` and first `seed`; kind "display": `display`
    (":N", "new[:WxH]" or None for $DISPLAY) and at most one of region / window / monitor."""

    kind: str
    task: str = "click-test"
    seed: int = 100_000
    display: str | None = None
    region: Rect | None = None
    window: str | None = None
    monitor: int | None = None

    @classmethod
    def miniwob(cls, task: str, seed: int = 100_000) -> TargetSpec:
        return cls("miniwob", task=task, seed=seed)

    @classmethod
    def on_display(cls, display: str | None, region: Rect | None = None, window: str | None = None,
                   monitor: int | None = None) -> TargetSpec:  # fmt: skip
        return cls("display", display=display, region=region, window=window, monitor=monitor)

    def build(self) -> MiniWoBTarget | DisplayTarget:
        return MiniWoBTarget(self.task, self.seed) if self.kind == "miniwob" else DisplayTarget(self)


class MiniWoBTarget:
    """MiniWoB++ episodes one after another (seed, seed + 1, ...) in one Chromium."""

    episodic = True
    max_steps = 50
    max_seconds = 12.0  # MiniWoB's own timer ends every episode at 10 s

    def __init__(self, task: str, seed: int):
        from emulator.envs.miniwob import MiniWoBWorld

        self.task, self.seed = task, seed
        self.world = MiniWoBWorld()
        self.display_name = self.world.display.name
        self.viewport: Viewport = self.world.viewport
        self.screen: Screen = self.world.screen
        self.driver: InputDriver = self.world.driver

    def begin_episode(self) -> str:
        text = self.world.reset(self.task, self.seed)
        self.episode_seed = self.seed
        self.seed += 1
        return text

    def status(self) -> EpisodeStatus:
        s = self.world.status()
        return EpisodeStatus(s.done, s.success, s.reward)

    def close(self) -> None:
        self.world.close()


class DisplayTarget:
    """An existing display (or a private Xvfb for "new[:WxH]"): one open-ended episode per run."""

    episodic = False
    max_steps = 10**9
    max_seconds = 10.0**9
    task = "desktop"
    episode_seed = None

    def __init__(self, spec: TargetSpec):
        from emulator.display import open_display

        self.display = open_display(spec.display)
        self.display_name = self.display.name
        try:
            self.screen = Screen(self.display_name)
            self.viewport = _viewport(self.screen, spec)
            self.driver = InputDriver(self.display_name, self.viewport)
        except Exception:
            self.display.stop()
            raise

    def begin_episode(self) -> str:
        return ""

    def status(self) -> EpisodeStatus | None:
        return None

    def close(self) -> None:
        self.driver.close()
        self.screen.close()
        self.display.stop()


def _viewport(screen: Screen, spec: TargetSpec) -> Viewport:
    layout = screen.layout()
    if spec.region is not None:
        return layout.viewport(spec.region)
    if spec.window is not None:
        try:
            rect = screen.window_rect(window=int(spec.window, 0))
        except ValueError:
            rect = screen.window_rect(title=spec.window)
        return layout.viewport(rect)
    if spec.monitor is not None:
        return layout.viewport(layout.monitor(spec.monitor).rect)
    return layout.viewport()


def check_task(task: str) -> None:
    """Refuse, in one line, a task that is not a MiniWoB++ task (before anything starts)."""
    from emulator.envs.miniwob import HTML_DIR

    if not (HTML_DIR / f"{task}.html").exists():
        raise EmulatorError(f"unknown MiniWoB task {task!r} (e.g. click-test; see `emulator eval --help`)")
