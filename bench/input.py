"""Input latency on Xvfb: send an action through InputDriver (pynput/XTest), receive it through a
pynput listener (X RECORD); median ms from send to the first event received, per action kind.

    python -m bench.input   ->  {"latency_ms": {"move", "click", "key"}, "sent", "received"}
"""

import json
import threading
import time

import numpy as np

from emulator.display import VirtualDisplay, read_layout
from emulator.input import InputDriver
from emulator.listen import keyboard_listener, mouse_listener, stop_listener
from emulator.schema import Action

EVENTS_PER_ACTION = {"move": 1, "click": 3, "key": 2}  # click = move + press + release


def _action(kind: str, i: int) -> Action:
    # Every pointer action goes to a new position: a move to where the pointer is sends no event.
    x, y = 0.05 + 0.09 * (i % 10), 0.05 + 0.09 * (i // 10 % 10) + (0.02 if kind == "click" else 0)
    return {"move": Action.move, "click": Action.click}[kind](x, y) if kind != "key" else Action.press("a")


def run(n: int = 100) -> dict:
    received = {"n": 0, "t": 0.0}
    got = threading.Event()

    def on_event(*_):
        received["n"] += 1
        if not got.is_set():
            received["t"] = time.perf_counter()
            got.set()

    latency, sent = {}, 0
    with VirtualDisplay(1920, 1080) as d:
        driver = InputDriver(d.name, read_layout(d.name).viewport())
        mouse = mouse_listener(d.name, on_event, on_event, on_event)
        keys = keyboard_listener(d.name, on_event, on_event)
        try:
            for kind in ("move", "click", "key"):
                samples = []
                for i in range(n):
                    action = _action(kind, i)
                    got.clear()
                    t = time.perf_counter()
                    driver.execute(action)
                    sent += EVENTS_PER_ACTION[kind]
                    if got.wait(1.0):
                        samples.append((received["t"] - t) * 1000)
                    time.sleep(0.003)  # let this action's last events arrive before the next
                latency[kind] = round(float(np.median(samples)), 3) if samples else None
            time.sleep(0.2)
        finally:
            stop_listener(mouse)
            stop_listener(keys)
            driver.close()
    return {"latency_ms": latency, "sent": sent, "received": received["n"], "backend": "pynput"}


if __name__ == "__main__":
    print(json.dumps(run()))
