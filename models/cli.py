"""The model's subcommands of `emulator`: train and run.

emulator train DATA... --out model.onnx [--init models/default.onnx] [--epochs 30 | --minutes 5]
emulator train DATA --overfit-test               # self-test: one batch to ~zero loss
emulator run --model models/default.onnx --task miniwob:click-test [--episodes 5]
"""

from __future__ import annotations

import json
import sys

from emulator.errors import EmulatorError


def cmd_train(args) -> int:
    from models.train import TrainConfig, overfit_one_batch, train

    if args.overfit_test:
        from models.data import load_samples

        first, last = overfit_one_batch(load_samples(args.data))
        print(json.dumps({"first_loss": round(first, 4), "last_loss": round(last, 5), "passed": last < 0.05}))
        return 0 if last < 0.05 else 1
    if not args.out:
        raise EmulatorError("--out is required (the .onnx file to write)")
    if args.epochs is not None and args.epochs <= 0 or args.minutes is not None and args.minutes <= 0:
        raise EmulatorError("--epochs and --minutes must be positive")
    cfg = TrainConfig(
        epochs=None if args.minutes else (args.epochs or 30), minutes=args.minutes, batch=args.batch, lr=args.lr,
        seed=args.seed, threads=args.threads,
    )  # fmt: skip
    summary = train(args.data, args.out, init=args.init, config=cfg, progress=not args.json)
    if args.json:
        print(json.dumps(summary))
    else:
        v = summary["val"]
        print(
            f"wrote {args.out} ({summary['params']:,} parameters) from {summary['samples']} samples of "
            f"{summary['episodes']} episodes in {summary['train_seconds']:.0f} s ({summary['samples_per_second']:.0f} samples/s); "
            f"validation: action {v.get('action', float('nan')):.3f}, kind {v.get('kind', float('nan')):.3f}, "
            f"pointer within a cell {v.get('cell_near', float('nan')):.3f}, key {v.get('key', float('nan')):.3f}"
        )
    return 0


def cmd_run(args) -> int:
    from emulator.envs.episodes import run_episode
    from emulator.envs.miniwob import MiniWoBWorld

    if not args.task.startswith("miniwob:"):
        raise EmulatorError(
            "--task must look like miniwob:NAME (desktop workflows come with `emulator run --display`)"
        )
    task = args.task.removeprefix("miniwob:")
    from emulator.envs.runner import parse_tasks

    parse_tasks(task)
    from models.policy import OnnxPolicy

    OnnxPolicy.cached(args.model)  # refuse a missing or mismatched model before starting a browser
    with MiniWoBWorld() as world:
        wins = 0
        for i in range(args.episodes):
            r = run_episode(world, task, args.seed + i, args.model)
            wins += r.success
            print(
                f"{task} seed {r.seed}: {'success' if r.success else 'failure'} in {r.steps} steps, {r.seconds:.2f} s"
            )
    print(f"{wins}/{args.episodes} succeeded", file=sys.stderr)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train a model on recordings (CPU), export ONNX")
    p.add_argument(
        "data", nargs="+", metavar="DATA", help="collect datasets, recordings or folders of recordings"
    )
    p.add_argument("--out", help="the .onnx model to write (its checkpoint goes beside it as .pt)")
    p.add_argument("--init", help="fine-tune from this model (.onnx with its .pt beside it, or a .pt)")
    p.add_argument("--epochs", type=float, help="passes over the training samples (default 30)")
    p.add_argument("--minutes", type=float, help="train for this long instead of a number of epochs")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print the summary as JSON, no progress bar")
    p.add_argument("--overfit-test", action="store_true", help="self-test: fit one batch to ~zero loss")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("run", help="run a model on a task")
    p.add_argument("--model", required=True, help="the .onnx model")
    p.add_argument("--task", required=True, help="miniwob:NAME")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--seed", type=int, default=100_000)
    p.set_defaults(fn=cmd_run)
