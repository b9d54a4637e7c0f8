"""The recording viewer: scrub through a recording's frames with its actions drawn in (markers at
pointer actions, the current action's label, keys), opened from the recording panel.

    viewer = RecordingViewer("data/app/recordings/demo-...", parent)
    viewer.show(); viewer.seek(42)      # frame 42; decoding happens on the viewer's loader thread

The video is decoded by a `FrameLoader` thread that always serves the newest request, so
dragging the slider never waits on the decoder.
"""

from __future__ import annotations

import bisect
import threading

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QDialog, QLabel, QListWidget, QSlider, QSplitter, QVBoxLayout, QWidget

from app.live_view import KIND_COLORS, describe
from app.recordings import rgb_pixmap
from emulator.schema import Action

MARK_S = 0.6  # an action is drawn for this long after it happened


class LoaderSignals(QObject):
    opened = Signal(object)  # {"frames": [...], "actions": [...], "info": {...}} or {"error": ...}
    frame = Signal(int, object)  # index, RGB


class FrameLoader:
    def __init__(self, path: str):
        self.path = path
        self.signals = LoaderSignals()
        self._want: int | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="app-viewer-loader", daemon=True)
        self._thread.start()

    def request(self, index: int) -> None:
        with self._cond:
            self._want = index
            self._cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        from recorder.reader import Recording

        try:
            rec = Recording(self.path)
        except Exception as e:
            self.signals.opened.emit({"error": str(e).splitlines()[0]})
            return
        try:
            self.signals.opened.emit({"frames": rec.frames, "actions": rec.actions, "info": rec.info})
            while True:
                with self._cond:
                    while self._want is None and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        return
                    index, self._want = self._want, None
                try:
                    self.signals.frame.emit(index, rec.frame(index))
                except Exception as e:
                    self.signals.opened.emit({"error": str(e).splitlines()[0]})
        finally:
            rec.close()


class FrameView(QWidget):
    """One recorded frame, scaled to fit, with the actions near its time drawn in."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self.pixmap = None
        self.marks: list[tuple[Action, float]] = []  # (action, age 0..1)
        self.label = ""

    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 26, 30))
        if self.pixmap is None:
            return
        s = min(self.width() / self.pixmap.width(), self.height() / self.pixmap.height())
        r = QRectF((self.width() - self.pixmap.width() * s) / 2, (self.height() - self.pixmap.height() * s) / 2,
                   self.pixmap.width() * s, self.pixmap.height() * s)  # fmt: skip
        p.drawPixmap(r.toRect(), self.pixmap)
        p.setRenderHint(QPainter.Antialiasing)
        for action, age in self.marks:
            if not action.has_position:
                continue
            color = QColor(KIND_COLORS.get(action.kind, QColor(255, 255, 255)))
            color.setAlpha(int(255 * (1 - age)))
            p.setPen(QPen(color, 3))
            radius = 6 + 14 * age
            p.drawEllipse(
                QPointF(r.x() + action.x * r.width(), r.y() + action.y * r.height()), radius, radius
            )
        if self.label:
            m = p.fontMetrics()
            p.fillRect(
                QRectF(4, 4, m.horizontalAdvance(self.label) + 8, m.height() + 6), QColor(0, 0, 0, 170)
            )
            p.setPen(QColor(255, 255, 255))
            p.drawText(QPointF(8, 6 + m.ascent()), self.label)


class RecordingViewer(QDialog):
    def __init__(self, path: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"recording · {path}")
        self.resize(900, 600)
        self.path = path
        self.frames: list[dict] = []
        self.actions: list[dict] = []
        self._action_t: list[float] = []
        self.index = -1
        self.shown = -1  # the index of the frame on screen
        self.view = FrameView()
        self.slider = QSlider(Qt.Horizontal, enabled=False)
        self.slider.valueChanged.connect(self.seek)
        self.info = QLabel("opening …")
        self.action_list = QListWidget()
        self.action_list.currentRowChanged.connect(self._jump_to_action)
        split = QSplitter()
        split.addWidget(self.view)
        split.addWidget(self.action_list)
        split.setSizes([650, 250])
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(self.slider)
        layout.addWidget(self.info)
        self.loader = FrameLoader(path)
        self.loader.signals.opened.connect(self._opened)
        self.loader.signals.frame.connect(self._frame)

    def _opened(self, data: dict) -> None:
        if "error" in data:
            self.info.setText(f"error: {data['error']}")
            return
        self.frames, self.actions = data["frames"], data["actions"]
        self._action_t = [a["t"] for a in self.actions]
        for a in self.actions:
            self.action_list.addItem(
                f"#{a['index']}  {a['t']:6.2f} s  {describe(Action.from_json(a['action']))}"
            )
        if self.frames:
            self.slider.setRange(0, len(self.frames) - 1)
            self.slider.setEnabled(True)
            self.seek(0)
        else:
            self.info.setText("no frames")

    def seek(self, index: int) -> None:
        if not 0 <= index < len(self.frames):
            return
        self.index = index
        if self.slider.value() != index:
            self.slider.setValue(index)
        self.loader.request(index)

    def _jump_to_action(self, row: int) -> None:
        if 0 <= row < len(self.actions) and self.actions[row]["frame"] >= 0:
            self.seek(int(self.actions[row]["frame"]))

    def _frame(self, index: int, rgb: np.ndarray) -> None:
        self.shown = index
        t = self.frames[index]["t"]
        self.view.pixmap = rgb_pixmap(rgb)
        # Actions drawn on a frame: those the person took while it (or the frames just before it)
        # was on screen, i.e. from t - MARK_S up to the next frame's time.
        t_next = self.frames[index + 1]["t"] if index + 1 < len(self.frames) else t + 1.0
        lo, hi = bisect.bisect_left(self._action_t, t - MARK_S), bisect.bisect_left(self._action_t, t_next)
        self.view.marks = [(Action.from_json(a["action"]), max(0.0, (t - a["t"]) / MARK_S))
                           for a in self.actions[lo:hi]]  # fmt: skip
        current = self.actions[hi - 1] if hi > lo else None
        self.view.label = (
            f"#{current['index']} {describe(Action.from_json(current['action']))}" if current else ""
        )
        self.info.setText(f"frame {index + 1}/{len(self.frames)} · {t:.2f} s · {len(self.actions)} actions")
        self.view.update()

    def shutdown(self) -> None:
        self.loader.stop()

    def closeEvent(self, e) -> None:
        self.shutdown()
        super().closeEvent(e)
