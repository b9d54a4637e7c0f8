"""Practice app (workflows): a keypad. The repetitive task: enter the code shown at the top with
the on-screen digit buttons, then press OK. Perturbable: position, size, theme, the layout of the
digits (a scrambled keypad), the code itself (the data comes from the screen).

    python tests/apps/keypad.py [--order 5] [--data 2580] [--result out.json]

OK writes {"entered": "...", "code": DATA}; done right when entered == code.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from practice import application, parse_args, show, shuffled, write_result  # noqa: E402
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget  # noqa: E402


def main() -> int:
    args = parse_args(__doc__, "Keypad", "200,262", "2580")
    app = application()
    win = QWidget()
    box = QVBoxLayout(win)
    box.addWidget(QLabel(f"Code: {args.data}"))
    shown = QLabel("")
    shown.setObjectName("display")
    shown.setMinimumHeight(24)
    shown.setStyleSheet("font-size: 18px; font-weight: bold;")
    box.addWidget(shown)
    grid = QGridLayout()
    keys = shuffled(list("1234567890"), args.order) + ["C", "OK"]
    layout = keys[:9] + ["C", keys[9], "OK"]
    for i, label in enumerate(layout):
        b = QPushButton(label)
        b.setObjectName(f"key-{label}")
        b.setMinimumHeight(32)
        grid.addWidget(b, i // 3, i % 3)
        if label == "C":
            b.clicked.connect(lambda: shown.setText(""))
        elif label == "OK":
            b.clicked.connect(lambda: (write_result(args.result, entered=shown.text(), code=args.data),
                                       status.setText("Sent")))  # fmt: skip
        else:
            b.clicked.connect(lambda _=False, d=label: shown.setText(shown.text() + d))
    box.addLayout(grid)
    status = QLabel("")
    box.addWidget(status)
    return show(app, win, args)


if __name__ == "__main__":
    sys.exit(main())
