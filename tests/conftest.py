"""Shared fixtures: private Xvfb displays and the practice apps, started for real and cleaned up
by process id."""

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from emulator.display import VirtualDisplay
from emulator.schema import Rect

ROOT = Path(__file__).resolve().parents[1]
APPS = ROOT / "tests" / "apps"
EMULATOR = [sys.executable, "-m", "emulator.cli"]


@pytest.fixture
def display():
    with VirtualDisplay(1280, 800) as d:
        yield d


@pytest.fixture
def hidpi_display():
    with VirtualDisplay(2560, 1600, dpi=192) as d:
        yield d


@pytest.fixture
def dual_display():
    """Two 1280x800 monitors side by side on one 2560x800 screen (RandR monitors)."""
    with VirtualDisplay(2560, 800, monitors=[Rect(0, 0, 1280, 800), Rect(1280, 0, 1280, 800)]) as d:
        yield d


class App:
    """A practice app on a display; its JSON lines are read with next_event()."""

    def __init__(self, display, script: str, *args: str):
        env = {**display.env(), "QT_QPA_PLATFORM": "xcb"}
        env.pop("QT_SCALE_FACTOR", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(APPS / script), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self.next_event(timeout=20)
        assert self.ready["event"] == "ready", self.ready

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(json.loads(line))
        self._lines.put(None)

    def next_event(self, timeout: float = 5.0) -> dict:
        try:
            event = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("the app reported nothing") from None
        if event is None:
            raise EOFError("the app exited")
        return event

    def no_event(self, timeout: float = 0.3) -> bool:
        """True when nothing is reported for `timeout`; an event that does arrive stays first."""
        try:
            event = self._lines.get(timeout=timeout)
        except queue.Empty:
            return True
        with self._lines.not_empty:  # the queue's own lock: put it back in front
            self._lines.queue.appendleft(event)
            self._lines.not_empty.notify()
        return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def start_app():
    apps = []

    def start(display, script="click_target.py", *args):
        app = App(display, script, *args)
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.close()


def ctrl_c_works() -> None:
    """Popen preexec_fn: a child that is sent SIGINT gets Python's KeyboardInterrupt even when this
    test run was started in the background (`make test &` starts with SIGINT ignored, and children
    inherit that)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*EMULATOR, *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
