"""Many MiniWoB++ episodes on parallel workers, each with its own Xvfb + Chromium: the engine
behind `emulator collect` (experts demonstrate through the recorder) and `emulator eval`.

    for result in run_jobs(jobs(["click-test"], episodes=20, seed=0), policy="expert", workers=2):
        ...

Same (task, seed) -> same task instance, so runs with the same seeds are comparable. A worker
that hits an error in one episode reports it as a failed episode and carries on.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.util
import os
import time
from collections.abc import Iterator

from tqdm import tqdm

from emulator.envs.episodes import EpisodeResult, run_episode
from emulator.envs.miniwob import SUITE, MiniWoBWorld, check_browser
from emulator.errors import EmulatorError

_world: MiniWoBWorld | None = None
_world_error = ""


def parse_tasks(spec: str) -> list[str]:
    """'suite' or a comma list of task names."""
    from emulator.envs.miniwob import HTML_DIR

    if spec == "suite":
        return list(SUITE)
    tasks = [t.strip() for t in spec.split(",") if t.strip()]
    unknown = [t for t in tasks if not (HTML_DIR / f"{t}.html").exists()]
    if unknown or not tasks:
        raise EmulatorError(
            f"unknown MiniWoB task(s) {unknown or spec!r}: use 'suite' or names like click-test"
        )
    return tasks


def jobs(tasks: list[str], episodes: int, seed: int) -> list[tuple[str, int]]:
    """(task, seed) pairs, grouped by task so a worker rarely reloads its page."""
    return [(task, seed + i) for task in tasks for i in range(episodes)]


def _init_worker() -> None:
    global _world, _world_error
    os.environ.pop("DISPLAY", None)  # a worker's world is its own Xvfb
    try:
        _world = MiniWoBWorld()
    except Exception as e:  # report it per episode; a raising initializer makes Pool respawn forever
        _world_error = (
            f"the world did not start: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}"
        )
        return
    # Pool workers leave through os._exit (no atexit): a Finalize closes Chromium and Xvfb.
    multiprocessing.util.Finalize(_world, _world.close, exitpriority=10)


def _run(job: tuple[str, int, str, str | None, bool]) -> dict:
    task, seed, policy, record_to, expert_labels = job
    start = time.monotonic()
    try:
        if _world is None:
            raise EmulatorError(_world_error)
        return run_episode(_world, task, seed, policy, record_to, expert_labels=expert_labels).to_json()
    except Exception as e:  # one broken episode must not end the run
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        result = EpisodeResult(
            task, seed, False, -1.0, -1.0, 0, time.monotonic() - start, f"error: {msg}", ""
        )
        return result.to_json()


def run_jobs(
    pairs: list[tuple[str, int]],
    policy: str,
    workers: int = 1,
    record_to: callable | None = None,
    desc: str = "episodes",
    progress: bool = True,
    expert_labels: bool = False,
) -> Iterator[EpisodeResult]:
    """Results in completion order. `record_to(task, seed)` gives a recording folder (or None)."""
    check_browser()
    if policy not in ("expert", "random"):
        from models.policy import OnnxPolicy

        OnnxPolicy.cached(policy)  # a missing or mismatched model fails here, once, not in every episode
    work = [
        (task, seed, policy, record_to(task, seed) if record_to else None, expert_labels)
        for task, seed in pairs
    ]
    bar = tqdm(total=len(work), desc=desc, unit="ep", disable=not progress, dynamic_ncols=True)
    wins = 0
    pool, finished = None, False
    try:
        if workers <= 1:
            _init_worker()
            results = map(_run, work)
        else:
            pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker)
            results = pool.imap_unordered(_run, work, chunksize=1)
        for done, raw in enumerate(results, 1):
            result = EpisodeResult(**raw)
            wins += result.success
            bar.update(1)
            bar.set_postfix_str(f"{result.task} success {wins / done:.0%}")
            yield result
        finished = True
    finally:
        bar.close()
        if pool is None:
            global _world
            if _world is not None:
                _world.close()
                _world = None
        elif finished:
            pool.close()  # workers finish and close their worlds
            pool.join()
        else:
            pool.terminate()
            pool.join()
