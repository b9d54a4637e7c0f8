"""The workflow practice ground: the three practice apps (tests/apps), how to perturb an instance,
a scripted demonstrator that does each task with real X input at a person's pace, and the judge
that reads the app's result file. Used by `bench/workflows.py` and the workflow tests.

    with PracticeApp.start(display, "keypad", Instance.random("keypad", rng)) as app:
        demonstrate(app, driver)                 # a person-paced demonstration
        app.wait_result(2.0); app.success        # what the app wrote, judged
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from emulator.errors import EmulatorError
from emulator.input import InputDriver
from emulator.schema import Action, Kind, Rect, text_to_actions
from emulator.screen import Screen

ROOT = Path(__file__).resolve().parents[1]
APPS_DIR = ROOT / "tests" / "apps"
APPS = ("order_form", "keypad", "notes")
TITLES = {"order_form": "Order form", "keypad": "Keypad", "notes": "Notes"}
THEMES = ("light", "dark", "sepia", "blue")
NOTES = ("Call Anna", "Buy milk", "Pay rent", "Email Joe", "Fix bike", "Book room", "Send report")
PERSON_PAUSE = (0.35, 0.7)  # seconds a person takes between two actions (KLM: point ~1.1 s, key ~0.2 s)


@dataclass
class Instance:
    """One perturbed copy of a practice app: where its window is, how big, its colours, the order
    of its items and its data."""

    app: str
    x: int
    y: int
    width: int
    height: int
    theme: str
    order: int
    data: str

    @classmethod
    def natural(cls, app: str) -> Instance:
        return cls(app, 40, 40, 200, 262, "light", 0, {"order_form": "4711", "keypad": "2580",
                                                        "notes": "Call Anna"}[app])  # fmt: skip

    @classmethod
    def random(cls, app: str, rng: random.Random, screen: tuple[int, int] = (800, 600)) -> Instance:
        width = rng.randrange(180, 241)
        height = int(width * rng.uniform(1.2, 1.4))
        data = {
            "order_form": str(rng.randrange(1000, 10000)),
            "keypad": "".join(rng.choice("0123456789") for _ in range(4)),
            "notes": rng.choice(NOTES),
        }[app]
        return cls(app, rng.randrange(0, screen[0] - width), rng.randrange(0, screen[1] - height), width, height,
                   rng.choice(THEMES), rng.randrange(1, 10**6), data)  # fmt: skip


class PracticeApp:
    """A running practice app on a display; reads its ready line and, later, its result file."""

    def __init__(self, display: str, inst: Instance, workdir: Path):
        self.inst, self.display = inst, display
        self.result_path = workdir / f"result-{os.getpid()}-{time.monotonic_ns()}.json"
        self.title = f"{TITLES[inst.app]} {time.monotonic_ns() % 10**6}"  # unique: found by title
        cmd = [sys.executable, str(APPS_DIR / f"{inst.app}.py"), "--title", self.title,
               "--pos", f"{inst.x},{inst.y}", "--size", f"{inst.width},{inst.height}", "--theme", inst.theme,
               "--order", str(inst.order), "--data", inst.data, "--result", str(self.result_path)]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env={**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"},
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise EmulatorError(f"practice app {inst.app} did not start on {display}")
        self.ready = json.loads(line)
        self.widgets = {k: Rect(*v) for k, v in self.ready["widgets"].items()}

    @classmethod
    def start(cls, display: str, inst: Instance, workdir: str | Path) -> PracticeApp:
        return cls(display, inst, Path(workdir))

    def window_rect(self, screen: Screen) -> Rect:
        return screen.window_rect(title=self.title)

    def result(self) -> dict | None:
        try:
            return json.loads(self.result_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def wait_result(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while (r := self.result()) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return r

    @property
    def success(self) -> bool:
        return judge(self.inst, self.result())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.result_path.unlink(missing_ok=True)

    def __enter__(self) -> PracticeApp:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def judge(inst: Instance, result: dict | None) -> bool:
    """Was the task done right on this instance?"""
    if result is None:
        return False
    if inst.app == "order_form":
        return result.get("checked") == ["Express"]
    if inst.app == "keypad":
        return result.get("entered") == inst.data
    return result.get("text") == inst.data + "\ndone"


def plan(app: PracticeApp) -> list[Action]:
    """What a person does, in window-normalized coordinates: the task on this instance."""
    size = app.ready["size"]

    def click(widget: str, fx: float = 0.5, fy: float = 0.5) -> Action:
        r = app.widgets[widget]
        return Action(Kind.CLICK, (r.x + r.width * fx) / size[0], (r.y + r.height * fy) / size[1])

    if app.inst.app == "order_form":  # on the label's first letter: the word tells the boxes apart
        text = app.widgets["Express.text"]
        return [
            Action(Kind.CLICK, (text.x + 4) / size[0], (text.y + text.height / 2) / size[1]),
            click("Submit"),
        ]
    if app.inst.app == "keypad":
        return [click(f"key-{d}") for d in app.inst.data] + [click("key-OK")]
    # below the note's last line: the text cursor goes to its end
    return [
        click("editor", 0.8, 0.85),
        Action.press("enter"),
        *text_to_actions("done"),
        Action.press("s", ("ctrl",)),
    ]


def demonstrate(app: PracticeApp, driver: InputDriver, rng: random.Random | None = None) -> float:
    """Do the task with real X input, pausing like a person between actions. Returns the seconds
    from the first action to the last."""
    rng = rng or random.Random(0)
    start = time.monotonic()
    for i, action in enumerate(plan(app)):
        if i:
            time.sleep(rng.uniform(*PERSON_PAUSE))
        driver.execute(action)
    return time.monotonic() - start


def instance_json(inst: Instance) -> dict:
    return asdict(inst)
