"""Shared by the bench scripts: run one measurement in its own process and read its JSON result."""

import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_worker(script, backend, arguments, label, timeout=None):
    """`python script --worker ARGUMENTS` under `backend`; its last stdout line, parsed as JSON. Raises
    RuntimeError when it fails or runs past `timeout` seconds."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    try:
        result = subprocess.run([sys.executable, script, "--worker", *arguments], env=env, capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        raise RuntimeError(f"{label} ran past {timeout} s") from expired
    if result.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def step_timer():
    """A callback timing each `fit` or `predict` batch to its end (reading a result waits for the asynchronously
    dispatched step); the median of `.seconds` is the measure. On this shared VM whole `fit` calls were seen to
    stall for seconds at a time (a 10-step fit took exactly 20.5 s again and again), hitting either side."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def _begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def _end(self, batch, logs=None):
            keras.ops.convert_to_numpy(keras.tree.flatten(logs)[0])  # wait for the step
            self.seconds.append(time.perf_counter() - self._start)

        on_train_batch_begin = on_predict_batch_begin = _begin
        on_train_batch_end = on_predict_batch_end = _end

    return StepTimer()


def token_batch(batch_size, sequence_length, vocabulary_size, predictions=0, seed=0):
    """(x, y_mlm) of one batch of random token ids ([CLS] first, two segments, no padding); with `predictions`,
    x also holds that many sorted `mask_positions` per row and y_mlm their random targets (else None)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocabulary_size, (batch_size, sequence_length)).astype("int32")
    ids[:, 0] = 2
    segments = np.broadcast_to(np.arange(sequence_length) >= sequence_length // 2, ids.shape).astype("int32")
    x = {"token_ids": ids, "padding_mask": np.ones_like(ids), "segment_ids": segments}
    if not predictions:
        return x, None
    positions = rng.permuted(np.tile(np.arange(1, sequence_length), (batch_size, 1)), axis=1)[:, :predictions]
    x["mask_positions"] = np.sort(positions, axis=1).astype("int32")
    return x, rng.integers(5, vocabulary_size, (batch_size, predictions)).astype("int32")


def write_results(results, path):
    """The bench's rows as JSON at `path` (folders made as needed)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nwrote {path}")
