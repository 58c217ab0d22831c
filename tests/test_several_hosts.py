"""Several hosts, simulated by processes on 127.0.0.1: one fine-tuning step and one distillation step on two
processes (JAX: `keras.distribution.initialize` + DataParallel over both processes' devices; TensorFlow:
`MultiWorkerMirroredStrategy`) end with the weights one process gets from the same global batch.

Backend-independent (each engine runs in its own processes), so it runs once, from the JAX test session."""

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import BACKEND, ROOT
from engine_jobs import largest_difference

JOB = os.path.join(ROOT, "tests", "several_hosts_job.py")
TIMEOUT = 300  # seconds for each set of processes; the whole test is bounded by 2 × 2 × TIMEOUT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(BACKEND != "jax", reason="runs both engines in subprocesses; once, under JAX")]


def free_ports(count):
    """`count` consecutive loopback ports nobody listens on now."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        try:
            sockets = [socket.create_server(("127.0.0.1", first + i)) for i in range(count)]
        except OSError:
            continue
        for s in sockets:
            s.close()
        return first
    raise RuntimeError("no free loopback ports")


def run_processes(backend, out, num_processes):
    """Start `num_processes` job processes (ids 0..P-1) together; wait for all, killing them all on a timeout."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    port = free_ports(num_processes)
    logs = [(out / f"{backend}_{num_processes}_{i}.out", out / f"{backend}_{num_processes}_{i}.err")
            for i in range(num_processes)]  # files, not pipes: a process never waits on a full pipe
    processes = []
    try:
        for i, (stdout, stderr) in enumerate(logs):
            with open(stdout, "w") as out_file, open(stderr, "w") as err_file:
                processes.append(subprocess.Popen([sys.executable, JOB, str(out), str(i), str(num_processes),
                                                   str(port)], env=env, stdout=out_file, stderr=err_file, cwd=ROOT))
        deadline = time.monotonic() + TIMEOUT
        while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
            if any(p.returncode not in (None, 0) for p in processes):
                break  # one failed: the others would only wait for it
            time.sleep(0.5)
    finally:
        for process in processes:
            process.kill()
            process.wait()
    failed = [(p.returncode, stderr) for p, (_, stderr) in zip(processes, logs) if p.returncode != 0]
    failed.sort(key=lambda failure: failure[0] == -9)  # a process that failed by itself first, then those killed
    assert not failed, f"{backend} process failed ({failed[0][0]}):\n{failed[0][1].read_text()[-3000:]}"
    return [stdout.read_text() for stdout, _ in logs]


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_hosts_step_equals_one_process(backend, tmp_path):
    run_processes(backend, tmp_path, 1)
    outputs = run_processes(backend, tmp_path, 2)
    engine = {"jax": "keras.distribution.DataParallel on 2 CPU devices, 2 hosts",
              "tensorflow": "tf.distribute.MultiWorkerMirroredStrategy on 2 CPU devices, 2 hosts"}[backend]
    assert all(engine in output for output in outputs), outputs
    for job in ("finetune", "distill"):
        reference = np.load(tmp_path / f"{job}_1_0.npz")
        arrays = [reference[key] for key in reference.files]
        half = len(arrays) // 2
        start, expected = arrays[:half], arrays[half:]
        assert largest_difference(start, expected) > 1e-2  # the step moved them
        for process in range(2):
            result = np.load(tmp_path / f"{job}_2_{process}.npz")
            got = [result[key] for key in result.files][half:]
            difference = largest_difference(expected, got)
            assert difference <= 1e-5, (backend, job, process, difference)
