"""Screen-change events from the X DAMAGE extension: know whether any pixel of a region changed
since a moment, without capturing and comparing frames.

    watch = DamageWatch(":1", rect)      # rect: the region that matters (default: whole screen)
    watch.reset()                        # from now on, collect damage
    frame = screen.grab(rect)            # ...the frame the policy sees
    ...act...
    watch.damaged()                      # one round trip: did anything in rect change since reset?
    watch.wait(timeout=0.05)             # block (no polling) until rect changes or the timeout
    watch.take_area()                    # the changed part of rect since the last take (or None)

The agent loop settles with this: a pointer move that changes nothing costs one round trip
(~0.1 ms) instead of a capture plus a compare (~2 ms at 1080p). Damage on the root window reports
drawing in every window on the screen (what x11vnc relies on). When the server lacks DAMAGE,
`DamageWatch.open` returns None and callers fall back to capture-and-compare.
"""

from __future__ import annotations

import select
import time

from emulator.display import connect
from emulator.schema import Rect


class DamageWatch:
    """Damage reports for the whole screen on a private X connection."""

    def __init__(self, display: str, rect: Rect | None = None):
        from Xlib.ext import damage

        self.conn = connect(display)
        if not self.conn.has_extension("DAMAGE"):
            self.conn.close()
            raise RuntimeError("the X server has no DAMAGE extension")
        self.conn.damage_query_version()
        root = self.conn.screen().root
        self._damage = root.damage_create(damage.DamageReportRawRectangles)
        self._event_type = self.conn.extension_event.DamageNotify
        geometry = root.get_geometry()
        self.rect = rect or Rect(0, 0, geometry.width, geometry.height)
        self._dirty = False
        self._box: list[int] | None = None  # bounding box (x0, y0, x1, y1) of damage inside rect
        self.conn.sync()

    @classmethod
    def open(cls, display: str, rect: Rect | None = None) -> DamageWatch | None:
        """A watch, or None when the server cannot report damage."""
        try:
            return cls(display, rect)
        except Exception:
            return None

    def close(self) -> None:
        try:
            self.conn.damage_destroy(self._damage)
            self.conn.close()
        except Exception:
            pass

    def reset(self) -> None:
        """Forget all damage so far: later calls report only what changes from now on."""
        self.conn.damage_subtract(self._damage)
        self.conn.sync()
        self._drain()
        self._dirty = False
        self._box = None

    def take_area(self) -> Rect | None:
        """The bounding box (screen pixels, inside the rect) of everything damaged since the last
        take or reset, or None; starts collecting afresh. Grab after taking: a change that lands
        in between is grabbed now and reported again next time, never lost."""
        self.damaged()
        box, self._box, self._dirty = self._box, None, False
        return None if box is None else Rect(box[0], box[1], box[2] - box[0], box[3] - box[1])

    def damaged(self) -> bool:
        """Whether anything in the rect changed since the last reset (one round trip)."""
        self.conn.sync()  # every damage the server saw before now is queued behind this reply
        self._drain()
        return self._dirty

    def wait(self, timeout: float) -> bool:
        """Block until something in the rect has changed since the last reset, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        if self.damaged():
            return True
        while (left := deadline - time.monotonic()) > 0:
            select.select([self.conn.fileno()], [], [], left)
            self._drain()
            if self._dirty:
                return True
        return self.damaged()

    def _drain(self) -> None:
        conn = self.conn
        while conn.pending_events():
            event = conn.next_event()
            if event.type == self._event_type:
                a, r = event.area, self.rect
                if r.overlaps(a.x, a.y, a.width, a.height):
                    self._dirty = True
                    x0, y0 = max(a.x, r.x), max(a.y, r.y)
                    x1, y1 = min(a.x + a.width, r.x + r.width), min(a.y + a.height, r.y + r.height)
                    b = self._box
                    self._box = (
                        [x0, y0, x1, y1]
                        if b is None
                        else [min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)]
                    )

    def __enter__(self) -> DamageWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
