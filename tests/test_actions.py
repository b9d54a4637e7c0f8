"""Raw events -> semantic actions (recorder/actions.py) on hand-written event streams: clicks,
double-clicks, drags, scroll merging, keys with modifiers, lone modifiers, the viewport boundary
and frame alignment (the last frame strictly before the action)."""

import json

from emulator.schema import Action, Kind, Rect, Viewport
from recorder.actions import derive_actions

INFO = {"fps": 10, "viewport": Viewport(Rect(100, 100, 200, 100)).to_json()}
FRAMES = [{"index": i, "t": i / 10} for i in range(100)]  # a frame every 0.1 s


def move(t, x, y):
    return {"t": t, "kind": "move", "x": x, "y": y}


def button(t, down, x, y, b="left"):
    return {"t": t, "kind": "button_down" if down else "button_up", "x": x, "y": y, "button": b}


def key(t, down, name):
    return {"t": t, "kind": "key_down" if down else "key_up", "key": name}


def actions(events):
    return [Action.from_json(json.loads(r["action"])) for r in derive_actions(events, FRAMES, INFO)]


def test_click_is_aligned_to_the_frame_before_it():
    rows = derive_actions(
        [move(0.31, 150, 120), button(0.35, True, 150, 120), button(0.4, False, 151, 120)], FRAMES, INFO
    )
    assert len(rows) == 1 and rows[0]["frame"] == 3 and rows[0]["kind"] == "click"
    exactly_on_a_frame = derive_actions(
        [button(0.5, True, 150, 120), button(0.55, False, 150, 120)], FRAMES, INFO
    )
    assert exactly_on_a_frame[0]["frame"] == 4  # strictly before: frame 5 may already show the click
    a = Action.from_json(rows[0]["action"])
    assert Viewport.from_json(INFO["viewport"]).to_physical(a.x, a.y) == (150, 120)


def test_double_click_and_two_separate_clicks():
    double = [button(1.0, True, 150, 120), button(1.05, False, 150, 120),
              button(1.2, True, 151, 121), button(1.25, False, 151, 121)]  # fmt: skip
    assert [(a.kind, a.count) for a in actions(double)] == [(Kind.CLICK, 2)]
    apart = [button(1.0, True, 150, 120), button(1.05, False, 150, 120),
             button(1.9, True, 150, 120), button(1.95, False, 150, 120)]  # fmt: skip
    assert [(a.kind, a.count) for a in actions(apart)] == [(Kind.CLICK, 1), (Kind.CLICK, 1)]


def test_drag_is_down_moves_up():
    events = [button(1.0, True, 120, 150)]
    events += [move(1.0 + 0.02 * i, 120 + 5 * i, 150) for i in range(1, 21)]
    events += [button(1.45, False, 220, 150)]
    got = actions(events)
    assert got[0].kind == Kind.MOUSE_DOWN and got[-1].kind == Kind.MOUSE_UP
    moves = got[1:-1]
    assert moves and all(a.kind == Kind.MOVE for a in moves)
    assert len(moves) <= 5  # at most one per frame period (0.1 s) over 0.4 s
    assert got[-1].x > got[0].x


def test_scroll_clicks_merge_and_direction_changes_split():
    s = [
        {"t": 2.0 + 0.05 * i, "kind": "scroll", "x": 150, "y": 150, "dx": 0, "dy": d}
        for i, d in enumerate([1, 1, 1, -1])
    ]
    assert [(a.kind, a.dy) for a in actions(s)] == [(Kind.SCROLL, 3), (Kind.SCROLL, -1)]


def test_keys_take_the_modifiers_held_and_lone_modifiers_count():
    events = [key(1.0, True, "ctrl"), key(1.1, True, "c"), key(1.15, False, "c"), key(1.2, False, "ctrl"),
              key(2.0, True, "alt"), key(2.1, False, "alt"),
              key(3.0, True, "shift"), button(3.1, True, 150, 120), button(3.15, False, 150, 120), key(3.2, False, "shift"),
              key(4.0, True, None), key(4.1, False, None)]  # fmt: skip
    got = actions(events)
    assert got == [Action.press("c", ("ctrl",)), Action.press("alt"),
                   Action(Kind.CLICK, got[2].x, got[2].y, mods=("shift",))]  # fmt: skip


def test_actions_outside_the_viewport_are_left_out():
    events = [button(1.0, True, 50, 50), button(1.05, False, 50, 50),  # left of the viewport
              button(2.0, True, 299, 199), button(2.05, False, 299, 199),  # its last pixel
              button(3.0, True, 150, 150), move(3.1, 400, 150), button(3.2, False, 400, 150)]  # drag out  # fmt: skip
    got = actions(events)
    assert len(got) == 1 and got[0].kind == Kind.CLICK and got[0].x > 0.99


def test_labels_become_actions_aligned_like_events():
    from recorder.actions import actions_from_labels

    labels = [(0.55, Action.press("a", ("shift",))), (0.31, Action.click(0.25, 0.5))]
    rows = actions_from_labels(labels, FRAMES)
    assert [r["frame"] for r in rows] == [3, 5]  # sorted by time, each on the frame before it
    assert [Action.from_json(r["action"]) for r in rows] == [labels[1][1], labels[0][1]]
    assert rows[1]["mods"] == "shift" and rows[0]["kind"] == "click"
