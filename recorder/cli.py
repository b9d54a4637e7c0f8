"""The recorder's subcommands of `emulator`: record, inspect, replay.

emulator record OUT [--display :N] [--region x,y,w,h | --window ID|TITLE | --monitor N]
                    [--fps 30] [--seconds S] [--task TEXT] [--mask x,y,w,h ...] [--no-done]
emulator inspect OUT [--json]
emulator replay OUT --render out.mp4
"""

from __future__ import annotations

import json
import signal
import sys
import time


def cmd_record(args) -> int:
    from emulator.cli import resolve_viewport
    from emulator.display import open_display
    from emulator.schema import Rect
    from emulator.screen import Screen
    from recorder.record import Recorder, RecordOptions

    masks = [Rect.parse(m) for m in args.mask or []]
    display = open_display(args.display)
    with Screen(display.name) as screen:
        viewport = resolve_viewport(screen, args)
    options = RecordOptions(
        fps=args.fps, codec=args.codec, preset=args.preset, crf=args.crf, pix_fmt=args.pix_fmt, task=args.task or "",
        masks=masks, cursor=not args.no_cursor, stop_hotkey=args.stop_hotkey, pause_hotkey=args.pause_hotkey,
        ends_task=not args.no_done,
    )  # fmt: skip
    recorder = Recorder(args.out, display.name, viewport, options)
    for fallback in recorder.encoder.fallbacks:
        print(f"emulator: note: {fallback}", file=sys.stderr)
    old_term = signal.signal(signal.SIGTERM, lambda *_: recorder.stop("signal"))
    r = viewport.rect
    print(
        f"recording {r.width}x{r.height} at {r.x},{r.y} of {display.name} to {args.out} with {recorder.encoder.codec}; "
        f"stop: Ctrl+C or {options.stop_hotkey}, pause: {options.pause_hotkey}",
        file=sys.stderr,
    )
    recorder.start()
    try:
        recorder.wait(args.seconds, on_tick=_progress if sys.stderr.isatty() or args.progress else None)
    except KeyboardInterrupt:
        recorder.stop("ctrl+c")
    finally:
        info = recorder.finish()
        signal.signal(signal.SIGTERM, old_term)
    print(
        f"\n{args.out}: {info['status']}, {info['duration']:.1f} s, {info.get('frames', recorder.frames)} frames, "
        f"{info['dropped_frames']} dropped, {info.get('events', 0)} events, {info.get('actions', 0)} actions",
        file=sys.stderr,
    )
    if recorder.error:
        print(
            f"emulator: error: recording stopped: {recorder.error}; what was written is readable",
            file=sys.stderr,
        )
        return 1
    return 0


def _progress(rec) -> None:
    elapsed = time.monotonic() - rec.t0
    state = "  [paused]" if rec.paused else ""
    print(
        f"\r{int(elapsed // 60):02d}:{elapsed % 60:04.1f}  frames {rec.frames}  dropped {rec.dropped}  "
        f"events {rec.events.total}{state}   ",
        end="", file=sys.stderr, flush=True,
    )  # fmt: skip


def cmd_inspect(args) -> int:
    from recorder.inspect import format_summary, inspect_recording

    summary = inspect_recording(args.out)
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0


def cmd_replay(args) -> int:
    from recorder.replay import render_replay

    n = render_replay(args.out, args.render, speed=args.speed)
    print(f"wrote {args.render} ({n} frames)")
    return 0


def add_commands(sub, display_arg, viewport_args) -> None:
    from emulator.loop import DEFAULT_STOP_HOTKEY
    from recorder.record import DEFAULT_PAUSE_HOTKEY

    p = sub.add_parser("record", help="record a demonstration: screen video + input events")
    p.add_argument("out", metavar="OUT", help="new folder for the recording")
    display_arg(p)
    viewport_args(p)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument(
        "--seconds", type=float, help="stop after this long (default: until Ctrl+C or the stop hotkey)"
    )
    p.add_argument("--task", help="what the demonstration does, stored in the metadata")
    p.add_argument(
        "--mask", action="append", metavar="x,y,w,h", help="black out this screen rectangle (repeatable)"
    )
    p.add_argument("--codec", default="libx264", help="video encoder (falls back when it refuses the size)")
    p.add_argument("--preset", default="ultrafast", help="x264 preset")
    p.add_argument("--crf", type=int, default=23, help="x264 quality (lower: better, bigger; 0: lossless)")
    p.add_argument(
        "--pix-fmt", default="yuv420p", choices=["yuv420p", "yuv444p"], help="yuv444p keeps full colour"
    )
    p.add_argument("--no-cursor", action="store_true", help="do not draw the pointer into the video")
    p.add_argument(
        "--no-done", action="store_true",
        help="a fragment, not a whole task: do not label the last frame `done` (the model's stop signal)",
    )  # fmt: skip
    p.add_argument("--stop-hotkey", default=DEFAULT_STOP_HOTKEY)
    p.add_argument("--pause-hotkey", default=DEFAULT_PAUSE_HOTKEY)
    p.add_argument(
        "--progress", action="store_true", help="show the progress line even when not on a terminal"
    )
    p.set_defaults(fn=cmd_record)

    p = sub.add_parser("inspect", help="what a recording holds: duration, frames, events, actions, sync")
    p.add_argument("out", metavar="OUT", help="recording folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_inspect)

    p = sub.add_parser("replay", help="render a recording as an annotated video")
    p.add_argument("out", metavar="OUT", help="recording folder")
    p.add_argument("--render", required=True, metavar="FILE.mp4", help="video to write")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed of the rendered video")
    p.set_defaults(fn=cmd_replay)
