"""Practice app: an orange square that jumps somewhere else each time it is clicked.

    python tests/apps/targets.py [--seed 0] [--size 480,360]

Prints JSON lines: {"event": "ready"} once shown, {"event": "hit", "score": n} per hit,
{"event": "miss", "x": lx, "y": ly} for a click beside the square.
"""

import argparse
import json
import random
import sys

from PySide6.QtCore import QRect, QTimer
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QApplication, QWidget

TARGET = QColor(255, 140, 0)
SIDE = 36


class Targets(QWidget):
    def __init__(self, seed: int):
        super().__init__()
        self.rng = random.Random(seed)
        self.score = 0
        self.square = QRect(0, 0, SIDE, SIDE)

    def jump(self) -> None:
        x = self.rng.randrange(0, self.width() - SIDE)
        y = self.rng.randrange(30, self.height() - SIDE)
        self.square = QRect(x, y, SIDE, SIDE)
        self.update()

    def mousePressEvent(self, e) -> None:
        p = e.position().toPoint()
        if self.square.contains(p):
            self.score += 1
            print(json.dumps({"event": "hit", "score": self.score}), flush=True)
            self.jump()
        else:
            print(json.dumps({"event": "miss", "x": p.x(), "y": p.y()}), flush=True)

    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(40, 44, 52))
        p.setPen(QColor(220, 220, 220))
        p.setFont(QFont("DejaVu Sans", 12))
        p.drawText(10, 20, f"hits: {self.score}")
        p.fillRect(self.square, TARGET)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", default="480,360")
    args = ap.parse_args()
    app = QApplication(sys.argv[:1])
    w = Targets(args.seed)
    w.setWindowTitle("targets")
    w.setGeometry(0, 0, *(int(v) for v in args.size.split(",")))
    w.show()
    QTimer.singleShot(0, w.jump)
    QTimer.singleShot(200, lambda: print(json.dumps({"event": "ready"}), flush=True))
    app.exec()


if __name__ == "__main__":
    main()
