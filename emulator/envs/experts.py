"""Scripted experts for the MiniWoB++ training suite: read the page (privileged), decide the next
schema action, and leave the acting to the real input layer like any policy.

    action = expert_action(world)     # the next step from the page as it is now

Experts are state-based: each call looks at the page as it is now (values, focus, checked boxes,
the dragged box's position, whether a button is held) and returns the next step. So they can
label any state an agent reaches (DAgger), recover from their own slips, and type like a person:
click a field, then one key per character (Shift for capitals), fixing mistakes with Backspace.
Drags are mouse_down, moves of at most DRAG_STEP px, mouse_up. While the page animates they wait.

Each decision may also name where in the instruction it *reads* (`expert_look`): the glyph of the
character about to be typed (and, second, of the one just typed: is it right?), or the first
letter of the label about to be clicked. Training
supervises the model's two read steps with them, so the model is shown where to read rather than
left to discover it. Privileged, like the DOM: the model itself still sees only pixels.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from emulator.envs.miniwob import TASK_H, TASK_W, MiniWoBWorld
from emulator.schema import Action, Kind, char_to_key

DRAG_STEP = 12  # px per pointer move while dragging
WAIT = Action.wait(0.02)

# Every visible element matching a CSS selector, as plain data, in task-area pixels.
_QUERY = """
const wrap = document.getElementById('wrap').getBoundingClientRect();
return Array.from(document.querySelectorAll(arguments[0])).map(e => {
  const rs = Array.from(e.getClientRects());
  const r = rs.length ? rs[0] : e.getBoundingClientRect();
  const s = window.getComputedStyle(e);
  return {x: r.left - wrap.left, y: r.top - wrap.top, w: r.width, h: r.height,
          text: (e.textContent || '').trim(), value: e.value === undefined ? null : e.value,
          checked: !!e.checked, focused: document.activeElement === e, id: e.id, type: e.type || null,
          data: Object.assign({}, e.dataset), fill: e.getAttribute('fill'),
          size: parseFloat(e.getAttribute('font-size') || e.getAttribute('width') || (2 * e.getAttribute('r')) || 0),
          tag: e.tagName.toLowerCase(), visible: s.display !== 'none' && s.visibility !== 'hidden' && r.width > 0};
});
"""


# Every character of the instruction (#query) with its glyph's centre, in task-area pixels.
_GLYPHS = """
const wrap = document.getElementById('wrap').getBoundingClientRect();
const q = document.getElementById('query'); const out = [];
if (!q) return out;
const walk = document.createTreeWalker(q, NodeFilter.SHOW_TEXT); const range = document.createRange();
while (walk.nextNode()) { const n = walk.currentNode;
  for (let i = 0; i < n.length; i++) { range.setStart(n, i); range.setEnd(n, i + 1);
    const r = range.getBoundingClientRect();
    out.push([n.data[i], r.left - wrap.left + r.width / 2, r.top - wrap.top + r.height / 2]); } }
return out;
"""


# The centre of the first visible character of the first element matching arguments[0] whose text
# is arguments[1], in task-area pixels; null if there is none.
_FIRST_GLYPH = """
const wrap = document.getElementById('wrap').getBoundingClientRect();
const el = Array.from(document.querySelectorAll(arguments[0])).find(e => e.textContent.trim() === arguments[1]);
if (!el) return null;
const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT); const range = document.createRange();
while (walk.nextNode()) { const n = walk.currentNode; const i = n.data.search(/\\S/);
  if (i < 0) continue;
  range.setStart(n, i); range.setEnd(n, i + 1); const r = range.getBoundingClientRect();
  return [r.left - wrap.left + r.width / 2, r.top - wrap.top + r.height / 2]; }
return null;
"""


def read_at(world: MiniWoBWorld, text: str, index: int = 0, slot: int = 0) -> None:
    """Note that this decision reads character `index` of `text` where the instruction shows it
    (a quoted occurrence first, else one at a word start; index len(text) is the glyph after it, a
    closing quote); nothing if it is not there. Slot 1 is
    a second place read for the same decision (grid-coordinate's y after its x)."""
    memo = world.episode_memo
    if "glyphs" not in memo:
        memo["glyphs"] = world.js(_GLYPHS) or []
    glyphs = memo["glyphs"]
    shown = "".join(g[0] for g in glyphs)
    at = shown.find('"' + text) + 1 if text and '"' + text in shown else -1
    if at < 0:
        at = next((m.start() for m in re.finditer(re.escape(text), shown)
                   if m.start() == 0 or not shown[m.start() - 1].isalnum()), -1) if text else -1  # fmt: skip
    if at >= 0 and 0 <= index <= len(text) and at + index < len(glyphs):  # len(text): the glyph after it
        _, x, y = glyphs[at + index]
        memo["looks"][slot] = (min(max(x, 0.0), TASK_W - 1.0), min(max(y, 0.0), TASK_H - 1.0))


def expert_look(world: MiniWoBWorld) -> list[float | None]:
    """Where the last expert decision read: [x, y, x2, y2] viewport-normalized, None where it
    read nothing."""
    looks = world.episode_memo.get("looks") or [None, None]
    return [
        v for look in looks for v in ((None, None) if look is None else (look[0] / TASK_W, look[1] / TASK_H))
    ]


def query(world: MiniWoBWorld, selector: str) -> list[dict]:
    return [e for e in world.js(_QUERY, selector) if e["visible"]]


def click_at(x: float, y: float) -> Action:
    """A click on task-area pixel (x, y), clamped inside the area."""
    px, py = min(max(int(x), 0), TASK_W - 1), min(max(int(y), 0), TASK_H - 1)
    return Action.click((px + 0.5) / TASK_W, (py + 0.5) / TASK_H)


def click_on(el: dict, avoid: list[dict] = ()) -> Action:
    """A click on the element's centre, or on the visible point farthest from `avoid` elements."""
    cx, cy = el["x"] + el["w"] / 2, el["y"] + el["h"] / 2
    if avoid:
        best, best_d = None, float("-inf")
        for fx in (0.2, 0.35, 0.5, 0.65, 0.8):
            for fy in (0.2, 0.35, 0.5, 0.65, 0.8):
                x, y = el["x"] + fx * el["w"], el["y"] + fy * el["h"]
                d = min(_outside(a, x, y) for a in avoid)
                if d > best_d:
                    best, best_d = (x, y), d
        cx, cy = best
    return click_at(cx, cy)


def hit_point(world: MiniWoBWorld, el: dict) -> tuple[int, int] | None:
    """A pixel where a click would land on `el` itself (the browser's own hit test, so boxes on
    top of it count), nearest its centre."""
    found = world.js(
        "const [id, x0, y0, w, h] = arguments; const wrap = document.getElementById('wrap').getBoundingClientRect();"
        "const el = document.getElementById(id); let best = null, bestD = 1e9;"
        "for (let y = y0 + 3; y < y0 + h - 2; y += 3) for (let x = x0 + 3; x < x0 + w - 2; x += 3) {"
        "  const hit = document.elementFromPoint(wrap.left + x, wrap.top + y);"
        "  const d = Math.abs(x - x0 - w / 2) + Math.abs(y - y0 - h / 2);"
        "  if (hit && (hit === el || el.contains(hit)) && d < bestD) { best = [Math.floor(x), Math.floor(y)]; bestD = d; } }"
        "return best;",
        el["id"],
        el["x"],
        el["y"],
        el["w"],
        el["h"],
    )
    return None if found is None else (found[0], found[1])


def _outside(el: dict, x: float, y: float) -> float:
    """How far (x, y) is outside `el` (negative inside)."""
    dx = max(el["x"] - x, x - (el["x"] + el["w"]))
    dy = max(el["y"] - y, y - (el["y"] + el["h"]))
    return max(dx, dy)


def type_into(world: MiniWoBWorld, field: dict, wanted: str) -> Action | None:
    """The next step to make `field` hold `wanted`, or None when it does."""
    value = field["value"] or ""
    if field["type"] == "password":
        value = seen_password(value, wanted, field["focused"])
    if value == wanted:
        if field["focused"]:  # the second read checks that the word ends here (its closing quote)
            read_at(world, wanted, len(wanted), slot=1)
        return None
    if not field["focused"]:
        read_at(world, wanted)
        return click_on(field)
    if value:  # the second read checks the last character typed
        read_at(world, wanted, len(value) - 1, slot=1)
    if wanted.startswith(value):
        read_at(world, wanted, len(value))
        return Action.press(*char_to_key(wanted[len(value)]))
    # A wrong character goes at once, also in a password field: what was typed last is the model's
    # own history and the check read's glyph, not the dots, so a full field is a right one. The
    # read is at the character left last (the place after this key: the next one is to its right).
    read_at(world, wanted, len(value) - 2)
    return Action.press("backspace")


def seen_password(value: str, wanted: str, focused: bool) -> str:
    """What a password field can be known to hold from pixels and the last key: its dots count the
    characters, and only the one just typed (the model's history, focused) can be checked against
    the instruction. Earlier characters are taken as right: a label to go back for a wrong one
    nobody can see teaches the model to wander between full fields (DAgger taught v14 that)."""
    n = len(value)
    believed = wanted[: n - 1] + value[n - 1 :] if focused and n else wanted[:n]
    return believed + "\0" * (n - len(believed))  # more dots than wanted: they show, and go


def fill_form(world: MiniWoBWorld, fields: list[tuple[str, str]], submit: str = "#subbtn") -> Action:
    for selector, wanted in fields:
        found = query(world, selector)
        if not found:
            return WAIT
        step = type_into(world, found[0], wanted)
        if step is not None:
            return step
    return click_on(query(world, submit)[0])


def click_word(world: MiniWoBWorld, selector: str, text: str) -> Action:
    """A click on the first letter of the element matching `selector` whose text is `text`: the
    page's copy of the glyph the instruction's read looked at, so the pointer's target is where the
    two match (a link, or a label, which toggles the box it holds)."""
    at = world.js(_FIRST_GLYPH, selector, text)
    return WAIT if at is None else click_at(*at)


def _first(world, selector: str, pred: Callable[[dict], bool] = lambda e: True) -> dict | None:
    return next((e for e in query(world, selector) if pred(e)), None)


def _click_first(world, selector: str, pred: Callable[[dict], bool] = lambda e: True) -> Action:
    el = _first(world, selector, pred)
    return click_on(el) if el else WAIT


# -- the suite -----------------------------------------------------------------------------------


def click_test_2(world, f):
    buttons = query(world, "#subbtn, #subbtn2")
    target = next((b for b in buttons if b["text"] == f["target"]), None)
    if target is None:
        return WAIT
    return click_on(target, avoid=[b for b in buttons if b is not target])


def click_dialog_2(world, f):
    if f["target"].lower() == "x":
        return _click_first(world, ".ui-dialog-titlebar-close")
    return _click_first(world, ".ui-dialog-buttonset button", lambda e: e["text"] == f["target"])


def click_shape(world, f):
    words = world.utterance().rstrip(".").split()[3:]  # "Click on a [size] [color] thing"
    size = words.pop(0) if words and words[0] in ("large", "small") else None
    colors = ("red", "green", "blue", "aqua", "black", "magenta", "yellow")
    color = words.pop(0) if len(words) > 1 and words[0] in colors else None
    what = " ".join(words)
    read_at(world, what)
    # The second read takes the colour (its third letter: the glance then covers "lue" / "lac" /
    # "qua", which tell blue, black and aqua apart), else the size.
    other = color or size
    if other:
        read_at(world, other, index=min(2, len(other) - 1), slot=1)
    kinds = {"text": None, "rect": "rectangle", "circle": "circle", "polygon": "triangle"}
    for e in query(world, "#area_svg > *"):
        shape = kinds.get(e["tag"])
        is_digit = e["tag"] == "text" and e["text"].isdigit()
        kind = "shape" if shape else ("digit" if is_digit else "letter")
        large = e["size"] > 15
        if size and large != (size == "large"):
            continue
        if color and e["fill"] != color:
            continue
        if what not in ("item", kind, shape or e["text"]):
            continue
        return click_on(e)
    return WAIT


def click_checkboxes(world, f):
    wanted = {v for k, v in f.items() if k.startswith("target")}
    for text, checked in _labelled_boxes(world):
        if (text in wanted) != checked:
            if not checked:
                read_at(world, text)
            return click_word(world, "#boxes label", text)
    return _click_first(world, "#subbtn")


def click_option(world, f):
    for text, checked in _labelled_boxes(world):
        if text == f["target"] and not checked:
            return click_word(world, "#boxes label", text)
    return _click_first(world, "#subbtn")


def _labelled_boxes(world) -> list[tuple[str, bool]]:
    """(label text, checked) of each checkbox or radio button in #boxes."""
    return world.js(
        "return Array.from(document.querySelectorAll('#boxes label')).map(l => "
        "[l.textContent.trim(), l.querySelector('input').checked]);"
    )


def click_collapsible(world, f):
    if world.js("return $(':animated').length;"):
        return WAIT
    if not world.js("return $('.ui-accordion-content:visible').length;"):
        return _click_first(world, "#area h3")
    return _click_first(world, "#subbtn")


_DRAGGING = """
const d = document.querySelector('.ui-draggable-dragging'); if (d) return d.id;
const wrap = document.getElementById('wrap').getBoundingClientRect();
const at = document.elementFromPoint(wrap.left + arguments[0] + 0.5, wrap.top + arguments[1] + 0.5);
return at && at.id.startsWith('draggable') && at.id !== 'draggable' ? at.id : null;
"""


def drag_box(world, f):
    """drag-box counts the small box as inside when 0 < small - large < 30 px on both axes (CSS
    top/left). Grab the small box on a visible part; if the large one covers it entirely, drag
    the large one instead."""
    small, large = _first(world, "#draggableSmall"), _first(world, "#draggableLarge")
    if small is None or large is None:
        return WAIT
    rel = (small["x"] - large["x"], small["y"] - large["y"])
    inside = all(2 < d < 28 for d in rel)
    _, _, held = world.screen.pointer()
    px, py = _pointer_in_area(world)
    if not held:
        if inside:
            return _click_first(world, "#subbtn")
        point = hit_point(world, small) or hit_point(world, large)
        if point is None:
            return WAIT
        grab = click_at(point[0], point[1])
        return Action(Kind.MOUSE_DOWN, grab.x, grab.y)
    # What is dragged is the page's word (jQuery UI marks it once the pointer moves; before that,
    # the box under the pointer), not what the grab meant: a press that missed both is let go.
    dragging = world.js(_DRAGGING, px, py)
    if inside or dragging is None:
        return Action(Kind.MOUSE_UP, (px + 0.5) / TASK_W, (py + 0.5) / TASK_H)
    sign = 1 if dragging == "draggableSmall" else -1
    dx, dy = sign * (15 - rel[0]), sign * (15 - rel[1])  # move so that rel becomes (15, 15)
    k = min(1.0, DRAG_STEP / max(abs(dx), abs(dy), 1e-9))
    x, y = min(max(px + dx * k, 0), TASK_W - 1), min(max(py + dy * k, 0), TASK_H - 1)
    return Action.move((int(x) + 0.5) / TASK_W, (int(y) + 0.5) / TASK_H)


def _pointer_in_area(world) -> tuple[int, int]:
    x, y, _ = world.screen.pointer()
    return x - world.area.x, y - world.area.y


def grid_coordinate(world, f):
    shown = f"({f['x']},{f['y']})"  # the instruction's "(x,y)": read x, then y
    read_at(world, shown, 1)
    read_at(world, shown, 2 + len(f["x"]), slot=1)
    return _click_first(world, "circle", lambda e: e["id"] == shown)


EXPERTS: dict[str, Callable[[MiniWoBWorld, dict], Action]] = {
    "click-test": lambda w, f: _click_first(w, "#subbtn"),
    "click-test-2": click_test_2,
    "click-button": lambda w, f: _click_first(w, "#area button", lambda e: e["text"] == f["target"]),
    "click-link": lambda w, f: click_word(w, "#area .alink", f["target"]),
    "click-dialog": lambda w, f: _click_first(w, ".ui-dialog-titlebar-close"),
    "click-dialog-2": click_dialog_2,
    "click-tab": lambda w, f: _click_first(
        w, ".ui-tabs-anchor", lambda e: e["text"] == f"Tab #{f['target']}"
    ),
    "click-color": lambda w, f: _click_first(
        w, "#area .color", lambda e: e["data"].get("color") == f["target"]
    ),
    "click-shape": click_shape,
    "click-widget": lambda w, f: _click_first(w, f"#area [data-type='{f['target']}']"),
    "click-checkboxes": click_checkboxes,
    "click-option": click_option,
    "click-collapsible": click_collapsible,
    "focus-text": lambda w, f: _click_first(w, "#tt"),
    "focus-text-2": lambda w, f: _click_first(w, f"#tt{f['target']}"),
    "enter-text": lambda w, f: fill_form(w, [("#tt", f["target"])]),
    "enter-password": lambda w, f: fill_form(w, [("#password", f["target"]), ("#verify", f["target"])]),
    "login-user": lambda w, f: fill_form(w, [("#username", f["username"]), ("#password", f["password"])]),
    "drag-box": drag_box,
    "grid-coordinate": grid_coordinate,
}


# Tasks whose every click is about one field of the instruction: the expert reads it.
READ_FIELD = {
    "click-test-2": "target", "click-button": "target", "click-link": "target", "click-dialog-2": "target",
    "click-tab": "target", "click-color": "target", "click-widget": "target", "click-option": "target",
    "focus-text-2": "target",
}  # fmt: skip


def expert_action(world: MiniWoBWorld, fields: dict | None = None) -> Action:
    """The expert's next action for the task `world` shows, from the page as it is now (and in
    `expert_look(world)`, where in the instruction it read for it)."""
    expert = EXPERTS.get(world.task)
    if expert is None:
        raise KeyError(f"no expert for {world.task}; experts cover the training suite only")
    fields = world.fields() if fields is None else fields
    world.episode_memo["looks"] = [None, None]
    action = expert(world, fields)
    if action.kind == Kind.CLICK and world.task in READ_FIELD and fields.get(READ_FIELD[world.task]):
        read_at(world, fields[READ_FIELD[world.task]])
    return action
