"""Shared timing for the benchmarks."""

import time

import numpy as np


def median_ms(fn, n: int, warmup: int = 1) -> float:
    """Median wall time of `fn()` in milliseconds over `n` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))
