"""kill -9, then the same command again: the run finishes as if it had never stopped.

Each command runs in a separate process and is killed (SIGKILL) three times: inside a commit (pretraining: a
backup's record; fine-tuning: between the two renames that replace best/), at a seeded random moment of the
resumed run (mid-step or mid-backup), and inside its final save. Finished, it must hold the unbroken run's
weights (≤ 1e-6), one metrics row per epoch equal to the unbroken run's, and no staging file or backup. Real
processes cost about a minute per command, so each command runs under one backend (pretraining in the TensorFlow
session, fine-tuning in the JAX one); resuming exactly was also checked by hand on the other backend.
"""

import csv
import json
import os
import subprocess
import sys
import time

import h5py
import keras
import numpy as np
import pytest
from conftest import make_backbone, word_preprocessor, write_text_corpus
from test_finetune import WORDS, write_sentiment_jsonl

JOB = os.path.join(os.path.dirname(__file__), "killed_job.py")
BACKEND = keras.backend.backend()
TOLERANCE = 1e-6


def run(argv, kill_at=None):
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3")
    if kill_at:
        env["KZOO_TEST_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, JOB, *map(str, argv)], env=env, capture_output=True, text=True,
                          timeout=600)


def run_and_kill(argv, log, rows, delay):
    """Start the command, and SIGKILL it `delay` seconds after `log` holds `rows` metric rows."""
    process = subprocess.Popen([sys.executable, JOB, *map(str, argv)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=dict(os.environ, KERAS_BACKEND=BACKEND))
    deadline = time.monotonic() + 600
    while _rows(log) < rows and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    process.kill()
    assert process.wait() == -9, "the run ended before it could be killed: give it more epochs"


def _rows(log):
    if not os.path.isfile(log):
        return 0
    with open(log) as f:
        return max(0, sum(1 for line in f if line.strip()) - 1)


def read_log(path):
    with open(path) as f:
        return [{k: float(v) for k, v in row.items() if v != "NA"} for row in csv.DictReader(f)]


def h5_arrays(path):
    arrays = {}

    def keep(name, item):
        if isinstance(item, h5py.Dataset):
            arrays[name] = item[()]

    with h5py.File(path) as f:
        f.visititems(keep)
    assert arrays, f"{path} holds no arrays"
    return arrays


def assert_same_run(unbroken, resumed, weights, log):
    a, b = h5_arrays(unbroken / weights), h5_arrays(resumed / weights)
    assert sorted(a) == sorted(b)
    assert max(float(np.max(np.abs(a[k] - b[k]))) for k in a) <= TOLERANCE
    rows_a, rows_b = read_log(unbroken / log), read_log(resumed / log)
    assert [row["epoch"] for row in rows_b] == list(range(len(rows_a)))  # every epoch once: no duplicate rows
    for row_a, row_b in zip(rows_a, rows_b):
        assert row_a.keys() == row_b.keys()
        assert all(abs(row_a[k] - row_b[k]) <= TOLERANCE for k in row_a), (row_a, row_b)
    assert not [name for name in os.listdir(resumed) if name.startswith(".kzoo-")]  # no staging left
    assert not (resumed / "backup").exists()


def kill_three_times_then_finish(command, run_dir, log, first_kill, last_kill, rng):
    """Kill `command` inside a backup commit or a replacement (`first_kill`), at a seeded random moment of the
    resumed run, and inside its final save (`last_kill`); then let it finish. Returns the last run's stdout."""
    assert run(command, kill_at=first_kill).returncode == -9
    run_and_kill(command, log, rows=int(rng.integers(2, 4)), delay=rng.uniform(0, 0.4))
    assert run(command, kill_at=last_kill).returncode == -9
    assert [name for name in os.listdir(run_dir) if name.startswith(".kzoo-")]  # the staged result, never renamed
    result = run(command)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="backend-independent resume logic, run once (TF session)")
def test_pretrain_killed_at_random_moments_resumes_exactly(tmp_path):
    from kzoo.cli import main

    corpus = write_text_corpus(tmp_path / "corpus", documents=120)

    def pretrain(out):
        return ["pretrain", "--arch", "bert", "--corpus", corpus, "--vocab-size", "200", "--steps", "40",
                "--log-every", "5", "--batch-size", "8", "--sequence-length", "32", "--eval-batches", "2",
                "--holdout-every", "10", "--dropout", "0.1", "--quiet", "--out", out]

    unbroken, killed = tmp_path / "unbroken", tmp_path / "killed"
    assert run(pretrain(unbroken)).returncode == 0
    stdout = kill_three_times_then_finish(pretrain(killed), killed, killed / "metrics.csv",
                                          "training_metadata.json", "model", np.random.default_rng(29))
    assert "after step 40 of 40" in stdout  # the last restart trained nothing again
    assert_same_run(unbroken, killed, "model/model.weights.h5", "metrics.csv")
    summaries = [json.loads((run_dir / "summary.json").read_text()) for run_dir in (unbroken, killed)]
    assert summaries[0]["held_out"] == pytest.approx(summaries[1]["held_out"], abs=TOLERANCE)
    assert main([str(arg) for arg in pretrain(killed)]) == 2  # finished: refused without --overwrite


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "jax", reason="backend-independent resume logic, run once (JAX session)")
def test_finetune_killed_at_random_moments_resumes_exactly(tmp_path):
    from kzoo.models import TextClassifier

    data = write_sentiment_jsonl(tmp_path / "data.jsonl", 320, seed=2)
    source = tmp_path / "source"
    preprocessor = word_preprocessor(tmp_path / "vocab.txt", WORDS, sequence_length=24)
    backbone = make_backbone("bert", vocabulary_size=len(WORDS) + 5, dropout=0.1)
    TextClassifier(backbone, num_classes=2, preprocessor=preprocessor).save_to_preset(str(source))

    def finetune(out):
        return ["finetune", "--task", "classify", "--data", data, "--from", source, "--out", out, "--epochs", "6",
                "--batch-size", "16", "--learning-rate", "3e-3", "--quiet"]

    unbroken, killed = tmp_path / "unbroken", tmp_path / "killed"
    assert run(finetune(unbroken)).returncode == 0
    # First kill: between the two renames that replace best/ the second time (the old one moved aside).
    stdout = kill_three_times_then_finish(finetune(killed), killed, killed / "metrics.csv", "best:2",
                                          "metrics.json", np.random.default_rng(29))
    assert "after epoch 6 of 6" in stdout
    assert_same_run(unbroken, killed, "best/model.weights.h5", "metrics.csv")
    metrics = [json.loads((run_dir / "metrics.json").read_text()) for run_dir in (unbroken, killed)]
    assert (metrics[0]["accuracy"], metrics[0]["best_epoch"]) == (metrics[1]["accuracy"], metrics[1]["best_epoch"])
