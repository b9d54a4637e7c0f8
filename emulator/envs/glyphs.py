"""Glyph sheets: labelled characters for teaching the model to read. A MiniWoB++ task page's
instruction (#query) is rewritten with random instruction-like text (plain and bold, random
passwords, names, digits, punctuation), every other text on the page (links, buttons, labels, in
their own sizes and colours) gets random characters in place of its own, the task area is
captured through X like any frame the agent sees, and every typable glyph is noted with its
pointer cell and the key that types it.

    emulator glyphs --out data/glyphs.npz [--sheets 2000] [--seed 0]

The file holds `frames` (N, 210, 160, 3) uint8 RGB, and `glyphs` (M, 3) int64 rows of
(frame, cell, class), class = 2 * key index + shift (models.spec: a history token less 2). Real
rendering by Chromium, real capture: the same pixels the policy reads; a few thousand sheets carry
a hundred thousand glyphs, where the typing tasks' demonstrations hold a few thousand.
"""

from __future__ import annotations

import json
import os
import random
import string
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emulator.envs.miniwob import TASK_H, TASK_W, MiniWoBWorld
from emulator.errors import EmulatorError
from emulator.schema import KEY_INDEX, SchemaError, char_to_key

PAGES = ("enter-password", "login-user", "enter-text", "click-link", "click-checkboxes", "click-button",
         "click-option", "click-tab", "click-dialog", "click-widget")  # fmt: skip
WORDS = ("Enter", "the", "password", "username", "into", "both", "text", "fields", "and", "press",
         "submit", "login", "Click", "on", "link", "Select", "button", "Tab", "#", "grid", "coordinate")  # fmt: skip
SHEETS_PER_PAGE = 40  # a new task page (and its layout) this often
PAGE_CHARS = string.ascii_letters + string.digits

# The page's own texts (not the instruction) with each visible character replaced by the next of
# arguments[0]: the layout and styles stay, the glyphs are random.
_REWRITE_PAGE = """
const area = document.getElementById('area'); if (!area) return;
const pool = arguments[0]; let k = 0;
const walk = document.createTreeWalker(area, NodeFilter.SHOW_TEXT);
while (walk.nextNode()) { const n = walk.currentNode;
  n.data = n.data.replace(/\\S/g, () => pool[k++ % pool.length]); }
"""

# Every visible character in the task area (#wrap: instruction and page) with its glyph's centre.
_ALL_GLYPHS = """
const wrap = document.getElementById('wrap'); const box = wrap.getBoundingClientRect(); const out = [];
const walk = document.createTreeWalker(wrap, NodeFilter.SHOW_TEXT); const range = document.createRange();
while (walk.nextNode()) { const n = walk.currentNode; const el = n.parentElement;
  if (!el || el.closest('script,style,option,select')) continue;
  const s = getComputedStyle(el); if (s.visibility === 'hidden' || s.display === 'none') continue;
  for (let i = 0; i < n.length; i++) { if (/\\s/.test(n.data[i])) continue;
    range.setStart(n, i); range.setEnd(n, i + 1); const r = range.getBoundingClientRect();
    if (r.width > 0 && r.height > 0)
      out.push([n.data[i], r.left - box.left + r.width / 2, r.top - box.top + r.height / 2]); } }
return out;
"""


def glyph_class(ch: str) -> int | None:
    """A character -> 2 * key index + shift, or None if no key types it."""
    try:
        key, mods = char_to_key(ch)
    except SchemaError:
        return None
    return 2 * KEY_INDEX[key] + int("shift" in mods)


def _random_word(rng: random.Random) -> str:
    kind = rng.random()
    n = rng.randint(1, 8)
    if kind < 0.45:  # a password: any letters and digits
        return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))
    if kind < 0.65:
        return "".join(rng.choice(string.digits) for _ in range(n))
    if kind < 0.85:
        return "".join(rng.choice(string.ascii_uppercase) for _ in range(n))
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(n))


def random_query(rng: random.Random) -> str:
    """Instruction-like HTML: template words, and random words, some quoted, some bold."""
    parts = []
    for _ in range(rng.randint(6, 14)):
        if rng.random() < 0.4:
            parts.append(rng.choice(WORDS))
            continue
        word = _random_word(rng)
        if rng.random() < 0.5:
            word = f'<span class="bold">{word}</span>'
        if rng.random() < 0.6:
            word = f'"{word}"'
        parts.append(word + (rng.choice(",.") if rng.random() < 0.15 else ""))
    return " ".join(parts)


def capture_sheet(world: MiniWoBWorld, html: str, page: str = "") -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Show `html` as the instruction (and the page's texts in `page`'s characters, if given) ->
    the captured RGB frame, and (cell, class) per visible glyph of the task area."""
    from models.spec import GRID

    world.js("document.getElementById('query').innerHTML = arguments[0];", html)
    if page:
        world.js(_REWRITE_PAGE, page)
    world.settle(quiet=0.02, timeout=0.5)
    frame = world.observe(cursor=False)[:, :, 2::-1]  # BGRA -> RGB
    labelled = []
    for ch, x, y in world.js(_ALL_GLYPHS) or []:
        cls = glyph_class(ch)
        if cls is not None and ch != " " and 0 <= x < TASK_W and 0 <= y < TASK_H:
            labelled.append((GRID.cell(x / TASK_W, y / TASK_H), cls))
    return np.ascontiguousarray(frame), labelled


def make_sheets(out: str, sheets: int, seed: int = 0, progress: bool = True) -> dict:
    """Capture `sheets` glyph sheets into `out` (.npz, 0600) -> a summary."""
    if sheets < 1:
        raise EmulatorError("--sheets must be at least 1")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    frames, rows = [], []
    started = time.monotonic()
    with MiniWoBWorld() as world:
        for i in tqdm(range(sheets), desc="glyph sheets", unit="sheet", disable=not progress):
            if i % SHEETS_PER_PAGE == 0:
                world.reset(PAGES[(i // SHEETS_PER_PAGE) % len(PAGES)], f"glyphs-{seed}-{i}")
            page = "".join(rng.choice(PAGE_CHARS) for _ in range(400))
            frame, labelled = capture_sheet(world, random_query(rng), page)
            rows += [(len(frames), cell, cls) for cell, cls in labelled]
            frames.append(frame)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
    np.savez_compressed(tmp, frames=np.stack(frames), glyphs=np.array(rows, np.int64).reshape(-1, 3))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return {"sheets": sheets, "glyphs": len(rows), "minutes": round((time.monotonic() - started) / 60, 2),
            "out": str(path)}  # fmt: skip


def cmd_glyphs(args) -> int:
    print(json.dumps(make_sheets(args.out, args.sheets, args.seed, progress=not args.json)))
    return 0


def add_command(sub) -> None:
    p = sub.add_parser(
        "glyphs", help="labelled glyph sheets (MiniWoB++ instructions rewritten) to learn reading"
    )
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--sheets", type=int, default=2000, help="frames to capture (~100 glyphs each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_glyphs)
