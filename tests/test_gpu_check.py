"""`bench/gpu_check.sh`, the prepared accelerator check, runs end to end on this backend at its `--small` size
(the CPU check its issue asks for; the full size is for a GPU)."""

import json
import math
import os
import subprocess

import pytest
from conftest import BACKEND, ROOT


@pytest.mark.slow
def test_gpu_check_runs_small_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = dict(os.environ, PYTHON=os.path.join(ROOT, ".venv", "bin", "python"))
    if not os.path.exists(env["PYTHON"]):
        env["PYTHON"] = "python3"
    result = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu_check.sh"), "--small", "--backends", BACKEND,
                             "--out", str(out)], env=env, capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (report,) = json.loads(out.read_text())["results"]
    assert report["backend"] == BACKEND and "error" not in report, report
    assert report["engine"].endswith("mixed_bfloat16; " + ("XLA (jit)" if BACKEND == "jax" else "XLA as Keras chooses"))
    for job in ("pretrain", "distill", "finetune"):
        rate = report[job]["examples_per_second"]
        assert math.isfinite(rate) and rate > 0, (job, report[job])
        assert f"{report[job]['batch']:>4}x{report[job]['sequence_length']:<5}" in result.stdout  # its table row
    assert report["pretrain"]["mfu"] is None  # no peak for a CPU: no made-up utilisation
    # Fine-tuning trains the whole teacher (not the frozen one the Distiller used), more than the student's weights.
    assert report["finetune"]["trainable_parameters"] > report["distill"]["trainable_parameters"] > 0
    if BACKEND == "tensorflow":  # XLA's cost under tf.distribute: the same step compiled without it
        assert report["pretrain_no_xla"]["xla"] is False and report["pretrain_no_xla"]["examples_per_second"] > 0
