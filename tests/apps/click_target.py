"""Practice app: a Qt window that reports, as JSON lines on stdout, where it was clicked and what
was typed. Tests start it on an Xvfb display and drive it with real X input.

    python tests/apps/click_target.py --title T --pos 100,50 [--colors]

Lines printed:
  {"event": "ready", "dpr": 2.0, "widgets": {"b0": [x, y, w, h], ...}}   (logical, window-relative)
  {"event": "click", "widget": "b3", "x": 12, "y": 7, "button": "left"}  (logical, widget-relative)
  {"event": "text", "text": "Hello!"}                                     (on Enter in the line edit)
With --colors the window is four solid quadrants (red, green, blue, white) and nothing else.
"""

import argparse
import json
import sys

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QApplication, QGridLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]  # TL, TR, BL, BR


def emit(**msg) -> None:
    print(json.dumps(msg), flush=True)


class Target(QPushButton):
    def mousePressEvent(self, e) -> None:
        p = e.position()
        emit(
            event="click",
            widget=self.objectName(),
            x=p.x(),
            y=p.y(),
            button=e.button().name.decode() if isinstance(e.button().name, bytes) else str(e.button().name),
        )
        super().mousePressEvent(e)


class Quadrants(QWidget):
    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        w, h = self.width(), self.height()
        for i, c in enumerate(COLORS):
            p.fillRect(
                (i % 2) * w // 2,
                (i // 2) * h // 2,
                w - w // 2 if i % 2 else w // 2,
                h - h // 2 if i // 2 else h // 2,
                QColor(*c),
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--title", default="click-target")
    ap.add_argument("--pos", default="0,0", help="window position x,y (logical pixels)")
    ap.add_argument("--size", default="400,300", help="window size w,h (logical pixels)")
    ap.add_argument("--colors", action="store_true")
    args = ap.parse_args()
    app = QApplication(sys.argv[:1])
    x, y = (int(v) for v in args.pos.split(","))
    w, h = (int(v) for v in args.size.split(","))
    if args.colors:
        win = Quadrants()
    else:
        win = QWidget()
        grid = QGridLayout()
        for i in range(12):
            b = Target(f"b{i}")
            b.setObjectName(f"b{i}")
            b.setMinimumHeight(30)
            grid.addWidget(b, i // 4, i % 4)
        edit = QLineEdit()
        edit.setObjectName("edit")
        edit.returnPressed.connect(lambda: emit(event="text", text=edit.text()))
        outer = QVBoxLayout(win)
        outer.addLayout(grid)
        outer.addWidget(edit)
    win.setWindowTitle(args.title)
    win.setGeometry(x, y, w, h)
    win.show()

    def ready() -> None:
        win.activateWindow()
        widgets = {
            c.objectName(): [*c.mapTo(win, c.rect().topLeft()).toTuple(), c.width(), c.height()]
            for c in win.findChildren(QWidget)
            if c.objectName()
        }
        if not args.colors:
            win.findChild(QLineEdit).setFocus()
        emit(event="ready", dpr=win.devicePixelRatioF(), widgets=widgets, size=[win.width(), win.height()])

    QTimer.singleShot(300, ready)
    app.exec()


if __name__ == "__main__":
    main()
