"""Median wall times: the speeds `kzoo distill`, `make demo` and `bench/` report."""

import time

import numpy as np


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


def forward_seconds(model, inputs, repeats=20):
    """Median seconds of one inference forward pass of `model` on the batch `inputs`, its outputs fetched to the
    host, after one untimed call that compiles it."""
    import keras

    return median_seconds(lambda batch: keras.ops.convert_to_numpy(model.predict_on_batch(batch)),
                          [inputs] * repeats, warmup=1)
