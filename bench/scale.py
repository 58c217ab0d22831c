"""Examples per second of each training job on 1, 2 and 4 devices and with accumulated micro-batches, through
`kzoo.engines` (JAX: keras.distribution.DataParallel; TensorFlow: tf.distribute.MirroredStrategy).

Jobs, on one global batch of --batch-size x --sequence-length random token ids (random weights; what is timed
is the step, not what it learns):
  finetune   TextClassifier.fit (3 classes)
  distill    Distiller.fit: the same classifier as teacher, a half-depth student, alpha 0.5 + KD
  pretrain   BertPretrainer.fit: MLM (15% of the positions) + NSP

Each setting runs in its own process (a virtual device count is fixed when the backend starts): the CPU split
into N devices (JAX's `jax_num_cpu_devices` / TensorFlow's logical devices), the job's global batch split over
them. On one CPU this measures what the engines cost, not a speed-up: the same cores do the same arithmetic in
N pieces. The goal is an overhead at 4 devices under 15% (examples/s at 4 devices >= 0.85 x at 1).
Accumulation (JAX; TensorFlow refuses it) feeds the same global batch as K micro-batches per update.

Steps are timed to their end, after a warm-up; the median step of each process is taken, and the median over
--rounds processes per setting, the settings interleaved round by round (the machine is shared and noisy).

    .venv/bin/python bench/scale.py                            # both backends, bert_small, batch 32 x 64
    .venv/bin/python bench/scale.py --preset bert_tiny_en_uncased --steps 3 --rounds 1    # a quick check
"""

import argparse
import json
import os
import platform
import statistics
import sys

import workers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

GOAL = 0.15  # the most examples/s may drop from 1 device to 4
JOBS = ("finetune", "distill", "pretrain")


def settings(backends):
    """(backend, devices, accumulate, xla) in the order they run each round. TensorFlow with one device also runs
    without XLA: tf.distribute turns XLA off, so that row parts the cost of XLA off from the strategy's."""
    runs = []
    for backend in backends:
        runs += [(backend, devices, 1, True) for devices in (1, 2, 4)]
        if backend == "jax":
            runs += [(backend, 1, 2, True), (backend, 1, 4, True)]
        else:
            runs += [(backend, 1, 1, False)]
    return runs


def job_data(job, batch_size, sequence_length, vocabulary_size):
    """(x, y, sample_weight) of one global batch for `job`."""
    import numpy as np

    predictions = max(1, int(0.15 * sequence_length)) if job == "pretrain" else 0
    x, mlm = workers.token_batch(batch_size, sequence_length, vocabulary_size, predictions)
    labels = np.arange(batch_size) % (2 if job == "pretrain" else 3)
    if job != "pretrain":
        return x, labels, None
    return x, {"mlm": mlm, "nsp": labels}, np.ones((batch_size, predictions), "float32")


def build(job, preset):
    from kzoo.distill import Distiller, student_backbone
    from kzoo.models import Backbone, BertPretrainer, TextClassifier

    backbone = Backbone.from_preset(preset, dropout=0.0)
    if job == "pretrain":
        return BertPretrainer(backbone)
    classifier = TextClassifier(backbone, num_classes=3)
    if job == "finetune":
        return classifier
    student = TextClassifier(student_backbone(classifier, max(1, backbone.num_layers // 2)), num_classes=3)
    return Distiller(student, classifier, temperature=2.0, alpha=0.5)


def worker(args):
    import keras

    from kzoo.engines import Engine, EngineConfig, virtual_cpu_devices

    if args.devices > 1:
        virtual_cpu_devices(args.devices)
    import tensorflow as tf

    engine = Engine(EngineConfig(devices=args.devices) if args.devices > 1 else
                    EngineConfig(accumulate=args.accumulate))
    micro = engine.micro_batch_size(args.batch_size)
    results = {"engine": engine.description}
    for job in args.jobs.split(","):
        keras.utils.set_random_seed(0)
        with engine.scope():
            model = build(job, args.preset)
            model.compile(optimizer=engine.make_optimizer("adamw", 1e-4, 1000, 10),
                          jit_compile=engine.jit_compile if args.xla else False)
            vocabulary_size = (model.student if job == "distill" else model).backbone.vocabulary_size
            rows = tuple(part for part in job_data(job, args.batch_size, args.sequence_length, vocabulary_size)
                         if part is not None)
            data = tf.data.Dataset.from_tensor_slices(rows).batch(micro).repeat()
            steps = (args.steps + args.warmup) * args.accumulate  # micro-steps
            timer = workers.step_timer()
            model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
        # Whole updates: K micro-steps, the last of which applies the accumulated gradients.
        timed = timer.seconds[args.warmup * args.accumulate:]
        update_seconds = statistics.median(sum(timed[i:i + args.accumulate]) for i in range(0, len(timed),
                                                                                           args.accumulate))
        results[job] = {"examples_per_second": args.batch_size / update_seconds, "seconds_per_update":
                        update_seconds, "xla": bool(model.jit_compile)}  # as Keras resolved it
        print(f"{job}: {results[job]}", file=sys.stderr, flush=True)
    print(json.dumps(results))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--accumulate", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--no-xla", dest="xla", action="store_false", help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--preset", default="bert_small_en_uncased")
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch")
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6, help="timed updates per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed updates first (compiling)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "scale.json"))
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    shared = ["--jobs", args.jobs, "--preset", args.preset, "--batch-size", str(args.batch_size),
              "--sequence-length", str(args.sequence_length), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    runs = settings(args.backends.split(","))
    measured = {run: [] for run in runs}
    engines = {}
    for round_index in range(args.rounds):
        for run in runs:
            backend, devices, accumulate, xla = run
            label = f"{backend} devices={devices} accumulate={accumulate}{'' if xla else ' no XLA'}"
            result = workers.run_worker(__file__, backend, shared + ["--devices", str(devices), "--accumulate",
                                                                     str(accumulate)] + ([] if xla else ["--no-xla"]),
                                        label)
            engines[run] = result.pop("engine") + ("" if xla else " (compiled without XLA)")
            measured[run].append(result)
            print(f"round {round_index + 1} {label}: " + ", ".join(
                f"{job} {r['examples_per_second']:.1f}/s" for job, r in result.items()), flush=True)

    results, rows = [], []
    for (backend, devices, accumulate, asked), rounds in measured.items():
        anchor = measured[(backend, 1, 1, True)]
        for job in args.jobs.split(","):
            rate = statistics.median(r[job]["examples_per_second"] for r in rounds)
            relative = rate / statistics.median(r[job]["examples_per_second"] for r in anchor)
            xla = rounds[0][job]["xla"]
            results.append({"backend": backend, "devices": devices, "accumulate": accumulate, "xla": xla, "job": job,
                            "examples_per_second": rate, "relative_to_one_device": relative,
                            "rounds": [r[job]["examples_per_second"] for r in rounds],
                            "engine": engines[(backend, devices, accumulate, asked)]})
            rows.append((backend, job, devices, accumulate, xla, rate, relative))
    print(f"\nExamples/s per job, {args.preset}, global batch {args.batch_size} x {args.sequence_length}, median of "
          f"{args.rounds} rounds x {args.steps} steps ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})")
    print(f"{'backend':11} {'job':9} {'devices':>7} {'accumulate':>10} {'XLA':>4} {'examples/s':>10} "
          f"{'vs 1 device':>11}")
    for backend, job, devices, accumulate, xla, rate, relative in sorted(rows, key=lambda row: row[:2]):
        verdict = ""
        if devices == 4:
            verdict = "(goal met)" if relative >= 1 - GOAL else "(goal missed)"
        print(f"{backend:11} {job:9} {devices:7d} {accumulate:10d} {'on' if xla else 'off':>4} {rate:10.1f} "
              f"{relative:10.2f}x {verdict}")
    workers.write_results({"config": vars(args), "goal_overhead_at_4_devices": GOAL, "results": results}, args.out)


if __name__ == "__main__":
    main()
