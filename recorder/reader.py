"""Reading recording folders (format in recorder/dataset.py), finished or cut short by a crash.

    rec = Recording("demos/d1")
    rec.info["task"], len(rec.frames), rec.events[:3], rec.actions[:3]
    rgb = rec.frame(10)                      # (H, W, 3) uint8 at the recorded size
    i, rgb = rec.frame_at(2.5)               # the frame on screen 2.5 s after the start
    for i, t, rgb in rec.iter_frames(): ...

Every problem (missing or corrupt files, a truncated video, a time with no frame near it) is a
`RecordingError` with a one-line message. A recording that was never finished (kill -9, power
loss) is read from its journals, up to the last complete line and the last complete fragment.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from recorder.actions import derive_actions
from recorder.dataset import (
    ACTIONS,
    EVENTS,
    EVENTS_JOURNAL,
    FRAMES,
    FRAMES_JOURNAL,
    INFO,
    VIDEO,
    RecordingError,
    read_json,
)  # fmt: skip
from recorder.video import TIME_BASE
from recorder.writer import read_journal


class Recording:
    def __init__(self, path: str | Path):
        self.root = Path(path)
        if not self.root.is_dir():
            raise RecordingError(f"{self.root}: no such recording folder")
        self.info = read_json(self.root / INFO)
        if "viewport" not in self.info or "video" not in self.info:
            raise RecordingError(f"{self.root / INFO}: not a recording's info (no viewport or video)")
        self.finished = self.info.get("status") == "complete" and (self.root / ACTIONS).exists()
        self.frames = self._table(FRAMES, FRAMES_JOURNAL)
        self.events = self._table(EVENTS, EVENTS_JOURNAL)
        if (self.root / ACTIONS).exists():
            self.actions = self._read_parquet(ACTIONS)
        else:
            self.actions = derive_actions(self.events, self.frames, self.info)
        self.frame_times = np.array([f["t"] for f in self.frames], dtype=np.float64)
        v = self.info["video"]
        if v.get("downscale", 1) == 1:
            self.width, self.height = v["source_width"], v["source_height"]  # crop the even-size padding
        else:
            self.width, self.height = v["width"], v["height"]  # recorded smaller than the screen
        self._container = None
        self._decoded = None  # (iterator, pts of the last frame it gave)
        if not self.finished:  # cut short: the journal may list frames whose fragment never landed
            self.frames = self.frames[: self.video_packets()]
            self.frame_times = self.frame_times[: len(self.frames)]

    # -- tables ---------------------------------------------------------------------------------
    def _read_parquet(self, name: str) -> list[dict]:
        try:
            return pq.read_table(self.root / name).to_pylist()
        except Exception as e:
            raise RecordingError(f"{self.root / name}: unreadable ({str(e).splitlines()[0][:120]})") from None

    def _table(self, parquet: str, journal: str) -> list[dict]:
        if (self.root / parquet).exists():
            return self._read_parquet(parquet)
        if (self.root / journal).exists():
            return read_journal(self.root / journal)
        raise RecordingError(f"{self.root}: neither {parquet} nor {journal} is there")

    @property
    def duration(self) -> float:
        return float(self.info.get("duration") or (self.frame_times[-1] if len(self.frame_times) else 0.0))

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    # -- video ----------------------------------------------------------------------------------
    def _open(self):
        if self._container is None:
            import av

            path = self.root / VIDEO
            if not path.exists() or path.stat().st_size == 0:
                raise RecordingError(f"{path}: missing or empty video")
            try:
                self._container = av.open(str(path))
                self._stream = self._container.streams.video[0]
            except Exception as e:
                raise RecordingError(f"{path}: not a readable video ({_first_line(e)})") from None
            self._stream.thread_type = "AUTO"
        return self._container

    def _our_pts(self, frame) -> int:
        return round(Fraction(frame.pts) * self._stream.time_base / TIME_BASE)

    def _to_rgb(self, frame) -> np.ndarray:
        return frame.to_ndarray(format="rgb24")[: self.height, : self.width]

    def frame(self, index: int) -> np.ndarray:
        """The frame with this index (frames table order), as RGB."""
        if not 0 <= index < len(self.frames):
            raise RecordingError(f"frame {index} out of range: the recording has {len(self.frames)} frames")
        target = self.frames[index]["pts"]
        self._open()
        if self._decoded is None or not (self._decoded[1] < target <= self._decoded[1] + self._gop_pts()):
            self._seek(target)
        it = self._decoded[0]
        try:
            for frame in it:
                pts = self._our_pts(frame)
                self._decoded = (it, pts)
                if pts == target:
                    return self._to_rgb(frame)
                if pts > target:
                    break
        except Exception as e:
            self._decoded = None
            raise RecordingError(
                f"{self.root / VIDEO}: corrupt or truncated at frame {index} ({_first_line(e)})"
            ) from None
        self._decoded = None
        raise RecordingError(f"{self.root / VIDEO}: frame {index} is missing (the video ends before it)")

    def _gop_pts(self) -> int:
        return round(1.0 / TIME_BASE)  # keyframes come every second: decoding on beats seeking

    def _seek(self, pts: int) -> None:
        stream_pts = round(Fraction(pts) * TIME_BASE / self._stream.time_base)
        try:
            self._container.seek(stream_pts, stream=self._stream, backward=True, any_frame=False)
        except Exception as e:
            raise RecordingError(f"{self.root / VIDEO}: cannot seek ({_first_line(e)})") from None
        self._decoded = (self._container.decode(self._stream), -1)

    def frame_at(self, t: float, tolerance: float | None = None) -> tuple[int, np.ndarray]:
        """The frame on screen at `t` seconds after the start: the last captured at or before t.
        Refuses a time farther than `tolerance` (default 1.5 frame periods) from that frame."""
        index = self.index_at(t, tolerance)
        return index, self.frame(index)

    def index_at(self, t: float, tolerance: float | None = None) -> int:
        tolerance = 1.5 / self.fps if tolerance is None else tolerance
        i = int(np.searchsorted(self.frame_times, t, side="right")) - 1
        if i < 0 or t - self.frame_times[i] > tolerance:
            near = "before the first frame" if i < 0 else f"{t - self.frame_times[i]:.3f} s after frame {i}"
            raise RecordingError(f"no frame within {tolerance:.3f} s of t={t:.3f} s ({near})")
        return i

    def iter_frames(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """Every frame in order, decoded once: (index, t, rgb)."""
        by_pts = {f["pts"]: i for i, f in enumerate(self.frames)}
        self._open()
        self._container.seek(0, stream=self._stream)
        try:
            for frame in self._container.decode(self._stream):
                i = by_pts.get(self._our_pts(frame))
                if i is not None:
                    yield i, self.frames[i]["t"], self._to_rgb(frame)
        except Exception as e:
            if isinstance(e, GeneratorExit):
                raise
            raise RecordingError(f"{self.root / VIDEO}: corrupt or truncated ({_first_line(e)})") from None
        finally:
            self._decoded = None

    def video_packets(self) -> int:
        """How many frames the video file holds (demuxed, not decoded: fast)."""
        self._open()
        self._container.seek(0, stream=self._stream)
        n = 0
        try:
            for packet in self._container.demux(self._stream):
                if packet.is_corrupt:
                    break  # torn by a crash or a full disk: FFmpeg flags the short read
                n += packet.size > 0
        except Exception:
            pass  # a torn last fragment: count what came before it
        self._decoded = None
        return n

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:160]
