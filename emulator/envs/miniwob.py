"""MiniWoB++ in real Chromium on a private Xvfb, played the way the product plays any app: the
agent sees only the captured pixels of the 160x210 task area (pointer drawn in) and acts only
through emulator/input.py. Selenium is used to reset episodes, read rewards and instructions, and
give the scripted experts their privileged view of the DOM.

    with MiniWoBWorld() as world:                 # Xvfb + Chromium + calibration, ~2 s
        world.reset("click-test", seed=7)         # ~0.1 s
        frame = world.observe()                   # (210, 160, 4) BGRA with the pointer drawn in
        world.driver.execute(Action.click(0.5, 0.6))
        world.status()                            # Status(done, reward, raw_reward, reason)

Chromium runs with --no-sandbox (root), device scale factor 1, no background networking (there
is no internet here), and without the automation info bar. `calibrate` finds the task area on
the screen exactly with a real pointer event: the page reports where the X pointer landed, so
any window decoration or info bar offset is measured, not assumed.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import time
from dataclasses import dataclass

from emulator.damage import DamageWatch
from emulator.display import VirtualDisplay
from emulator.errors import EmulatorError
from emulator.input import InputDriver
from emulator.schema import Action, Layout, Rect
from emulator.screen import Screen

TASK_W, TASK_H = 160, 210
WINDOW_W, WINDOW_H = 500, 340
SUITE = (
    "click-test", "click-test-2", "click-button", "click-link", "click-dialog", "click-dialog-2",
    "click-tab", "click-color", "click-shape", "click-widget", "click-checkboxes", "click-option",
    "click-collapsible", "focus-text", "focus-text-2", "enter-text", "enter-password", "login-user",
    "drag-box", "grid-coordinate",
)  # fmt: skip
# Median seconds of successful human demonstrations per task, first to last recorded state
# (stanfordnlp/miniwob-plusplus-demos, via ../shared/anchors.md). drag-box has no human demos:
# the Keystroke-Level Model estimate (point, press, point, release) stands in.
HUMAN_MEDIAN_S = {
    "click-test": 0.82, "click-test-2": 1.54, "click-button": 1.60, "click-link": 2.20,
    "click-dialog": 1.42, "click-dialog-2": 2.10, "click-tab": 1.27, "click-color": 1.30,
    "click-shape": 2.48, "click-widget": 2.39, "click-checkboxes": 4.83, "click-option": 2.50,
    "click-collapsible": 2.25, "focus-text": 0.88, "focus-text-2": 1.37, "enter-text": 4.09,
    "enter-password": 7.02, "login-user": 7.32, "drag-box": 3.5, "grid-coordinate": 3.47,
}  # fmt: skip
HTML_DIR = pathlib.Path(__import__("miniwob").__file__).parent / "html" / "miniwob"
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
CHROME_FLAGS = (
    "--no-sandbox", f"--window-size={WINDOW_W},{WINDOW_H}", "--window-position=0,0",
    "--force-device-scale-factor=1", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-extensions", "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
    "--disable-features=Translate,PasswordManagerOnboarding", "--password-store=basic",
)  # fmt: skip


@dataclass
class Status:
    done: bool
    reward: float  # time-scaled, as MiniWoB defines it
    raw_reward: float  # 1 success, -1 failure (or the partial credit some tasks give)
    reason: str | None = None

    @property
    def success(self) -> bool:
        return self.done and self.raw_reward > 0


def _find(candidates: tuple[str, ...], env: str, what: str) -> str:
    for path in (os.environ.get(env), *candidates):
        if path and shutil.which(path):
            return path
    raise EmulatorError(f"{what} not found (set {env}, or run `make setup`)")


def check_browser() -> None:
    """Fail early, with one clear line, when Chromium or chromedriver is missing."""
    _find(CHROMIUM, "MINIWOB_CHROME_BINARY", "Chromium")
    _find(CHROMEDRIVER, "MINIWOB_CHROMEDRIVER", "chromedriver")
    if not shutil.which("Xvfb"):
        raise EmulatorError("Xvfb is not installed: run `make setup`")


class MiniWoBWorld:
    """One Xvfb display with one Chromium showing MiniWoB++ tasks."""

    def __init__(self, display_size: tuple[int, int] = (WINDOW_W + 60, WINDOW_H + 60)):
        self.display = VirtualDisplay(*display_size).start()
        self._profile = tempfile.mkdtemp(prefix="miniwob-chrome-")
        try:
            self.web = self._start_chromium()
            self.task: str | None = None
            self.episode_fields: dict = {}
            self.episode_memo: dict = {}  # an expert's notes within one episode
            self.screen = Screen(self.display.name)
            self._home = InputDriver(self.display.name, self.screen.layout().viewport())  # calibration only
            self._main_window = self.web.current_window_handle
            self.load("click-test")
            self.area = self.calibrate()
            layout: Layout = self.screen.layout()
            self.viewport = layout.viewport(self.area)
            self.driver = InputDriver(self.display.name, self.viewport)
            self.damage = DamageWatch(self.display.name, self.area)
        except Exception:
            self.close()
            raise
        self.episode_start = time.monotonic()

    # -- browser ------------------------------------------------------------------------------
    def _start_chromium(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = _find(CHROMIUM, "MINIWOB_CHROME_BINARY", "Chromium")
        for flag in (*CHROME_FLAGS, f"--user-data-dir={self._profile}", f"--app={self._url('click-test')}"):
            options.add_argument(flag)
        options.add_experimental_option("excludeSwitches", ["enable-automation"])
        options.add_experimental_option(
            "prefs", {"credentials_enable_service": False, "profile.password_manager_enabled": False}
        )
        service = Service(
            executable_path=_find(CHROMEDRIVER, "MINIWOB_CHROMEDRIVER", "chromedriver"),
            env={**os.environ, "DISPLAY": self.display.name},
        )
        try:
            web = webdriver.Chrome(service=service, options=options)
        except Exception as e:
            raise EmulatorError(f"Chromium did not start: {str(e).splitlines()[0][:200]}") from None
        web.implicitly_wait(0)
        return web

    @staticmethod
    def _url(task: str) -> str:
        path = HTML_DIR / f"{task}.html"
        if not path.exists():
            raise EmulatorError(f"unknown MiniWoB task {task!r}")
        return path.as_uri()

    def js(self, script: str, *args):
        return self.web.execute_script(script, *args)

    def left_task_page(self) -> bool:
        """Whether the agent's keys opened a window over the task page or took it elsewhere."""
        return len(self.web.window_handles) > 1 or (
            self.task is not None and self.web.current_url != self._url(self.task)
        )

    def _close_strays(self) -> None:
        """Close what an agent's keys opened over the task page (ctrl+h: a History window, ctrl+n,
        ctrl+t ...) and bring back the task page if it navigated away (alt+left), so one wild key
        cannot spoil every later episode of this worker (it did: a model's ctrl+h covered the
        page, and 142 DAgger episodes recorded Chromium's History)."""
        main = self._main_window
        for handle in self.web.window_handles:
            if handle != main:
                self.web.switch_to.window(handle)
                self.web.close()
        self.web.switch_to.window(main)
        if self.task is not None and self.web.current_url != self._url(self.task):
            self.task = None  # load it again

    def load(self, task: str) -> None:
        if task != self.task:
            self.web.get(self._url(task))
            for _ in range(100):
                if self.js(
                    "return typeof core !== 'undefined' && !!document.getElementById('sync-task-cover');"
                ):
                    break
                time.sleep(0.02)
            else:
                raise EmulatorError(f"MiniWoB task {task} did not load")
            self.task = task

    # -- calibration ------------------------------------------------------------------------------
    def calibrate(self) -> Rect:
        """The task area (#wrap) on the screen, from where a real X pointer move lands in the page."""
        self.js(
            "window.__cal = null; document.addEventListener('mousemove',"
            " e => { window.__cal = [e.clientX, e.clientY]; });"
        )
        sx, sy = 300, 200  # on the page, right of the task area
        layout = self.screen.layout()
        for attempt in range(50):
            x, y = sx + attempt % 5, sy
            self._home.execute(Action.move(*layout.viewport().to_normalized(x, y)))
            time.sleep(0.02)
            cal = self.js("return window.__cal;")
            if cal and len(cal) == 2:
                ox, oy = x - round(cal[0]), y - round(cal[1])
                break
        else:
            raise EmulatorError("calibration failed: the page never saw the X pointer")
        left, top, w, h = self.js(
            "const r = document.getElementById('wrap').getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height];"
        )
        if (round(w), round(h)) != (TASK_W, TASK_H):
            raise EmulatorError(f"MiniWoB task area is {w}x{h}, expected {TASK_W}x{TASK_H}")
        return Rect(ox + round(left), oy + round(top), TASK_W, TASK_H)

    # -- episodes -------------------------------------------------------------------------------
    def reset(self, task: str, seed: int | str) -> str:
        """Start an episode of `task` with `seed` (same seed, same instance); returns the instruction."""
        self.driver.release_all()
        self._close_strays()
        self.load(task)
        self.js("core.endEpisode(0);")
        self.js(f"Math.seedrandom({seed!r}); core.setDataMode('train'); core.startEpisodeReal();")
        for _ in range(100):
            if self.js("return WOB_TASK_READY;"):
                break
            time.sleep(0.01)
        else:
            raise EmulatorError(f"{task}: the episode did not become ready")
        # A field focused in the last episode stays the active element of the new one's page
        # without taking keys: every episode starts with nothing focused, whatever came before.
        self.js("if (document.activeElement) document.activeElement.blur();")
        self.settle()
        self.episode_memo = {}
        self.episode_start = time.monotonic()
        return self.utterance()

    def settle(self, quiet: float = 0.03, timeout: float = 1.0) -> bool:
        """Wait until the task area has not changed for `quiet` seconds (Chromium paints a new
        episode a few ms after the DOM is ready)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.damage.reset()
            if not self.damage.wait(quiet):
                return True
        return False

    def utterance(self) -> str:
        u = self.js("return core.getUtterance();")
        return u["utterance"] if isinstance(u, dict) else u

    def fields(self) -> dict[str, str]:
        """The instruction's fields (e.g. {'target': 'OK'}), as MiniWoB's field extractors read them."""
        from miniwob.fields import get_field_extractor

        u = self.js("return core.getUtterance();")
        if isinstance(u, dict):
            return dict(u["fields"])
        return dict(get_field_extractor(self.task)(u))

    def dom(self):
        """The page's DOM as miniwob DOMElements (privileged: experts only)."""
        from miniwob.dom import DOMElement

        return DOMElement(self.js("return core.getDOMInfo();"))

    def status(self) -> Status:
        s = self.js("return [WOB_DONE_GLOBAL, WOB_REWARD_GLOBAL, WOB_RAW_REWARD_GLOBAL, WOB_REWARD_REASON];")
        return Status(bool(s[0]), float(s[1] or 0), float(s[2] or 0), s[3])

    def elapsed(self) -> float:
        return time.monotonic() - self.episode_start

    def observe(self, cursor: bool = True):
        """The task area as the agent sees it: (210, 160, 4) BGRA, pointer drawn in."""
        return self.screen.grab(self.area, cursor=cursor)

    def page_screenshot(self):
        """Chromium's own screenshot of the task area (RGB), to check the calibration."""
        import io

        import numpy as np
        from PIL import Image

        img = Image.open(io.BytesIO(self.web.get_screenshot_as_png())).convert("RGB")
        left, top = self.js(
            "const r = document.getElementById('wrap').getBoundingClientRect(); return [r.left, r.top];"
        )
        return np.asarray(img)[round(top) : round(top) + TASK_H, round(left) : round(left) + TASK_W]

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop Chromium and Xvfb. Safe to call twice."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        for name in ("driver", "_home", "damage"):
            if hasattr(self, name):
                getattr(self, name).close()
        if getattr(self, "web", None) is not None:
            try:
                self.web.quit()
            except Exception:
                pass
            self.web = None
        if hasattr(self, "screen"):
            self.screen.close()
        self.display.stop()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> MiniWoBWorld:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
