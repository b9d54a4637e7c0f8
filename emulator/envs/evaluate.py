"""`emulator eval`: per-task success, reward, steps and wall time of a policy on MiniWoB++,
against the median time people need (HUMAN_MEDIAN_S).

    emulator eval --policy {random,expert,model.onnx} --tasks suite --episodes 20 --seed 100000 \
                  [--workers 2] [--json] [--report DIR]

JSON: {"tasks": {NAME: {"success", "reward", "steps", "seconds", "human_s", "x_faster"}},
       "mean_success", "mean_seconds", ...}. `seconds` is the mean episode wall time (reset to
done); `x_faster` = the human median / our median time of successful episodes. The default
seeds start at 100000, far from the collection seeds (0...), so a model is scored on instances it
never saw. --report writes report.md and a per-task bar chart.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from emulator.envs.miniwob import HUMAN_MEDIAN_S
from emulator.envs.runner import jobs, parse_tasks, run_jobs

EVAL_SEED = 100_000


def evaluate(
    policy: str, tasks: str, episodes: int, seed: int = EVAL_SEED, workers: int = 1, progress: bool = True
) -> dict:
    names = parse_tasks(tasks)
    per_task: dict[str, list] = {t: [] for t in names}
    for result in run_jobs(
        jobs(names, episodes, seed), policy, workers, desc=f"eval {Path(policy).name}", progress=progress
    ):
        per_task[result.task].append(result)
    table = {}
    for task, results in per_task.items():
        wins = [r for r in results if r.success]
        human = HUMAN_MEDIAN_S.get(task)
        ours = statistics.median(r.seconds for r in wins) if wins else None
        table[task] = {
            "success": round(len(wins) / len(results), 4),
            "reward": round(statistics.fmean(r.reward for r in results), 4),
            "steps": round(statistics.fmean(r.steps for r in results), 2),
            "seconds": round(statistics.fmean(r.seconds for r in results), 4),
            "human_s": human,
            "x_faster": round(human / ours, 1) if human and ours else None,
            "errors": sum(r.stopped_by.startswith("error") for r in results),
        }
    speedups = [v["x_faster"] for v in table.values() if v["x_faster"]]
    return {
        "policy": policy, "episodes": episodes, "seed": seed, "tasks": table,
        "mean_success": round(statistics.fmean(v["success"] for v in table.values()), 4),
        "mean_seconds": round(statistics.fmean(v["seconds"] for v in table.values()), 4),
        "median_x_faster": round(statistics.median(speedups), 1) if speedups else None,
    }  # fmt: skip


def write_report(result: dict, out_dir: str) -> Path:
    """report.md + success.png (per-task success, and speed against people)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = list(result["tasks"])
    rows = result["tasks"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, max(4, 0.32 * len(tasks) + 1.5)), sharey=True)
    y = range(len(tasks))
    ax1.barh(y, [rows[t]["success"] * 100 for t in tasks], color="#3a7bd5")
    ax1.set_yticks(list(y), tasks)
    ax1.invert_yaxis()
    ax1.set_xlim(0, 100)
    ax1.axvline(90, color="grey", lw=0.8, ls="--")
    ax1.set_xlabel("success %")
    ax1.set_title(f"{Path(result['policy']).name}: success per task ({result['episodes']} episodes)")
    ax2.barh(y, [rows[t]["x_faster"] or 0 for t in tasks], color="#f39c12")
    ax2.axvline(8, color="grey", lw=0.8, ls="--")
    ax2.set_xlabel("× faster than the human median")
    ax2.set_title("speed against people")
    fig.tight_layout()
    fig.savefig(out / "success.png", dpi=110)
    plt.close(fig)
    lines = [
        f"# Evaluation: `{result['policy']}`",
        "",
        f"{result['episodes']} episodes per task, seeds {result['seed']}…{result['seed'] + result['episodes'] - 1}. "
        f"Mean success **{result['mean_success']:.1%}**, mean episode {result['mean_seconds']:.2f} s, "
        f"median {result['median_x_faster']}× faster than people.",
        "",
        "![per-task success](success.png)",
        "",
        "| task | success | reward | steps | seconds | human s | × faster |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in tasks:
        r = rows[t]
        lines.append(
            f"| {t} | {r['success']:.0%} | {r['reward']:.2f} | {r['steps']:.1f} | {r['seconds']:.2f} | "
            f"{r['human_s'] if r['human_s'] is not None else '-'} | {r['x_faster'] if r['x_faster'] else '-'} |"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "result.json").write_text(json.dumps(result, indent=2))
    return out / "report.md"
