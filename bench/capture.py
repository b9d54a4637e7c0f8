"""Capture speed on Xvfb: median mss grab and grab + pointer + area downscale (longest side <= 320)
at 1920x1080 and 5120x2880.

    python -m bench.capture    ->  {"resolutions": [{"width", "height", "grab_ms", "fps", "grab_downscale_ms"}, ...]}
"""

import json

from bench.timing import median_ms
from emulator.display import VirtualDisplay
from emulator.screen import Screen, area_downscale, downscale_factor

RESOLUTIONS = [(1920, 1080), (5120, 2880)]


def run(n: int = 60) -> dict:
    out = []
    for w, h in RESOLUTIONS:
        with VirtualDisplay(w, h) as d, Screen(d.name) as screen:
            k = downscale_factor(w, h, 320)
            grab = median_ms(lambda: screen.grab(cursor=False), n)
            both = median_ms(lambda k=k: area_downscale(screen.grab(), k), n)
        out.append(
            {
                "width": w,
                "height": h,
                "grab_ms": round(grab, 3),
                "fps": round(1000 / grab, 1),
                "grab_downscale_ms": round(both, 3),
                "downscale_factor": k,
            }
        )
    return {"resolutions": out}


if __name__ == "__main__":
    print(json.dumps(run()))
