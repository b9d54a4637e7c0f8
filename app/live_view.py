"""The live view: the agent's viewport as the capture worker sends it, scaled to fit, with the
next action drawn over it (pointer target, the model's pointer heatmap, kind, key, confidence), a
fading trail of recent actions, and the run's state. Clicks and key presses on it are reported
as viewport-normalized schema actions; the window decides what they mean (approve mode: a
decision; otherwise: the person's own input, forwarded to the agent's display).

    view = LiveView()
    view.set_frame(frame)            # workers.Frame; returns at once, painted on the next repaint
    view.set_proposal(proposal)      # supervision.Proposal, or None
    view.add_trail(action)
    view.pressed.connect(lambda x, y, button: ...)   # also released(x, y, button), dragged(x, y)
    view.key.connect(lambda action: ...)             # an Action.press
    view.enter.connect(...); view.escape.connect(...)   # Enter and Esc alone come as these
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from emulator.errors import SchemaError
from emulator.schema import Action, Kind, char_to_key

TRAIL = 10  # actions kept in the trail
TRAIL_S = 4.0  # ... and for at most this long
KIND_COLORS = {
    Kind.CLICK: QColor(255, 60, 60), Kind.MOVE: QColor(60, 160, 255), Kind.MOUSE_DOWN: QColor(255, 140, 0),
    Kind.MOUSE_UP: QColor(255, 200, 0), Kind.SCROLL: QColor(0, 200, 140), Kind.KEY: QColor(190, 110, 255),
    Kind.WAIT: QColor(160, 160, 160), Kind.DONE: QColor(80, 220, 80),
}  # fmt: skip
_QT_KEYS = {
    Qt.Key_Return: "enter", Qt.Key_Enter: "enter", Qt.Key_Tab: "tab", Qt.Key_Backtab: "tab",
    Qt.Key_Backspace: "backspace", Qt.Key_Escape: "escape", Qt.Key_Delete: "delete", Qt.Key_Insert: "insert",
    Qt.Key_Home: "home", Qt.Key_End: "end", Qt.Key_PageUp: "page_up", Qt.Key_PageDown: "page_down",
    Qt.Key_Up: "up", Qt.Key_Down: "down", Qt.Key_Left: "left", Qt.Key_Right: "right", Qt.Key_Space: "space",
    **{getattr(Qt, f"Key_F{i}"): f"f{i}" for i in range(1, 13)},
}  # fmt: skip
_QT_MODS = ((Qt.ShiftModifier, "shift"), (Qt.ControlModifier, "ctrl"), (Qt.AltModifier, "alt"),
            (Qt.MetaModifier, "super"))  # fmt: skip
_MODIFIER_KEYS = {Qt.Key_Shift, Qt.Key_Control, Qt.Key_Alt, Qt.Key_Meta, Qt.Key_AltGr, Qt.Key_CapsLock}


def qt_key_action(key: int, modifiers, text: str = "") -> Action | None:
    """A Qt key event -> the schema key action that types it (None: a modifier alone, or a key
    outside the vocabulary)."""
    if key in _MODIFIER_KEYS:
        return None
    mods = {name for flag, name in _QT_MODS if modifiers & flag}
    name = _QT_KEYS.get(key)
    if name is None:
        ch = chr(key) if 0x20 < key < 0x7F else (text if len(text) == 1 and text.isprintable() else "")
        if not ch:
            return None
        try:
            name, extra = char_to_key(ch.lower() if ch.isalpha() else ch)
        except SchemaError:
            return None
        mods |= set(extra)
    return Action.press(name, tuple(mods))


def describe(action: Action) -> str:
    """One short line for an action: 'click left (0.41, 0.33)', 'key ctrl+a', 'wait'."""
    k = action.kind
    if k == Kind.KEY:
        return "key " + "+".join([*action.mods, action.key])
    where = f" ({action.x:.2f}, {action.y:.2f})" if action.has_position else ""
    if k == Kind.CLICK:
        return f"{'double-' if action.count == 2 else ''}click {action.button}{where}"
    if k == Kind.SCROLL:
        return f"scroll {action.dx:+d},{action.dy:+d}{where}"
    return f"{k.value}{where}"


def heat_image(heatmap: np.ndarray) -> QImage:
    """Pointer probabilities (rows, cols) -> a translucent orange image. Opacity grows with a cell's
    probability relative to the peak, and a flat (unsure) distribution stays nearly transparent:
    the reference is the peak, or 40 times the uniform probability if that is higher."""
    reference = max(float(heatmap.max()), 40.0 / heatmap.size)
    p = np.clip(heatmap / reference, 0.0, 1.0) ** 0.75
    rgba = np.zeros((*heatmap.shape, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 255, (140 * (1 - p)).astype(np.uint8), 0
    rgba[..., 3] = (200 * p).astype(np.uint8)
    h, w = heatmap.shape
    return QImage(rgba.tobytes(), w, h, w * 4, QImage.Format_RGBA8888).copy()


class LiveView(QWidget):
    pressed = Signal(float, float, str)  # viewport-normalized x, y, button
    released = Signal(float, float, str)
    dragged = Signal(float, float)
    key = Signal(object)  # Action.press
    enter = Signal()
    escape = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(320, 240)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMouseTracking(False)
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None  # keeps the QImage's memory alive
        self._proposal = None
        self._heat: QImage | None = None
        self._trail: deque = deque(maxlen=TRAIL)
        self.state = "starting"
        self.caption = ""
        self.painted = 0  # frames painted (the window's fps counter reads it)
        self.on_painted = None  # called after a new frame is painted (frees the capture worker)
        self._fresh = False

    # -- data in ----------------------------------------------------------------------------------
    def set_frame(self, frame) -> None:
        self._pixels = frame.bgra
        h, w = self._pixels.shape[:2]
        self._image = QImage(self._pixels.data, w, h, self._pixels.strides[0], QImage.Format_RGB32)
        self._fresh = True
        self.update()

    def set_proposal(self, proposal) -> None:
        self._proposal = proposal
        self._heat = (
            heat_image(proposal.heatmap) if proposal is not None and proposal.heatmap is not None else None
        )
        self.update()

    def add_trail(self, action: Action) -> None:
        self._trail.append((time.monotonic(), action))
        self.update()

    def set_state(self, state: str, caption: str = "") -> None:
        self.state, self.caption = state, caption
        self.update()

    # -- geometry -----------------------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the viewport is drawn: scaled to fit, centred, aspect ratio kept."""
        if self._image is None:
            return QRectF(self.rect())
        iw, ih = self._image.width(), self._image.height()
        s = min(self.width() / iw, self.height() / ih)
        return QRectF((self.width() - iw * s) / 2, (self.height() - ih * s) / 2, iw * s, ih * s)

    def to_normalized(self, pos: QPointF, clamp: bool = False) -> tuple[float, float] | None:
        """Widget position -> viewport-normalized; None outside the image (or clamped onto it)."""
        r = self.image_rect()
        x, y = (pos.x() - r.x()) / r.width(), (pos.y() - r.y()) / r.height()
        if clamp:
            return min(max(x, 0.0), 0.9999), min(max(y, 0.0), 0.9999)
        return (x, y) if 0.0 <= x < 1.0 and 0.0 <= y < 1.0 else None

    def to_widget(self, x: float, y: float) -> QPointF:
        r = self.image_rect()
        return QPointF(r.x() + x * r.width(), r.y() + y * r.height())

    # -- painting -----------------------------------------------------------------------------------
    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 26, 30))
        r = self.image_rect()
        if self._image is not None:
            p.setRenderHint(QPainter.SmoothPixmapTransform, r.width() < self._image.width())
            p.drawImage(r, self._image)
        p.setRenderHint(QPainter.Antialiasing)
        if self._heat is not None:
            p.setRenderHint(QPainter.SmoothPixmapTransform, True)
            p.drawImage(r, self._heat)
        self._paint_trail(p)
        if self._proposal is not None:
            self._paint_proposal(p, self._proposal)
        self._paint_state(p)
        p.end()
        if self._fresh:
            self._fresh = False
            self.painted += 1
            if self.on_painted is not None:
                self.on_painted()

    def _paint_trail(self, p: QPainter) -> None:
        now = time.monotonic()
        points, keys = [], []
        for t, a in self._trail:
            age = (now - t) / TRAIL_S
            if age >= 1:
                continue
            if a.has_position:
                points.append((self.to_widget(a.x, a.y), a, age))
            elif a.kind == Kind.KEY:
                keys.append("+".join([*a.mods, a.key]))
        for (q0, _, _), (q1, _, age) in zip(points, points[1:], strict=False):
            p.setPen(QPen(QColor(255, 220, 0, int(180 * (1 - age))), 2))
            p.drawLine(q0, q1)
        for q, a, age in points:
            color = QColor(KIND_COLORS.get(a.kind, QColor(255, 255, 255)))
            color.setAlpha(int(230 * (1 - age)))
            p.setPen(QPen(color, 2))
            radius = 4 + 8 * age
            p.drawEllipse(q, radius, radius)
        if keys:
            self._banner(
                p, QPointF(8, self.height() - 12), "keys: " + " ".join(keys[-8:]), QColor(0, 0, 0, 170)
            )

    def _paint_proposal(self, p: QPainter, proposal) -> None:
        a = proposal.action
        color = KIND_COLORS.get(a.kind, QColor(255, 255, 255))
        if a.has_position:
            q = self.to_widget(a.x, a.y)
            p.setPen(QPen(color, 3 if proposal.waiting else 2))
            p.drawEllipse(q, 11, 11)
            p.drawLine(q + QPointF(-17, 0), q + QPointF(-6, 0))
            p.drawLine(q + QPointF(6, 0), q + QPointF(17, 0))
            p.drawLine(q + QPointF(0, -17), q + QPointF(0, -6))
            p.drawLine(q + QPointF(0, 6), q + QPointF(0, 17))
        text = ("next: " if proposal.waiting else "") + describe(a)
        conf = []
        if proposal.kind_p is not None:
            conf.append(f"kind {proposal.kind_p:.0%}")
        if proposal.target_p is not None:
            conf.append(f"{'key' if a.kind == Kind.KEY else 'target'} {proposal.target_p:.0%}")
        if conf:
            text += "  ·  " + ", ".join(conf)
        self._banner(
            p, QPointF(8, 22), text, QColor(color.red() // 3, color.green() // 3, color.blue() // 3, 200)
        )
        if proposal.waiting:
            hint = "Enter: approve · click: new target · key: new key · Esc: reject"
            self._banner(p, QPointF(8, 46), hint, QColor(0, 0, 0, 170))

    def _paint_state(self, p: QPainter) -> None:
        label = {"paused": "PAUSED", "takeover": "TAKEOVER: your input is recorded",
                 "approving": "APPROVE?", "starting": "starting…", "error": "ERROR"}.get(self.state)  # fmt: skip
        if self.caption:
            label = f"{label}  {self.caption}" if label else self.caption
        if label:
            font = QFont(self.font())
            font.setBold(True)
            p.setFont(font)
            width = p.fontMetrics().horizontalAdvance(label)
            self._banner(p, QPointF(self.width() - width - 14, 22), label, QColor(120, 20, 20, 200))

    def _banner(self, p: QPainter, at: QPointF, text: str, fill: QColor) -> None:
        m = p.fontMetrics()
        box = QRectF(at.x() - 4, at.y() - m.ascent() - 3, m.horizontalAdvance(text) + 8, m.height() + 6)
        p.fillRect(box, fill)
        p.setPen(QColor(255, 255, 255))
        p.drawText(at, text)

    # -- input --------------------------------------------------------------------------------------
    @staticmethod
    def _button(event) -> str:
        return {Qt.LeftButton: "left", Qt.MiddleButton: "middle", Qt.RightButton: "right"}.get(
            event.button(), "left"
        )

    def mousePressEvent(self, event) -> None:
        self.setFocus()
        pos = self.to_normalized(event.position())
        if pos is not None:
            self.pressed.emit(*pos, self._button(event))

    def mouseReleaseEvent(self, event) -> None:
        self.released.emit(*self.to_normalized(event.position(), clamp=True), self._button(event))

    def mouseMoveEvent(self, event) -> None:
        if event.buttons():
            self.dragged.emit(*self.to_normalized(event.position(), clamp=True))

    def keyPressEvent(self, event) -> None:
        k = event.key()
        plain = not (event.modifiers() & ~Qt.KeypadModifier)
        if k in (Qt.Key_Return, Qt.Key_Enter) and plain:
            self.enter.emit()
        elif k == Qt.Key_Escape and plain:
            self.escape.emit()
        elif (action := qt_key_action(k, event.modifiers(), event.text())) is not None:
            self.key.emit(action)
        else:
            super().keyPressEvent(event)

    def focusNextPrevChild(self, _next: bool) -> bool:
        return False  # Tab belongs to the agent's display, not to the window's focus chain
