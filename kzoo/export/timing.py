"""Sizes and latencies of exported files (for `make demo` and `bench/export.py`)."""

import os
import time

import numpy as np


def path_bytes(path):
    """Bytes of a file, or of every file under a folder (a SavedModel)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(path) for name in names)


def median_seconds(call, items, warmup=3):
    """Median wall time of `call(item)` over `items`, after `warmup` untimed calls."""
    for item in items[:warmup]:
        call(item)
    times = []
    for item in items:
        start = time.perf_counter()
        call(item)
        times.append(time.perf_counter() - start)
    return float(np.median(times))
