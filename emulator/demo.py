"""`make demo` until the model exists: the agent loop on a private Xvfb, a scripted policy that
reads only pixels (it finds the orange square and clicks it), real X clicks, telemetry, and a
screenshot.

    emulator demo --out out/demo --steps 40
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from emulator.display import VirtualDisplay
from emulator.errors import EmulatorError
from emulator.input import InputDriver
from emulator.loop import AgentLoop, FunctionPolicy, Observation
from emulator.schema import Action
from emulator.screen import Screen, save_png

APP = Path(__file__).resolve().parents[1] / "tests" / "apps" / "targets.py"
ORANGE_BGR = (0, 140, 255)


def click_orange(obs: Observation) -> Action:
    """Click the centre of the orange pixels; wait a moment when there are none."""
    f = obs.frame
    mask = (f[..., 2] == ORANGE_BGR[2]) & (f[..., 1] == ORANGE_BGR[1]) & (f[..., 0] == ORANGE_BGR[0])
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return Action.wait(0.02)
    h, w = f.shape[:2]
    return Action.click((xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h)


def run_demo(out_dir: str = "out/demo", steps: int = 40) -> int:
    if not APP.exists():
        raise EmulatorError(f"practice app {APP} not found: run the demo from a clone of the repository")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    telemetry = out / "telemetry.jsonl"
    telemetry.unlink(missing_ok=True)
    with VirtualDisplay(800, 600) as display:
        env = {**display.env(), "QT_QPA_PLATFORM": "xcb"}
        app = subprocess.Popen(
            [sys.executable, str(APP), "--seed", "1"], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            if json.loads(app.stdout.readline() or "{}").get("event") != "ready":
                raise EmulatorError("the practice app did not start (is PySide6 installed? run `make setup`)")
            with Screen(display.name) as screen:
                viewport = screen.layout().viewport(screen.window_rect(title="targets"))
                driver = InputDriver(display.name, viewport)
                loop = AgentLoop(
                    screen,
                    driver,
                    FunctionPolicy(click_orange),
                    max_steps=steps,
                    max_seconds=60,
                    settle_timeout=0.2,
                    telemetry=str(telemetry),
                    takeover=False,
                )
                t = time.monotonic()
                summary = loop.run()
                wall = time.monotonic() - t
                driver.close()
                save_png(screen.grab(), str(out / "screenshot.png"))
        finally:
            app.terminate()
            lines = app.communicate(timeout=5)[0].splitlines()
    hits = sum(1 for line in lines if '"hit"' in line)
    misses = sum(1 for line in lines if '"miss"' in line)
    med = summary.medians()
    print(
        f"demo: {summary.steps} steps in {wall:.2f} s ({summary.steps / wall:.0f} actions/s), "
        f"{hits} hits, {misses} misses, stopped by {summary.stopped_by}"
    )
    print("median ms per step: " + ", ".join(f"{k.removesuffix('_ms')} {v:.2f}" for k, v in med.items()))
    print(f"wrote {out / 'screenshot.png'} and {telemetry}")
    return 0 if hits > 0 and misses == 0 else 1
