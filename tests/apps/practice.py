"""What the workflow practice apps share: the perturbation options, colour themes, the "ready"
line a scripted demonstrator reads widget positions from, and the result file a benchmark reads
back to judge whether the task was done.

Every practice app takes:
  --title T          window title (the agent finds the window by it)
  --pos X,Y          window position, logical pixels
  --size W,H         window size, logical pixels
  --theme NAME       light | dark | sepia | blue (colours of everything)
  --order SEED       shuffle the order of the items (0 = the natural order)
  --data TEXT        the instance's data (what a person would read off the screen)
  --result PATH      JSON written when the task is finished (submit / OK / save)

and prints one JSON line once shown:
  {"event": "ready", "widgets": {name: [x, y, w, h]}, "size": [w, h], "frame": [x, y]}
with widget rectangles relative to the window's client area (logical pixels); a check box's label text
also as "NAME.text".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QCheckBox, QStyle, QStyleOptionButton, QWidget

THEMES = {  # window, text, button, button text, accent
    "light": ("#f4f4f4", "#111111", "#e0e0e0", "#111111", "#2a6fdb"),
    "dark": ("#202124", "#eeeeee", "#3c4043", "#f1f3f4", "#8ab4f8"),
    "sepia": ("#f4ecd8", "#3b2f1e", "#e3d3b0", "#3b2f1e", "#a0522d"),
    "blue": ("#dbe8f7", "#0b2545", "#a9c6ea", "#0b2545", "#d1495b"),
}


def parse_args(description: str, title: str, size: str, data: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--title", default=title)
    ap.add_argument("--pos", default="40,40")
    ap.add_argument("--size", default=size)
    ap.add_argument("--theme", default="light", choices=sorted(THEMES))
    ap.add_argument("--order", type=int, default=0)
    ap.add_argument("--data", default=data)
    ap.add_argument("--result", default=None)
    return ap.parse_args()


def shuffled(items: list, seed: int) -> list:
    items = list(items)
    if seed:
        random.Random(seed).shuffle(items)
    return items


def stylesheet(theme: str, font_px: int = 13) -> str:
    window, text, button, button_text, accent = THEMES[theme]
    return (
        f"QWidget {{ background: {window}; color: {text}; font-size: {font_px}px; }}"
        f"QPushButton {{ background: {button}; color: {button_text}; border: 1px solid {text};"
        f" border-radius: 3px; padding: 3px; }}"
        f"QPushButton:pressed {{ background: {accent}; }}"
        f"QLineEdit, QPlainTextEdit {{ background: {button}; border: 1px solid {text}; }}"
        f"QCheckBox::indicator {{ width: 14px; height: 14px; border: 1px solid {text}; background: {button}; }}"
        f"QCheckBox::indicator:checked {{ background: {accent}; }}"
    )


def emit(**msg) -> None:
    print(json.dumps(msg), flush=True)


def write_result(path: str | None, **result) -> None:
    """The app's verdict material, written atomically (a reader never sees half a file)."""
    emit(event="result", **result)
    if path:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(result, f)
        os.replace(tmp, path)


def show(app: QApplication, win: QWidget, args: argparse.Namespace, focus: QWidget | None = None) -> int:
    """Place the window as asked, announce the widgets' rectangles once it is up, run the app."""
    x, y = (int(v) for v in args.pos.split(","))
    w, h = (int(v) for v in args.size.split(","))
    win.setWindowTitle(args.title)
    win.setStyleSheet(stylesheet(args.theme))
    win.setGeometry(x, y, w, h)
    win.show()

    def ready() -> None:
        win.activateWindow()
        if focus is not None:
            focus.setFocus()
        widgets = {
            c.objectName(): [*c.mapTo(win, c.rect().topLeft()).toTuple(), c.width(), c.height()]
            for c in win.findChildren(QWidget)
            if c.objectName() and c.isVisible()
        }
        for c in win.findChildren(QCheckBox):  # where a check box's label text is, as "NAME.text"
            opt = QStyleOptionButton()
            c.initStyleOption(opt)
            r = c.style().subElementRect(QStyle.SubElement.SE_CheckBoxContents, opt, c)
            widgets[c.objectName() + ".text"] = [*c.mapTo(win, r.topLeft()).toTuple(), r.width(), r.height()]
        emit(event="ready", widgets=widgets, size=[win.width(), win.height()], frame=[win.x(), win.y()])

    QTimer.singleShot(300, ready)
    return app.exec()


def application() -> QApplication:
    return QApplication(sys.argv[:1])
