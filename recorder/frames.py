"""What the recorder captures each frame: the viewport's pixels with the pointer drawn in and
the privacy masks blacked out, either whole or, when X DAMAGE says only part of the screen
changed, as patches of the changed part.

    source = FrameSource(screen, rect, masks=[...], damage=DamageWatch(display, rect))
    kind, data = source.capture()   # ("full", BGRA frame) or ("patches", [(x, y, BGRA), ...])
    source.resync()                 # the next capture is full (after a dropped frame or a pause)

Patches make a mostly still desktop nearly free to record: only changed pixels are grabbed and
converted to YUV. Safety net: a full capture every `full_every` frames, so anything DAMAGE did
not report (nothing should) stays wrong for at most that long. Patch coordinates are even, as
yuv420p needs.
"""

from __future__ import annotations

import numpy as np

from emulator.damage import DamageWatch
from emulator.schema import Rect
from emulator.screen import CURSOR_SIZE, Screen, draw_cursor


class FrameSource:
    def __init__(
        self,
        screen: Screen,
        rect: Rect,
        masks: list[Rect] = (),
        cursor: bool = True,
        damage: DamageWatch | None = None,
        full_every: int = 30,
    ):
        self.screen, self.rect, self.cursor, self.damage = screen, rect, cursor, damage
        self.masks = [m for m in (_to_frame(mask, rect) for mask in masks) if m is not None]
        self.full_every = full_every
        self._clean: np.ndarray | None = None  # the screen without pointer or masks
        self._count = 0
        self._pointer: tuple[int, int, bool] | None = None  # in frame pixels

    def resync(self) -> None:
        self._clean = None

    def capture(self) -> tuple[str, object]:
        rect, r = self.rect, self.rect
        full = self.damage is None or self._clean is None or self._count % self.full_every == 0
        self._count += 1
        if full:
            if self.damage:
                self.damage.take_area()  # everything up to now is in the grab below
            self._clean = self.screen.grab(rect, cursor=False)
            areas = []
        else:
            area = self.damage.take_area()
            areas = []
            if area is not None:
                self._clean[
                    area.y - r.y : area.y - r.y + area.height, area.x - r.x : area.x - r.x + area.width
                ] = self.screen.grab(area, cursor=False)
                areas.append((area.x - r.x, area.y - r.y, area.width, area.height))
        pointer = None
        if self.cursor:
            px, py, held = self.screen.pointer()
            pointer = (px - r.x, py - r.y, held)
            if pointer != self._pointer and not full:
                areas += [(p[0], p[1], *CURSOR_SIZE) for p in (self._pointer, pointer) if p is not None]
        self._pointer = pointer
        if full:
            frame = self._clean.copy()
            self._decorate(frame, 0, 0)
            return "full", frame
        patches = []
        for area in areas:
            box = _even_box(area, r.width, r.height)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            patch = self._clean[y0:y1, x0:x1].copy()
            self._decorate(patch, x0, y0)
            patches.append((x0, y0, patch))
        return "patches", patches

    def _decorate(self, img: np.ndarray, ox: int, oy: int) -> None:
        """Pointer and masks onto `img`, a piece of the frame whose top-left is frame (ox, oy)."""
        if self._pointer is not None:
            draw_cursor(img, self._pointer[0] - ox, self._pointer[1] - oy, self._pointer[2])
        h, w = img.shape[:2]
        for x0, y0, x1, y1 in self.masks:
            a0, b0, a1, b1 = max(x0 - ox, 0), max(y0 - oy, 0), min(x1 - ox, w), min(y1 - oy, h)
            if a0 < a1 and b0 < b1:
                img[b0:b1, a0:a1, :3] = 0


def _to_frame(mask: Rect, rect: Rect) -> tuple[int, int, int, int] | None:
    """A screen rectangle -> (x0, y0, x1, y1) in frame pixels, or None when it misses the frame."""
    x0, y0 = max(mask.x, rect.x) - rect.x, max(mask.y, rect.y) - rect.y
    x1 = min(mask.x + mask.width, rect.x + rect.width) - rect.x
    y1 = min(mask.y + mask.height, rect.y + rect.height) - rect.y
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def _even_box(area: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) -> (x0, y0, x1, y1) grown to even edges and clipped to the frame."""
    x, y, w, h = area
    x0, y0 = max(x, 0) // 2 * 2, max(y, 0) // 2 * 2
    x1, y1 = min(x + w + (x + w) % 2, width), min(y + h + (y + h) % 2, height)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None
