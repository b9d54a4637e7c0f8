"""The coordinate-replay macro: the baseline a taught workflow is measured against. It replays a
recording's raw input events at their screen coordinates with their original timing, the way
pyautogui/pynput macro recorders do; it never looks at the screen, so a moved window, a reordered
list or other data break it.

    seconds = play_macro(Recording("demos/1").events, driver, speed=1.0)
"""

from __future__ import annotations

import time

from emulator.input import InputDriver

ACTING_KINDS = ("move", "button_down", "button_up", "scroll", "key_down", "key_up")


def play_macro(events: list[dict], driver: InputDriver, speed: float = 1.0) -> float:
    """Send `events` (recorder event rows; t in seconds) with their gaps divided by `speed`.
    Returns the seconds it took. Whatever is still held at the end is released."""
    start = time.monotonic()
    t0 = events[0]["t"] if events else 0.0
    try:
        for event in events:
            if event["kind"] not in ACTING_KINDS:
                continue
            delay = (event["t"] - t0) / speed - (time.monotonic() - start)
            if delay > 0:
                time.sleep(delay)
            driver.replay_event(event)
    finally:
        driver.release_all()
    return time.monotonic() - start
