"""Training throughput on this CPU: samples/s of one optimizer step of the policy network (forward,
the training losses, backward, AdamW) on synthetic batches, in fp32 and under bf16 autocast.

    python -m bench.train [--batch 64] [--steps 6] [--threads 2]
      -> {"params", "batch", "threads", "native_bf16", "auto_precision",
          "fp32_samples_per_s", "bf16_samples_per_s", "bf16_speedup"}

Synthetic frames and targets: the cost of a step does not depend on what the pixels show. The
glyph-sheet losses (--glyphs) are left out (unmeasured here). Where the CPU has no native
bf16 (native_bf16 false), `emulator train` stays in fp32 and the bf16 figure is only for comparison.
"""

from __future__ import annotations

import argparse
import json
import time


def run(batch: int = 64, steps: int = 6, threads: int = 2, warmup: int = 2) -> dict:
    import torch

    from models.data import TARGETS
    from models.net import PixelPolicyNet, count_params
    from models.spec import GRID, HEADS, HISTORY_COLS, HISTORY_VOCAB, INPUT_H, INPUT_W
    from models.train import autocast, losses, native_bf16, resolve_precision, total_loss

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, INPUT_H, INPUT_W, generator=g) - 0.5
    h = torch.randint(0, HISTORY_VOCAB, (batch, HISTORY_COLS), generator=g)
    h[:, -1] = torch.randint(0, GRID.size + 1, (batch,), generator=g)
    sizes = {**HEADS, "look": GRID.size, "look2": GRID.size}
    t = torch.stack([torch.randint(0, sizes[name], (batch,), generator=g) for name in TARGETS], 1)
    result = {"batch": batch, "threads": threads, "native_bf16": native_bf16(),
              "auto_precision": resolve_precision("auto")}  # fmt: skip
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        net = PixelPolicyNet().train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        result["params"] = count_params(net)

        def step(net=net, opt=opt, precision=precision):
            with autocast(precision):
                loss = total_loss(losses(net(x, h), t))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(warmup):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        result[f"{precision}_samples_per_s"] = round(batch * steps / (time.perf_counter() - start), 1)
    result["bf16_speedup"] = round(result["bf16_samples_per_s"] / result["fp32_samples_per_s"], 2)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    print(json.dumps(run(args.batch, args.steps, args.threads)))
