"""One agent-loop step at 1920x1080 with a trivial policy (a pointer move to a new place), against
the floor: one full-screen capture + the same move. Also how fast the stop hotkey halts the loop.

    python -m bench.step  ->  {"floor_ms", "step_ms", "overhead_ratio", "stop_ms", "phases_ms",
                               "step_ms_compare", ...}

The loop runs as shipped: stop-hotkey and takeover listeners on, settling after every action with
X DAMAGE. `step_ms_compare` is the same loop settling by capture-and-compare (the fallback when a
server has no DAMAGE), to show what the damage events save.
"""

import json
import threading
import time

import numpy as np

from emulator.display import VirtualDisplay, connect
from emulator.input import InputDriver, keysym
from emulator.loop import DEFAULT_STOP_HOTKEY, AgentLoop, FunctionPolicy, parse_hotkey
from emulator.schema import Action
from emulator.screen import Screen


def _moves(obs) -> Action:
    i = obs.step
    return Action.move(0.05 + 0.09 * (i % 10), 0.05 + 0.09 * (i // 10 % 10))


def _press_hotkey(display: str) -> float:
    """Press the stop hotkey from another X client (as a person's keyboard would); returns when."""
    from Xlib import X
    from Xlib.ext import xtest

    conn = connect(display)
    codes = [
        conn.keysym_to_keycode(keysym(k))
        for k in sorted(parse_hotkey(DEFAULT_STOP_HOTKEY), key=len, reverse=True)
    ]
    t = time.perf_counter()
    for c in codes:
        xtest.fake_input(conn, X.KeyPress, c)
    conn.sync()
    for c in reversed(codes):
        xtest.fake_input(conn, X.KeyRelease, c)
    conn.sync()
    conn.close()
    return t


def run(n: int = 300) -> dict:
    with VirtualDisplay(1920, 1080) as d, Screen(d.name) as screen:
        viewport = screen.layout().viewport()
        driver = InputDriver(d.name, viewport)
        floor = []
        for i in range(n + 100):  # the first 100 warm the X server up and are not counted
            t = time.perf_counter()
            screen.grab(viewport.rect, cursor=False)
            driver.execute(Action.move(0.05 + 0.09 * (i % 10), 0.5 + 0.01 * (i % 7)))
            if i >= 100:
                floor.append((time.perf_counter() - t) * 1000)
        loop = AgentLoop(screen, driver, FunctionPolicy(_moves), max_steps=n, max_seconds=60)
        summary = loop.run()
        phases = summary.medians()
        compare = AgentLoop(screen, driver, FunctionPolicy(_moves), max_steps=n, max_seconds=60, damage=False)
        compare_ms = compare.run().medians()["step_ms"]

        # Stop latency: a loop that runs until stopped; the hotkey comes from another client.
        endless = AgentLoop(screen, driver, FunctionPolicy(_moves), max_steps=10**9, max_seconds=60)
        result = {}
        thread = threading.Thread(target=lambda: result.update(s=endless.run()))
        thread.start()
        time.sleep(0.5)
        t_press = _press_hotkey(d.name)
        thread.join(5)
        t_end = time.perf_counter()
        driver.close()
    floor_ms = float(np.median(floor))
    step_ms = phases["step_ms"]
    return {
        "floor_ms": round(floor_ms, 3),
        "step_ms": round(step_ms, 3),
        "overhead_ratio": round(step_ms / floor_ms, 3),
        "stop_ms": round((t_end - t_press) * 1000, 2),
        "stopped_by": result["s"].stopped_by if "s" in result else None,
        "steps": summary.steps,
        "phases_ms": {k: round(v, 3) for k, v in phases.items()},
        "step_ms_compare": round(compare_ms, 3),
        "overhead_ratio_compare": round(compare_ms / floor_ms, 3),
    }


if __name__ == "__main__":
    print(json.dumps(run()))
