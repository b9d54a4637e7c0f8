"""Recorder cost against FFmpeg: record S seconds of a changing 1920x1080 screen at 30 fps with
`emulator record`, then the same with `ffmpeg -f x11grab` at the same codec, preset, quality and
keyframe interval; compare the CPU seconds each process used (user + system, from wait4, imports
and start-up included). During our recording real X input events are injected from another
process and counted back from the recording.

    python -m bench.recorder [--seconds 30]
      -> {"ours_cpu_s", "ffmpeg_cpu_s", "cpu_ratio", "frames", "dropped_frames",
          "events_sent", "events_recorded", ...}

The changing screen: a 480x360 window of fresh random pixels 30 times a second (the worst case
for the encoder) while the pointer moves, clicks and types.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from emulator.display import VirtualDisplay
from emulator.input import InputDriver
from emulator.schema import Action, Kind
from emulator.screen import Screen
from recorder.reader import Recording

ROOT = Path(__file__).resolve().parents[1]
W, H, FPS = 1920, 1080, 30


def _cpu_of(cmd: list[str], env: dict, during=None) -> tuple[float, float]:
    """Run cmd to completion; returns (cpu seconds, wall seconds). `during(proc)` runs meanwhile."""
    t = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    worker = threading.Thread(target=during, args=(proc,), daemon=True) if during else None
    if worker:
        worker.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if worker:
        worker.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr.read().decode()[-500:]}")
    return usage.ru_utime + usage.ru_stime, time.monotonic() - t


def _inject(display: str, seconds: float, sent: list[int]):
    """Moves, clicks, keys and wheel clicks at ~20 events/s; counts the X events sent."""

    def run(_proc) -> None:
        with Screen(display) as screen:
            driver = InputDriver(display, screen.layout().viewport())
        time.sleep(1.5)  # the recorder is up (imports, encoder probe)
        end = time.monotonic() + seconds - 3.0
        i = 0
        while time.monotonic() < end:
            x, y = 0.6 + 0.3 * ((i * 37) % 100) / 100, 0.2 + 0.6 * ((i * 53) % 100) / 100
            step = i % 8
            if step < 5:
                driver.execute(Action.move(x, y))
                sent[0] += 1
            elif step == 5:
                driver.execute(Action.click(x, y))
                sent[0] += 3  # a click moves there (one event, even in place), then down and up
            elif step == 6:
                driver.execute(Action.press("abcdefghij"[i % 10]))
                sent[0] += 2
            else:
                driver.execute(Action(Kind.SCROLL, dy=1))
                sent[0] += 1
            i += 1
            time.sleep(0.05)
        driver.close()

    return run


def run(seconds: float = 30.0) -> dict:
    with VirtualDisplay(W, H) as d, tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **d.env(), "QT_QPA_PLATFORM": "xcb"}
        app = subprocess.Popen([sys.executable, str(ROOT / "tests/apps/color_flip.py"), "--noise",
                                "--pos", "100,100", "--size", "480,360"], env=env, stdout=subprocess.PIPE)  # fmt: skip
        try:
            app.stdout.readline()
            out = Path(tmp) / "ours"
            sent = [0]
            ours_cpu, ours_wall = _cpu_of(
                [sys.executable, "-m", "emulator.cli", "record", str(out), "--display", d.name,
                 "--fps", str(FPS), "--seconds", str(seconds)],
                env, during=_inject(d.name, seconds, sent),
            )  # fmt: skip
            ffmpeg_cpu, ffmpeg_wall = _cpu_of(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "x11grab", "-framerate", str(FPS),
                 "-video_size", f"{W}x{H}", "-i", d.name, "-t", str(seconds), "-c:v", "libx264",
                 "-preset", "ultrafast", "-crf", "23", "-g", str(FPS), "-pix_fmt", "yuv420p",
                 str(Path(tmp) / "ffmpeg.mp4")],
                env,
            )  # fmt: skip
            with Recording(out) as rec:
                info = rec.info
                ours_mb = (out / "videos/screen.mp4").stat().st_size / 2**20
                result = {
                    "seconds": seconds,
                    "ours_cpu_s": round(ours_cpu, 2),
                    "ffmpeg_cpu_s": round(ffmpeg_cpu, 2),
                    "cpu_ratio": round(ours_cpu / ffmpeg_cpu, 3),
                    "frames": len(rec.frames),
                    "dropped_frames": info["dropped_frames"],
                    "events_sent": sent[0],
                    "events_recorded": len(rec.events),
                    "ours_video_mb": round(ours_mb, 2),
                    "ffmpeg_video_mb": round((Path(tmp) / "ffmpeg.mp4").stat().st_size / 2**20, 2),
                    "ours_wall_s": round(ours_wall, 2),
                    "ffmpeg_wall_s": round(ffmpeg_wall, 2),
                }
        finally:
            app.kill()
            app.wait()
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    print(json.dumps(run(ap.parse_args().seconds)))
