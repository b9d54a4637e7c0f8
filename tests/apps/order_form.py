"""Practice app (workflows): an order form. The repetitive task: tick "Express" and press Submit.
Perturbable: position, size, theme, the order of the options, the order number shown.

    python tests/apps/order_form.py [--order 3] [--theme dark] [--data 4711] [--result out.json]

Submit writes {"checked": [...], "order_no": DATA}; done right when checked == ["Express"].
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from practice import application, parse_args, show, shuffled, write_result  # noqa: E402
from PySide6.QtWidgets import QCheckBox, QLabel, QPushButton, QVBoxLayout, QWidget  # noqa: E402

OPTIONS = ["Gift wrap", "Express", "Insurance", "Receipt"]
TASK = {"checked": ["Express"]}


def main() -> int:
    args = parse_args(__doc__, "Order form", "200,262", "4711")
    app = application()
    win = QWidget()
    box = QVBoxLayout(win)
    box.addWidget(QLabel(f"Order #{args.data}"))
    checks = []
    for name in shuffled(OPTIONS, args.order):
        c = QCheckBox(name)
        c.setObjectName(name)
        checks.append(c)
        box.addWidget(c)
    box.addStretch(1)
    submit = QPushButton("Submit")
    submit.setObjectName("Submit")
    box.addWidget(submit)
    submit.clicked.connect(
        lambda: write_result(
            args.result, checked=sorted(c.text() for c in checks if c.isChecked()), order_no=args.data
        )  # fmt: skip
    )
    return show(app, win, args)


if __name__ == "__main__":
    sys.exit(main())
