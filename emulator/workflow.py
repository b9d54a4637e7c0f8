"""Running a taught workflow: a model (usually fine-tuned on a few recorded demonstrations) works
a desktop application on a display until it says `done`, once or K times.

    emulator run --model flow.onnx --display :5 --window "Order form" [--repeat 3]

    runs = run_workflow(":5", "flow.onnx", window="Order form", repeat=3)   # -> [RunSummary]

The viewport is a window found by title (or a region / monitor / the screen). A window is looked
up again at every step, so the agent follows it when it moves or is resized, and its input gate
moves with it: the agent never acts outside the window it was given. A run ends when the model
emits `done`, or at its step / time budget; a window that disappears ends the run with an error.
"""

from __future__ import annotations

from collections.abc import Callable

from emulator.errors import EmulatorError
from emulator.input import InputDriver
from emulator.loop import DEFAULT_STOP_HOTKEY, AgentLoop, RunSummary
from emulator.schema import Rect, Viewport
from emulator.screen import Screen


def viewport_finder(screen: Screen, window: str | None = None, region: str | None = None,
                    monitor: int | None = None) -> Callable[[], Viewport]:  # fmt: skip
    """A function returning the viewport where it is now: the window titled `window` (or with
    that X id), a fixed region, a monitor, or the whole screen."""
    layout = screen.layout()
    if window:
        try:
            win = int(window, 0)
        except ValueError:
            win = screen.find_window(window)
        return lambda: layout.viewport(screen.window_rect(window=win))
    if region:
        fixed = layout.viewport(Rect.parse(region))
    elif monitor is not None:
        fixed = layout.viewport(layout.monitor(monitor).rect)
    else:
        fixed = layout.viewport()
    return lambda: fixed


def run_workflow(
    display: str,
    model: str,
    *,
    window: str | None = None,
    region: str | None = None,
    monitor: int | None = None,
    repeat: int = 1,
    max_steps: int = 60,
    max_seconds: float = 60.0,
    threads: int = 1,
    telemetry: str | None = None,
    stop_hotkey: str | None = DEFAULT_STOP_HOTKEY,
    takeover: bool = True,
    on_run: Callable[[int, RunSummary], None] | None = None,
) -> list[RunSummary]:
    from models.policy import OnnxPolicy

    if repeat < 1:
        raise EmulatorError("--repeat must be at least 1")
    policy = OnnxPolicy(model, threads=threads)
    runs: list[RunSummary] = []
    with Screen(display) as screen:
        where = viewport_finder(screen, window, region, monitor)
        driver = InputDriver(display, where())
        try:
            for i in range(repeat):
                driver.viewport = where()
                policy.reset()
                loop = AgentLoop(
                    screen, driver, policy, max_steps=max_steps, max_seconds=max_seconds, telemetry=telemetry,
                    stop_hotkey=stop_hotkey, takeover=takeover, settle_poll=0.02, follow=where,
                )  # fmt: skip
                summary = loop.run()
                runs.append(summary)
                if on_run:
                    on_run(i, summary)
                if summary.stopped_by in ("hotkey", "stop"):
                    break
        finally:
            driver.close()
    return runs
