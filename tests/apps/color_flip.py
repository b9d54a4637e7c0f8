"""Practice app: a window of one solid colour that changes to the next colour on every mouse press.
The recorder's sync test finds, frame by frame, when each click became visible.

    python tests/apps/color_flip.py [--pos 100,100] [--size 200,150] [--noise]

With --noise the window shows fresh random pixels 30 times a second (video that barely compresses).

Prints {"event": "ready"} once shown and {"event": "press", "n": k} after the k-th press repaints.
"""

import argparse
import json
import os

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication, QWidget

# RGB; distinct in every channel so a compressed frame still tells them apart.
PALETTE = [(230, 30, 30), (30, 200, 40), (40, 40, 230), (240, 220, 20), (200, 30, 200), (20, 210, 210)]


class Flip(QWidget):
    def __init__(self, noise: bool):
        super().__init__()
        self.n = 0
        self.noise = noise
        if noise:
            self.timer = QTimer(self, interval=33, timeout=self.update)
            self.timer.start()

    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        if self.noise:
            w, h = self.width(), self.height()
            self._pixels = os.urandom(w * h * 4)
            p.drawImage(0, 0, QImage(self._pixels, w, h, w * 4, QImage.Format_RGB32))
        else:
            p.fillRect(self.rect(), QColor(*PALETTE[self.n % len(PALETTE)]))

    def mousePressEvent(self, _e) -> None:
        self.n += 1
        self.repaint()
        print(json.dumps({"event": "press", "n": self.n}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pos", default="100,100")
    ap.add_argument("--size", default="200,150")
    ap.add_argument("--noise", action="store_true")
    args = ap.parse_args()
    app = QApplication([])
    w = Flip(args.noise)
    w.setWindowTitle("flip")
    w.move(*map(int, args.pos.split(",")))
    w.resize(*map(int, args.size.split(",")))
    w.show()
    QTimer.singleShot(300, lambda: print(json.dumps({"event": "ready"}), flush=True))
    app.exec()


if __name__ == "__main__":
    main()
