"""The recording panel: start and stop a demonstration recording of the agent's display (the
product's recorder, on its own thread: app/workers.DemoRecorder), and a list of the recordings
and correction recordings with a thumbnail, duration and action count. Double-click one to scrub
through its frames with its actions drawn in (app/viewer.py).

    panel = RecordingsPanel({"recording": Path("data/app/recordings"), "correction": Path(...)})
    panel.set_target(display, viewport)     # recording is possible once the agent's display is up
    panel.refresh()                         # rescans on a thread; rows appear as they are read

Reading recordings (a thumbnail decodes a frame) happens on a scanner thread; the list only ever
receives finished rows.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.workers import DemoRecorder
from recorder.dataset import INFO

THUMB = QSize(96, 72)


@dataclass(frozen=True)
class Entry:
    """One recording as the list shows it (plain data from the scanner thread)."""

    path: str
    source: str  # "recording" | "correction"
    task: str
    duration: float
    actions: int
    frames: int
    thumbnail: np.ndarray | None  # small RGB
    error: str | None = None

    @property
    def text(self) -> str:
        name = Path(self.path).name
        if self.error:
            return f"{name}\n{self.error}"
        task = f" · {self.task}" if self.task else ""
        return f"{name}{task}\n{self.source} · {self.duration:.1f} s · {self.actions} actions · {self.frames} frames"


def read_entry(path: Path, source: str) -> Entry:
    from PIL import Image

    from recorder.reader import Recording

    try:
        with Recording(path) as rec:
            thumb = None
            if rec.frames:
                img = Image.fromarray(rec.frame(len(rec.frames) // 2))
                img.thumbnail((THUMB.width(), THUMB.height()))
                thumb = np.asarray(img.convert("RGB"))
            task = rec.info.get("task") or ""
            return Entry(str(path), source, task, rec.duration, len(rec.actions), len(rec.frames), thumb)
    except Exception as e:
        return Entry(str(path), source, "", 0.0, 0, 0, None, str(e).splitlines()[0][:100])


def find_recordings(root: Path) -> list[Path]:
    if not root.exists():
        return []
    return sorted((p.parent.parent for p in root.rglob(INFO)), key=lambda p: p.stat().st_mtime, reverse=True)


class ScanSignals(QObject):
    entry = Signal(object)  # Entry
    done = Signal()


class Scanner:
    """Reads every recording below the roots on a thread; a newer scan supersedes an older one."""

    def __init__(self, roots: dict[str, Path]):
        self.roots = roots
        self.signals = ScanSignals()
        self._generation = 0
        self._threads: list[threading.Thread] = []
        self._cache: dict[Path, tuple[float, Entry]] = {}  # finished recordings, by info's mtime

    def scan(self) -> None:
        self._generation += 1
        gen = self._generation
        thread = threading.Thread(target=self._run, args=(gen,), name="app-recordings-scan", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._generation += 1
        for t in self._threads:
            t.join(timeout)

    def _run(self, gen: int) -> None:
        for source, root in self.roots.items():
            for path in find_recordings(root):
                if gen != self._generation:
                    return
                try:
                    mtime = (path / INFO).stat().st_mtime
                except FileNotFoundError:  # deleted meanwhile (an empty correction session)
                    continue
                cached = self._cache.get(path)
                entry = cached[1] if cached and cached[0] == mtime else read_entry(path, source)
                if entry.error is None:
                    self._cache[path] = (mtime, entry)
                if gen != self._generation:
                    return
                self.signals.entry.emit(entry)
        self.signals.done.emit()


def rgb_pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QPixmap.fromImage(QImage(rgb.data, w, h, rgb.strides[0], QImage.Format_RGB888).copy())


class RecordingsPanel(QWidget):
    recording_changed = Signal(bool)

    def __init__(self, roots: dict[str, Path], parent=None):
        super().__init__(parent)
        self.roots = roots
        self.display = self.viewport = None
        self.demo: DemoRecorder | None = None
        self.entries: dict[str, Entry] = {}
        self.viewers: list = []
        self.scanner = Scanner(roots)
        self.scanner.signals.entry.connect(self._add_entry)
        self.task = QLineEdit(placeholderText="what the demonstration does (stored as its task)")
        self.record_button = QPushButton("● Record demo")
        self.record_button.setEnabled(False)
        self.record_button.clicked.connect(self.toggle_recording)
        self.status = QLabel("")
        self.list = QListWidget()
        self.list.setIconSize(THUMB)
        self.list.setSpacing(2)
        self.list.itemActivated.connect(self._open_item)
        self.list.itemDoubleClicked.connect(self._open_item)
        row = QHBoxLayout()
        row.addWidget(self.record_button)
        row.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.task)
        layout.addLayout(row)
        layout.addWidget(self.list, 1)

    def set_target(self, display: str, viewport) -> None:
        self.display, self.viewport = display, viewport
        self.record_button.setEnabled(True)

    @property
    def recording(self) -> bool:
        return self.demo is not None

    def toggle_recording(self) -> None:
        if self.demo is None:
            self.start_recording()
        else:
            self.stop_recording()

    def start_recording(self) -> str | None:
        if self.demo is not None or self.display is None:
            return None
        out = self.roots["recording"] / time.strftime("demo-%Y%m%d-%H%M%S")
        n = 1
        while out.exists():
            out, n = out.with_name(f"{out.name.split('~')[0]}~{n}"), n + 1
        from recorder.dataset import private_dir

        private_dir(self.roots["recording"])
        self.demo = DemoRecorder(str(out), self.display, self.viewport, task=self.task.text().strip())
        self.demo.signals.finished.connect(self._finished)
        self.demo.start()
        self.record_button.setText("■ Stop recording")
        self.status.setText(f"recording to {out.name} …")
        self.recording_changed.emit(True)
        return str(out)

    def stop_recording(self) -> None:
        if self.demo is not None:
            self.demo.stop()
            self.status.setText("finishing …")
            self.record_button.setEnabled(False)

    def _finished(self, result: dict) -> None:
        self.demo = None
        self.record_button.setText("● Record demo")
        self.record_button.setEnabled(self.display is not None)
        info = result.get("info") or {}
        if result.get("error"):
            self.status.setText(f"recording failed: {result['error']}")
        else:
            self.status.setText(f"saved {Path(result['path']).name}: {info.get('duration', 0):.1f} s, "
                                f"{info.get('actions', 0)} actions")  # fmt: skip
        self.recording_changed.emit(False)
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        self.entries.clear()
        self.scanner.scan()

    def _add_entry(self, entry: Entry) -> None:
        self.entries[entry.path] = entry
        item = QListWidgetItem(entry.text)
        item.setData(Qt.UserRole, entry.path)
        if entry.thumbnail is not None:
            item.setIcon(QIcon(rgb_pixmap(entry.thumbnail)))
        self.list.addItem(item)

    def _open_item(self, item: QListWidgetItem) -> None:
        self.open(item.data(Qt.UserRole))

    def open(self, path: str):
        from app.viewer import RecordingViewer

        viewer = RecordingViewer(path, self)
        viewer.finished.connect(lambda _=0, v=viewer: self._closed(v))
        self.viewers.append(viewer)
        viewer.show()
        return viewer

    def _closed(self, viewer) -> None:
        viewer.shutdown()
        if viewer in self.viewers:
            self.viewers.remove(viewer)

    def shutdown(self, timeout: float = 15.0) -> None:
        """Finish a running recording (it stays readable) and stop the scanner and viewers."""
        if self.demo is not None:
            demo = self.demo
            demo.stop()
            demo.join(timeout)
        self.scanner.stop()
        for viewer in list(self.viewers):
            viewer.shutdown()
