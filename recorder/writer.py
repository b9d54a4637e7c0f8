"""Writing a recording folder (format in recorder/dataset.py): private folders, `meta/info.json`,
append-only JSONL journals for frames and events while recording, and at the end the parquet
tables (frames, events, derived actions).

    writer = DatasetWriter("demos/d1", info={...})
    writer.frame(index, t, pts); writer.event({...}); writer.flush()     # journals, crash-safe
    writer.finish(status="complete", extra={...})                        # -> parquet + info

If finishing fails (a full disk), the journals stay and the reader still reads them.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from recorder.actions import actions_from_labels, derive_actions, done_row
from recorder.dataset import (
    ACTION_SCHEMA,
    ACTIONS,
    EVENT_SCHEMA,
    EVENTS,
    EVENTS_JOURNAL,
    FORMAT_VERSION,
    FRAME_SCHEMA,
    FRAMES,
    FRAMES_JOURNAL,
    INFO,
    VIDEO,
    private_dir,
    private_file,
    touch_private,
    write_json,
)  # fmt: skip


class DatasetWriter:
    def __init__(self, root: str | Path, info: dict):
        self.root = private_dir(root)
        private_dir(self.root / "meta")
        private_dir(self.root / "videos")
        if (self.root / INFO).exists():
            raise FileExistsError(f"{self.root} already holds a recording; choose a new folder")
        self.info = {"format_version": FORMAT_VERSION, "status": "recording", **info}
        write_json(self.root / INFO, self.info)
        touch_private(self.root / VIDEO)
        self._frames = private_file(self.root / FRAMES_JOURNAL, "a")
        self._events = private_file(self.root / EVENTS_JOURNAL, "a")
        self._lock = threading.Lock()
        self.frames_written = self.events_written = 0

    @property
    def video_path(self) -> str:
        return str(self.root / VIDEO)

    def frame(self, index: int, t: float, pts: int) -> None:
        with self._lock:
            self._frames.write(json.dumps({"index": index, "t": round(t, 6), "pts": pts}) + "\n")
            self.frames_written += 1

    def event(self, event: dict) -> None:
        with self._lock:
            self._events.write(json.dumps(event, separators=(",", ":")) + "\n")
            self.events_written += 1

    def flush(self) -> None:
        """Hand everything written so far to the OS (survives a kill -9 of this process)."""
        with self._lock:
            for f in (self._frames, self._events):
                if not f.closed:
                    f.flush()

    def update_info(self, **fields) -> None:
        self.info.update(fields)
        write_json(self.root / INFO, self.info)

    def finish(self, labels: list | None = None, **fields) -> dict:
        """Close the journals, write the parquet tables and the final info. Returns the info.
        With `labels` [(t, Action)], the actions table holds those instead of actions derived
        from the events (info "actions_from": "labels")."""
        with self._lock:
            for f in (self._frames, self._events):
                f.close()
        frames = read_journal(self.root / FRAMES_JOURNAL)
        events = read_journal(self.root / EVENTS_JOURNAL)
        events.sort(key=lambda e: e["t"])  # two listener threads append; their clocks agree
        if labels is None:
            actions = derive_actions(events, frames, self.info)
        else:
            actions = actions_from_labels(labels, frames)
        if self.info.get("ends_task") and frames:  # a whole demonstration: its end is "done"
            actions.append(done_row(len(actions), frames[-1]))
        self.info["actions_from"] = "events" if labels is None else "labels"
        write_table(self.root / FRAMES, frames, FRAME_SCHEMA)
        write_table(self.root / EVENTS, events, EVENT_SCHEMA)
        write_table(self.root / ACTIONS, actions, ACTION_SCHEMA)
        self.info.update(fields, frames=len(frames), events=len(events), actions=len(actions))
        self.info["status"] = fields.get("status", "complete")
        write_json(self.root / INFO, self.info)
        for journal in (FRAMES_JOURNAL, EVENTS_JOURNAL):
            (self.root / journal).unlink()
        return self.info


def read_journal(path: str | Path) -> list[dict]:
    """The records of a JSONL journal; a torn last line (a crash mid-write) is ignored."""
    rows = []
    with open(path, "rb") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
    return rows


def write_table(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    """Write rows as a 0600 parquet file, atomically."""
    columns = {name: [r.get(name) for r in rows] for name in schema.names}
    table = pa.Table.from_pydict(columns, schema=schema)
    tmp = Path(f"{path}.tmp")
    touch_private(tmp)
    pq.write_table(table, tmp)
    os.replace(tmp, path)
