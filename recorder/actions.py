"""Raw input events -> semantic schema actions, each aligned to the frame the person saw.

    rows = derive_actions(events, frames, info)   # dicts with the columns of ACTION_SCHEMA

Rules (all thresholds in physical pixels and seconds):
  * button down + up without moving more than DRAG_PX -> click; a second click of the same button
    within DOUBLE_S and DOUBLE_PX turns the first into a double-click (count 2);
  * button down, moves beyond DRAG_PX, up -> drag: mouse_down, the moves (at most one per frame
    period), mouse_up;
  * wheel clicks in the same direction at the same place within SCROLL_MERGE_S -> one scroll;
  * key down -> key action with the modifiers held at that moment; a modifier pressed and
    released alone (no other key meanwhile) -> a key action for the modifier itself;
  * pointer moves outside a drag are the path to the next click, not actions of their own.
Quirks handled upstream in recorder/events.py: the stop and pause hotkeys never reach the
events; releases of keys held before recording started are dropped; moves arrive coalesced
but the last position before any button event is always kept.
The aligned frame is the last one captured strictly before the action began (-1: none yet).
Actions that start outside the recorded viewport are left out (the agent may not act there).
"""

from __future__ import annotations

import bisect
import math

from emulator.errors import SchemaError
from emulator.schema import MODIFIERS, Action, Kind, Viewport
from recorder.dataset import BUTTON_DOWN, BUTTON_UP, KEY_DOWN, KEY_UP, MOVE, SCROLL

DRAG_PX = 5
DOUBLE_S, DOUBLE_PX = 0.5, 5
SCROLL_MERGE_S = 0.25
RELEASE_MOVE_S = 0.005


def derive_actions(events: list[dict], frames: list[dict], info: dict) -> list[dict]:
    viewport = Viewport.from_json(info["viewport"])
    frame_times = [f["t"] for f in frames]
    frame_ids = [f["index"] for f in frames]
    period = 1.0 / float(info.get("fps", 30))
    out: list[dict] = []

    def emit(action: Action, t: float, t_end: float | None = None) -> dict:
        i = bisect.bisect_left(frame_times, t) - 1  # last frame captured strictly before t
        out.append(_row(action, t, t if t_end is None else t_end, frame_ids[i] if i >= 0 else -1))
        return out[-1]

    def norm(x, y) -> tuple[float, float] | None:
        if x is None or not viewport.contains_physical(x, y):
            return None
        return viewport.to_normalized(x, y)

    held_mods: dict[str, list] = {}  # modifier -> [down time, another key pressed while it was held]
    pressed: dict[str, dict] = {}  # button -> {"down": event, "path": [move events], "drag": bool}
    last_click: dict | None = None
    last_scroll: dict | None = None

    for e in sorted(events, key=lambda e: e["t"]):
        kind, t = e["kind"], e["t"]
        if kind == MOVE:
            for p in pressed.values():
                p["path"].append(e)
                d = p["down"]
                p["drag"] |= math.hypot(e["x"] - d["x"], e["y"] - d["y"]) > DRAG_PX
        elif kind == BUTTON_DOWN:
            for state in held_mods.values():
                state[1] = True  # ctrl+click: the modifier belongs to the click
            mods = tuple(m for m in MODIFIERS if m in held_mods)
            pressed[e["button"]] = {"down": e, "path": [], "drag": False, "mods": mods}
        elif kind == BUTTON_UP and e["button"] in pressed:
            p = pressed.pop(e["button"])
            d = p["down"]
            p["drag"] |= math.hypot(e["x"] - d["x"], e["y"] - d["y"]) > DRAG_PX
            if p["drag"]:
                _emit_drag(emit, norm, p, e, period)
                last_click = None
            elif (pos := norm(d["x"], d["y"])) is not None:
                if (
                    last_click is not None
                    and last_click["button"] == e["button"]
                    and d["t"] - last_click["t_up"] <= DOUBLE_S
                    and math.hypot(d["x"] - last_click["x"], d["y"] - last_click["y"]) <= DOUBLE_PX
                ):
                    row = last_click["row"]
                    double = Action(
                        Kind.CLICK, row["x"], row["y"], button=e["button"], count=2, mods=p["mods"]
                    )
                    row.update(count=2, action=double.to_json_str(), t_end=e["t"])
                    last_click = None
                else:
                    row = emit(Action(Kind.CLICK, *pos, button=e["button"], mods=p["mods"]), d["t"], e["t"])
                    last_click = {"row": row, "button": e["button"], "t_up": e["t"], "x": d["x"], "y": d["y"]}
        elif kind == SCROLL and (pos := norm(e["x"], e["y"])) is not None:
            s = last_scroll
            same_way = s is not None and (s["dx"] > 0, s["dy"] > 0) == (e["dx"] > 0, e["dy"] > 0)
            if same_way and t - s["t_end"] <= SCROLL_MERGE_S and (s["px"], s["py"]) == (e["x"], e["y"]):
                s["row"]["dx"] += e["dx"]
                s["row"]["dy"] += e["dy"]
                r = s["row"]
                merged = Action(Kind.SCROLL, r["x"], r["y"], dx=r["dx"], dy=r["dy"])
                r.update(action=merged.to_json_str(), t_end=t)
                s["t_end"], s["dx"], s["dy"] = t, r["dx"], r["dy"]
            else:
                row = emit(Action(Kind.SCROLL, *pos, dx=e["dx"], dy=e["dy"]), t)
                last_scroll = {
                    "row": row,
                    "t_end": t,
                    "px": e["x"],
                    "py": e["y"],
                    "dx": e["dx"],
                    "dy": e["dy"],
                }
        elif kind == KEY_DOWN and e.get("key"):
            key = e["key"]
            if key in MODIFIERS:
                held_mods.setdefault(key, [t, False])  # auto-repeat keeps the first down time
                continue
            for state in held_mods.values():
                state[1] = True
            try:
                emit(Action.press(key, tuple(m for m in MODIFIERS if m in held_mods)), t)
            except SchemaError:
                pass  # a key outside the vocabulary: kept in events, not an action
        elif kind == KEY_UP and e.get("key") in MODIFIERS and e["key"] in held_mods:
            down_t, used = held_mods.pop(e["key"])
            if not used:
                others = tuple(m for m in MODIFIERS if m in held_mods)
                emit(Action.press(e["key"], others), down_t, t)
    out.sort(key=lambda r: r["t"])
    for i, row in enumerate(out):
        row["index"] = i
    return out


def actions_from_labels(labels: list[tuple[float, Action]], frames: list[dict]) -> list[dict]:
    """Rows for actions given as labels rather than derived from events: (t, action) where t is
    when the labeller decided, on the frames' clock. A supervisor's corrections and an expert's
    labels in DAgger are stored this way; each is aligned, as always, to the last frame captured
    before it."""
    frame_times = [f["t"] for f in frames]
    rows = []
    for i, (t, action) in enumerate(sorted(labels, key=lambda label: label[0])):
        k = bisect.bisect_left(frame_times, t) - 1
        rows.append({"index": i, **_row(action, t, t, frames[k]["index"] if k >= 0 else -1)})
    return rows


def done_row(index: int, last_frame: dict) -> dict:
    """The `done` that ends a whole-task demonstration, seen on its last frame: where the person
    stopped recording, the task was finished."""
    return {"index": index, **_row(Action(Kind.DONE), last_frame["t"], last_frame["t"], last_frame["index"])}


def _row(action: Action, t: float, t_end: float, frame: int) -> dict:
    """An actions-table row (ACTION_SCHEMA, without its index)."""
    return {
        "t": t, "t_end": t_end, "frame": frame, "kind": action.kind.value, "x": action.x, "y": action.y,
        "button": action.button, "count": action.count, "dx": action.dx, "dy": action.dy, "key": action.key,
        "mods": "+".join(action.mods), "action": action.to_json_str(),
    }  # fmt: skip


def _emit_drag(emit, norm, p: dict, up: dict, period: float) -> None:
    """mouse_down, the path (at most one move per frame period), mouse_up; all inside the viewport."""
    d = p["down"]
    start, end = norm(d["x"], d["y"]), norm(up["x"], up["y"])
    if start is None or end is None:
        return  # a drag that starts or ends outside the viewport is not ours to learn
    button = d["button"]
    emit(Action(Kind.MOUSE_DOWN, *start, button=button, mods=p["mods"]), d["t"])
    last_t, last_xy = d["t"], (d["x"], d["y"])
    # An input layer moves to the release point right before releasing (X reports that move even
    # in place): such a move, within RELEASE_MOVE_S of the release, belongs to the release.
    path = [
        m for m in p["path"]
        if not ((m["x"], m["y"]) == (up["x"], up["y"]) and up["t"] - m["t"] < RELEASE_MOVE_S)
    ]  # fmt: skip
    for m in path:
        if (m["x"], m["y"]) == last_xy or m["t"] - last_t < period or (pos := norm(m["x"], m["y"])) is None:
            continue
        emit(Action.move(*pos), m["t"])
        last_t, last_xy = m["t"], (m["x"], m["y"])
    emit(Action(Kind.MOUSE_UP, *end, button=button, mods=p["mods"]), up["t"])
