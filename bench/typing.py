"""How well a model types what it reads, teacher-forced: on held-out expert episodes of the typing
tasks, every state where the expert types one character is given to the model with the expert's
own history, and its decision is compared with the expert's (key and Shift). Reported per task for
the runtime's decoding (models.policy.decode: heads and, for a model that names glyphs, the glyph
reader's name), for the heads alone, and how often the first read looks at the expert's glyph.

    python -m bench.typing [--model models/default.onnx] [--episodes 60] [--data out/bench-typing]
      -> {"model", "episodes", "tasks": {task: {"chars", "runtime", "heads_only", "look_exact"}}}

The episodes (seeds 300000+, which no training set uses) are collected once into --data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

TASKS = ("enter-text", "enter-password", "login-user")
SEED = 300000
DEFAULT = Path(__file__).resolve().parents[1] / "models" / "default.onnx"


def run(model: str | None = None, episodes: int = 60, data: str = "out/bench-typing") -> dict:
    from emulator.envs.collect import collect, load_index
    from emulator.schema import KEYS, KINDS, Kind
    from models.data import TARGETS, load_samples
    from models.policy import OnnxPolicy, decode
    from models.spec import preprocess

    if len(load_index(data)) < episodes * len(TASKS):
        collect(",".join(TASKS), episodes, data, workers=2, seed=SEED, progress=True)
    samples = load_samples([data], progress=False)
    policy = OnnxPolicy(str(model or DEFAULT), threads=2)
    col = {name: i for i, name in enumerate(TARGETS)}
    key_kind = KINDS.index(Kind.KEY)
    hits: dict[str, np.ndarray] = {}
    for i, t in enumerate(samples.targets):
        if t[col["kind"]] != key_kind or len(KEYS[t[col["key"]]]) != 1:
            continue  # a character typed, not Backspace or a click
        want = (KEYS[t[col["key"]]], bool(t[col["mods"]] & 1))
        logits = {
            k: v[0]
            for k, v in policy.logits(
                preprocess(samples.frames[i : i + 1]), samples.history[i : i + 1]
            ).items()
        }
        heads = {k: v for k, v in logits.items() if k != "name"}
        typed = [
            (a.kind == "key" and (a.key, "shift" in a.mods) == want) for a in (decode(logits), decode(heads))
        ]
        look = t[col["look"]] < 0 or int(np.argmax(logits["look"])) == t[col["look"]]
        task = samples.task_names[samples.tasks[i]]
        hits.setdefault(task, np.zeros(4))
        hits[task] += [1, *typed, look]
    return {
        "model": str(model or DEFAULT),
        "episodes": episodes,
        "tasks": {
            task: {
                "chars": int(h[0]),
                "runtime": round(h[1] / h[0], 3),
                "heads_only": round(h[2] / h[0], 3),
                "look_exact": round(h[3] / h[0], 3),
            }  # fmt: skip
            for task, h in sorted(hits.items())
        },
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--episodes", type=int, default=60, help="held-out expert episodes per typing task")
    ap.add_argument("--data", default="out/bench-typing", help="where the held-out episodes are kept")
    args = ap.parse_args()
    print(json.dumps(run(args.model, args.episodes, args.data)))
