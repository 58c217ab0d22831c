"""One SGD step of a fine-tuning job (TextClassifier) and a distillation job (Distiller: α 0.5 + KD + layer-wise
cosine) on several hosts, simulated by processes on 127.0.0.1, for `test_several_hosts.py`. Each process saves
its weights after the step; one process alone (no engine) gives the reference.

    python tests/several_hosts_job.py OUT PROCESS_ID NUM_PROCESSES PORT
        NUM_PROCESSES 1: one process, one device. Otherwise the hosts meet on 127.0.0.1:PORT (JAX), or listen on
        PORT, PORT + 1, ... (TensorFlow needs every worker's address).

Every process reads the same global batch as a tf.data dataset; the engine gives each host its share of it.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from engine_jobs import classifier_job, distiller_job, one_update  # noqa: E402

from kzoo.engines import Engine, EngineConfig  # noqa: E402


def main(out, process_id, num_processes, port):
    if num_processes == 1:
        engine = Engine()
    else:
        hosts = 1 if keras.backend.backend() == "jax" else num_processes
        coordinator = ",".join(f"127.0.0.1:{port + index}" for index in range(hosts))
        engine = Engine(EngineConfig(coordinator=coordinator, num_processes=num_processes, process_id=process_id))
    print(engine.description, flush=True)
    for name, job in (("finetune", classifier_job(False)), ("distill", distiller_job(False))):
        _, start, end = one_update(job, engine)
        np.savez(os.path.join(out, f"{name}_{num_processes}_{process_id}.npz"), *start, *end)


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:]))
