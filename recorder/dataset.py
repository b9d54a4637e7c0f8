"""The recording format (one folder per demonstration), its names, and private file helpers.

    DEMO/                      folder 0700, every file 0600
      meta/info.json           what was recorded: schema version, fps, codec, sizes, viewport, scale,
                               monitors, task, encoder fallbacks, masks, counts, status
      videos/screen.mp4        fragmented MP4 (H.264 yuv420p by default), keyframe every second
      frames.parquet           index, t (monotonic capture time, s), pts (in the video's time base)
      events.parquet           raw input events, t on the same clock as frames
      actions.parquet          semantic actions (schema JSON), each aligned to the frame the person saw
    While recording (and after a crash) frames and events live in `frames.jsonl` and
    `events.jsonl`, flushed at least every second; finishing converts them to parquet.
    The reader (recorder/reader.py) reads either form.

Event kinds (column `kind` of events): move, button_down, button_up, scroll, key_down, key_up.
Columns: t, kind, x, y (screen physical pixels), button, dx, dy (wheel clicks, +dy = down),
key (schema key name or null), char (typed character or null), raw (the X key name).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa

from emulator.errors import EmulatorError

FORMAT_VERSION = 1
INFO = "meta/info.json"
VIDEO = "videos/screen.mp4"
FRAMES, FRAMES_JOURNAL = "frames.parquet", "frames.jsonl"
EVENTS, EVENTS_JOURNAL = "events.parquet", "events.jsonl"
ACTIONS = "actions.parquet"
# A recording whose actions are labels (DAgger, the app's corrections) keeps, in info.json's
# "label_context", what was actually done before each label: this many actions (schema JSON).
LABEL_CONTEXT = 4

MOVE, BUTTON_DOWN, BUTTON_UP, SCROLL, KEY_DOWN, KEY_UP = (
    "move", "button_down", "button_up", "scroll", "key_down", "key_up",
)  # fmt: skip
EVENT_KINDS = (MOVE, BUTTON_DOWN, BUTTON_UP, SCROLL, KEY_DOWN, KEY_UP)

EVENT_SCHEMA = pa.schema(
    [("t", pa.float64()), ("kind", pa.string()), ("x", pa.int32()), ("y", pa.int32()), ("button", pa.string()),
     ("dx", pa.int32()), ("dy", pa.int32()), ("key", pa.string()), ("char", pa.string()), ("raw", pa.string())]
)  # fmt: skip
FRAME_SCHEMA = pa.schema([("index", pa.int64()), ("t", pa.float64()), ("pts", pa.int64())])
# One row per semantic action. `action` is the schema JSON (the source of truth); the other
# columns repeat it for queries. `frame` is the last frame captured before `t` (-1: none yet).
ACTION_SCHEMA = pa.schema(
    [("index", pa.int64()), ("t", pa.float64()), ("t_end", pa.float64()), ("frame", pa.int64()),
     ("kind", pa.string()), ("x", pa.float64()), ("y", pa.float64()), ("button", pa.string()),
     ("count", pa.int32()), ("dx", pa.int32()), ("dy", pa.int32()), ("key", pa.string()),
     ("mods", pa.string()), ("action", pa.string())]
)  # fmt: skip

DIR_MODE, FILE_MODE = 0o700, 0o600


class RecordingError(EmulatorError):
    """A recording cannot be written or read; the message is one line for the user."""


def private_dir(path: str | Path) -> Path:
    """Create `path` (and parents) and make it 0700."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(p, DIR_MODE)
    return p


def private_file(path: str | Path, mode: str = "w"):
    """Open a file created 0600 (text, line-buffered for appends)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    os.chmod(path, FILE_MODE)
    return os.fdopen(fd, mode, buffering=1 if "b" not in mode else -1)


def touch_private(path: str | Path) -> None:
    """Create an empty 0600 file that another library (FFmpeg) will then write into."""
    private_file(path).close()


def write_json(path: str | Path, data: dict) -> None:
    """Atomically replace a JSON file (write a 0600 temporary, then rename)."""
    tmp = Path(f"{path}.tmp")
    with private_file(tmp) as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str | Path) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise RecordingError(f"{path}: missing (is this a recording folder?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordingError(f"{path}: corrupt JSON ({e})") from None
