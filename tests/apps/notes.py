"""Practice app (workflows): a notes editor. The repetitive task: click into the note (the title
field has the focus), add a line "done" below it and save with ctrl+s. Perturbable: position,
size, theme, the note's text (the data).

    python tests/apps/notes.py [--data "Call Anna"] [--result out.json]

ctrl+s writes {"text": the whole note}; done right when text == DATA + "\\ndone".
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from practice import application, parse_args, show, write_result  # noqa: E402
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor  # noqa: E402
from PySide6.QtWidgets import QLabel, QLineEdit, QPlainTextEdit, QVBoxLayout, QWidget  # noqa: E402


def main() -> int:
    args = parse_args(__doc__, "Notes", "200,262", "Call Anna")
    app = application()
    win = QWidget()
    box = QVBoxLayout(win)
    title = QLineEdit("Today")
    title.setObjectName("title")
    box.addWidget(title)
    edit = QPlainTextEdit(args.data)
    edit.setObjectName("editor")
    edit.moveCursor(QTextCursor.MoveOperation.End)
    box.addWidget(edit)
    saved = QLabel("")
    box.addWidget(saved)

    def save() -> None:
        write_result(args.result, text=edit.toPlainText())
        saved.setText("Saved")

    QShortcut(QKeySequence("Ctrl+S"), win, activated=save)
    return show(app, win, args, focus=title)


if __name__ == "__main__":
    sys.exit(main())
