"""Corrections become training data: while the agent runs under supervision, the product's recorder
records its viewport; every replaced or rejected action and every action the person makes while
they have taken over is a label (time, Action) of that recording, and `Recorder.finish(labels=...)`
writes them as the recording's actions (`actions_from: labels`), each aligned to the last frame
captured before it: the frame the agent (or the person) saw. That is the DAgger mechanism of
emulator/envs/episodes.py, so models/data.py reads corrections unchanged:

    session = CorrectionSession("data/app/corrections", ":1", viewport, task="click-test")
    t = session.frame_time()                  # before acting: a recorded frame shows this screen
    session.add(t, Action.click(0.4, 0.6), proposed=agent_action, how="replaced")
    session.takeover_started(time.monotonic()) ... session.takeover_ended(time.monotonic())
    session.finish()                          # -> the recording's folder, or None (nothing to learn)

    emulator train data/suite data/app/corrections --init models/default.onnx --out tuned.onnx

Takeover actions are derived from the person's recorded input events inside each takeover segment
with the recorder's own rules (recorder/actions.py: clicks, drags, scrolls, keys with modifiers).
Whose event is whose is decided exactly, not by timing: `AgentInjections` keeps its own log of what
the agent's driver sends, and each event is matched against it as the recorder writes it (the
agent's last click may land a few ms before the person's first move). A session without a single
correction is deleted. Folders are 0700 and files 0600 (the recorder's own).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import threading
import time
from pathlib import Path

from emulator.input import BUTTON_NUMBERS, InjectionLog, InputDriver
from emulator.schema import Action, Viewport
from recorder.actions import derive_actions
from recorder.dataset import (
    BUTTON_DOWN,
    BUTTON_UP,
    EVENTS_JOURNAL,
    INFO,
    KEY_DOWN,
    KEY_UP,
    LABEL_CONTEXT,
    MOVE,
    SCROLL,
    private_dir,
    read_json,
)
from recorder.record import Recorder, RecordOptions
from recorder.writer import read_journal

FPS = 30.0
SMALL_VIEWPORT = 640 * 640  # up to this many pixels: record lossless 4:4:4 (training frames exact)
TAKEOVER_MARGIN_S = 0.1  # the recorder may stamp the person's first event before the monitor does
_names = itertools.count()


class AgentInjections:
    """A second log of every event the agent's driver sends (the driver's own `injected` log is
    consumed by the takeover monitor), to tell the agent's recorded events from the person's."""

    def __init__(self, driver: InputDriver):
        self.log = InjectionLog(horizon=2.0)
        monitor_log, own = driver.injected, self.log

        class Both:  # what the driver adds goes to both logs; the monitor matches against its own
            def add(self, event) -> None:
                monitor_log.add(event)
                own.add(event)

            def match(self, *args, **kwargs) -> bool:
                return monitor_log.match(*args, **kwargs)

        driver.injected = Both()

    def sent(self, e: dict) -> bool:
        """Whether a recorded event (recorder/dataset.py's format) is one the agent sent."""
        kind, x, y = e["kind"], e.get("x", -1), e.get("y", -1)
        if kind == MOVE:
            return self.log.match("move", x, y)
        if kind in (BUTTON_DOWN, BUTTON_UP):
            down, number = kind == BUTTON_DOWN, BUTTON_NUMBERS.get(e.get("button"), 0)
            return self.log.match("button", x, y, detail=number, down=down) or (
                not down and self.log.match("button", -1, -1, detail=number, down=False)  # release_all
            )
        if kind == SCROLL:
            return self.log.match("scroll")
        return kind in (KEY_DOWN, KEY_UP) and self.log.match("key", down=kind == KEY_DOWN)


class CorrectionSession:
    def __init__(self, root: str | Path, display: str, viewport: Viewport, task: str = "",
                 stop_hotkey: str | None = None, extra: dict | None = None,
                 injections: AgentInjections | None = None):  # fmt: skip
        self.task = task
        self.extra = dict(extra or {})
        root = private_dir(root)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", task).strip("-") or "session"
        while True:
            self.path = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{next(_names)}"
            if not self.path.exists():
                break
        r = viewport.rect
        lossless = r.width * r.height <= SMALL_VIEWPORT
        options = RecordOptions(
            fps=FPS, task=task, crf=0 if lossless else 23, pix_fmt="yuv444p" if lossless else "yuv420p",
            stop_hotkey=stop_hotkey, pause_hotkey=None,  # the stop hotkey never reaches the data
        )  # fmt: skip
        self.recorder = Recorder(str(self.path), display, viewport, options)
        if injections is not None:  # mark the agent's events in the journal as they are written
            write = self.recorder.writer.event
            self.recorder.writer.event = lambda e: write({**e, "agent": True} if injections.sent(e) else e)
        self.recorder.start()
        self.recorder.wait_for_frame(time.monotonic())
        self._lock = threading.Lock()
        self.labels: list[tuple[float, Action]] = []  # replaced and rejected actions
        self.log: list[dict] = []  # what the person did about each proposal, for meta/info.json
        self.segments: list[list[float | None]] = []  # takeover [start, end] (monotonic)
        self._taken: list[tuple[float, Action]] = []  # actions of the closed takeover segments
        self.recount_due = False  # a takeover segment closed since the last recount
        self._finished = False

    # -- approve mode -------------------------------------------------------------------------------
    def frame_time(self) -> float:
        """A label time for the screen as it is now: waits (at most a frame period or two) until
        the recorder holds a frame grabbed after this call, so the label aligns to that frame."""
        self.recorder.wait_for_frame(time.monotonic())
        return max(time.monotonic(), self.recorder.last_capture + 2e-6)

    def add(self, t: float, action: Action, proposed: Action | None = None, how: str = "replaced") -> None:
        with self._lock:
            self.labels.append((t, action))
            self.log.append({
                "t": round(t - self.recorder.t0, 6), "how": how, "label": action.to_json(),
                "proposed": proposed.to_json() if proposed is not None else None,
            })  # fmt: skip

    # -- takeover ------------------------------------------------------------------------------------
    @property
    def in_takeover(self) -> bool:
        return bool(self.segments) and self.segments[-1][1] is None

    def takeover_started(self, t: float) -> None:
        with self._lock:
            if not self.in_takeover:
                self.segments.append([t, None])

    def takeover_ended(self, t: float) -> None:
        """Close the open segment; its actions are counted at the next `recount()`."""
        with self._lock:
            if self.in_takeover:
                self.segments[-1][1] = t
                self.recount_due = True

    def recount(self) -> int:
        """Derive the actions of every closed takeover segment from the recorded events (reads the
        events journal: call it off the window's thread). Returns `count`."""
        with self._lock:
            closed = [(s, e) for s, e in self.segments if e is not None]
            self.recount_due = False
        self._taken = self._derive(closed)
        return self.count

    @property
    def count(self) -> int:
        return len(self.labels) + len(self._taken)

    def _events(self) -> list[dict]:
        """Every input event recorded so far (the agent's marked "agent")."""
        rec = self.recorder
        if rec.events is not None:
            rec.events.flush()
        rec.writer.flush()
        journal = Path(rec.writer.root) / EVENTS_JOURNAL
        return read_journal(journal) if journal.exists() else []

    def _derive(self, segments: list[tuple[float, float]]) -> list[tuple[float, Action]]:
        if not segments:
            return []
        rec = self.recorder
        events = self._events()
        t0 = rec.t0
        spans = [(s - t0 - TAKEOVER_MARGIN_S, e - t0) for s, e in segments]
        mine = [e for e in events if not e.get("agent") and any(a <= e["t"] <= b for a, b in spans)]
        rows = derive_actions(mine, [], rec.writer.info)  # frames are aligned again when finishing
        return [(t0 + row["t"], Action.from_json(row["action"])) for row in rows]

    def _context(self, labels: list[tuple[float, Action]], keep: int = LABEL_CONTEXT) -> list[list[dict]]:
        """For each label (in time order, like the actions table): the last `keep` actions that
        really happened on the display before it, the agent's and the person's, as schema JSON.
        A model that sees its recent actions (models/spec.py history) learns from corrections
        with the history they really had, not the other corrections."""
        rec = self.recorder
        done = [
            (rec.t0 + row["t"], row["action"]) for row in derive_actions(self._events(), [], rec.writer.info)
        ]
        context = []
        for t, _ in sorted(labels, key=lambda label: label[0]):
            before = [json.loads(a) for te, a in done if te < t - 1e-4]
            context.append(before[-keep:])
        return context

    # -- the end -------------------------------------------------------------------------------------
    def finish(self, extra: dict | None = None) -> Path | None:
        """Stop recording and write the corrections as the recording's actions. Returns the folder,
        or None when there was nothing to learn (the recording is then deleted)."""
        if self._finished:
            return None
        self._finished = True
        self.takeover_ended(time.monotonic())
        self.recount()
        labels = self.labels + self._taken
        if not labels:
            self.recorder.finish()
            shutil.rmtree(self.path, ignore_errors=True)
            return None
        takeover = [{"t": round(t - self.recorder.t0, 6), "how": "takeover", "label": a.to_json()}
                    for t, a in self._taken]  # fmt: skip
        segments = [
            [round(s - self.recorder.t0, 4), round(e - self.recorder.t0, 4)] for s, e in self.segments
        ]
        self.recorder.finish(
            extra={**self.extra, **(extra or {}), "corrections": sorted(self.log + takeover, key=lambda c: c["t"]),
                   "takeover_segments": segments, "label_context": self._context(labels)},
            labels=labels,
        )  # fmt: skip
        return self.path


def saved_corrections(root: str | Path) -> int:
    """How many corrections the recordings below `root` hold (from their meta/info.json)."""
    total = 0
    for info in Path(root).rglob(INFO) if Path(root).exists() else []:
        try:
            total += int(read_json(info).get("actions") or 0)
        except Exception:
            continue  # a recording being written or a broken one: not counted
    return total
