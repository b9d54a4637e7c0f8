"""What a model looks at and how its outputs read, shared by training (torch) and the runtime
(numpy + onnxruntime only): input size, the pointer grid, the heads, and preprocessing.

    x = preprocess(rgb_frames)            # (N, 210, 160, 3) uint8 -> (N, 3, 210, 160) float32
    grid.center(cell)                     # pointer cell -> viewport-normalized (x, y)

The pointer is a 40x53 grid over the 160x210 task area: cells of 4 x ~4 px (design: stride <= 4).
"""

from __future__ import annotations

import numpy as np

from emulator.schema import BUTTONS, KEYS, KINDS, MODIFIERS, PointerGrid

MODEL_FORMAT = 1
INPUT_W, INPUT_H = 160, 210
GRID = PointerGrid(cols=40, rows=53)
HEADS = {  # name -> number of classes
    "kind": len(KINDS), "cell": GRID.size, "button": len(BUTTONS), "double": 2,
    "key": len(KEYS), "mods": 2 ** len(MODIFIERS), "scroll": 3,
}  # fmt: skip
PREPROCESS = "rgb uint8 HWC -> float32 NCHW, x / 255 - 0.5"


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) or (H, W, 3) uint8 RGB -> (N, 3, H, W) float32 in [-0.5, 0.5]."""
    if rgb.ndim == 3:
        rgb = rgb[None]
    return np.ascontiguousarray(rgb.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0 - 0.5
