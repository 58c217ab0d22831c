"""Training speed: kzoo's BertPretrainer.fit against keras-hub's BertMaskedLM.fit, same backend and config.

Each (implementation, backend) runs in its own process, in alternating rounds so that machine noise hits both
sides alike. Every process builds the same synthetic masked batches (numpy seed 0), runs an untimed warm-up
`fit` (which includes compilation), then times one `fit` of --steps steps, step by step. Prints tokens per
second per side (from the median step), the speed-up kzoo / keras-hub (goal: >= 1.2x), median over rounds,
and writes JSON.
kzoo trains MLM + NSP (its BertPretrainer has the NSP head); keras-hub's BertMaskedLM trains MLM only.
Both compute the MLM logits at the masked positions only; kzoo also computes its last encoder layer only there
(and at [CLS] for NSP), which gives the same outputs (tests/test_training.py) for less work.

    .venv/bin/python bench/train.py                       # 4 layers x 256, TF and JAX, 32 x 128, 20 steps
    .venv/bin/python bench/train.py --backends jax --steps 50 --rounds 3
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import workers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

GOAL = 1.2
JIT_COMPILE = "auto"  # Keras' default, the same on both sides
CLS, SEP, MASK = 2, 3, 4
WORKER_FLAGS = ("batch_size", "sequence_length", "steps", "warmup_steps", "vocabulary_size", "dropout",
                "max_predictions")  # forwarded to each worker process


def synthetic_data(args):
    """Full-length [CLS] ... [SEP] rows, two segments, `max_predictions` distinct masked positions per row."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows, seq, preds = args.batch_size * (args.warmup_steps + args.steps), args.sequence_length, args.max_predictions
    tokens = rng.integers(5, args.vocabulary_size, (rows, seq)).astype("int32")
    tokens[:, 0], tokens[:, -1] = CLS, SEP
    positions = np.sort(np.stack([rng.choice(np.arange(1, seq - 1), preds, replace=False) for _ in range(rows)]),
                        axis=1).astype("int32")
    mask_ids = np.take_along_axis(tokens, positions, axis=1)
    np.put_along_axis(tokens, positions, MASK, axis=1)
    segments = np.zeros((rows, seq), "int32")
    segments[:, seq // 2:] = 1
    x = {"token_ids": tokens, "segment_ids": segments, "padding_mask": np.ones((rows, seq), "int32"),
         "mask_positions": positions}
    nsp_labels = rng.integers(0, 2, (rows,)).astype("int32")
    return x, mask_ids, np.ones((rows, preds), "float32"), nsp_labels


def build(impl, args):
    import keras

    config = dict(vocabulary_size=args.vocabulary_size, num_layers=4, num_heads=4, hidden_dim=256,
                  intermediate_dim=1024, max_sequence_length=512, dropout=args.dropout)
    optimizer = keras.optimizers.AdamW(1e-4)
    if impl == "kzoo":
        from kzoo.convert.keras_hub_io import _KERAS_HUB_ACTIVATION
        from kzoo.models import BertBackbone, BertPretrainer

        # keras-hub's GELU variant (tanh) in the encoder, as bench/infer.py does.
        model = BertPretrainer(BertBackbone(**config, activation=_KERAS_HUB_ACTIVATION["BertBackbone"]))
        model.compile(optimizer=optimizer, jit_compile=JIT_COMPILE)  # loss and metrics are built in
        return model
    import keras_hub

    model = keras_hub.models.BertMaskedLM(keras_hub.models.BertBackbone(**config), preprocessor=None)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=["sparse_categorical_accuracy"], jit_compile=JIT_COMPILE)
    return model


def worker(impl, args):
    import keras
    import tensorflow as tf

    x, mask_ids, mask_weights, nsp_labels = synthetic_data(args)
    y = {"mlm": mask_ids, "nsp": nsp_labels} if impl == "kzoo" else mask_ids
    ds = tf.data.Dataset.from_tensor_slices((x, y, mask_weights))
    ds = ds.batch(args.batch_size, drop_remainder=True).repeat()
    model = build(impl, args)
    model.fit(ds, steps_per_epoch=args.warmup_steps, epochs=1, verbose=0, shuffle=False)  # compile + warm caches
    timer = workers.step_timer()
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    seconds = time.perf_counter() - start
    step_seconds = statistics.median(timer.seconds)
    print(json.dumps({"seconds": seconds, "step_seconds": timer.seconds, "median_step_seconds": step_seconds,
                      "tokens_per_s": args.batch_size * args.sequence_length / step_seconds,
                      "params": int(model.count_params()), "jit_compile_resolved": bool(model.jit_compile),
                      "keras": keras.__version__}))


def run_worker(impl, backend, args):
    flags = [f"--{name.replace('_', '-')}={getattr(args, name)}" for name in WORKER_FLAGS]
    return workers.run_worker(__file__, backend, [impl, *flags], f"{impl}/{backend}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first, compilation included")
    parser.add_argument("--rounds", type=int, default=2, help="alternating kzoo/keras-hub processes per backend")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--max-predictions", type=int, default=20, help="masked positions per sequence")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "train.json"), help="output path")
    parser.add_argument("--worker", choices=["kzoo", "keras_hub"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args)

    from kzoo.table import format_table

    headers = ["backend", "kzoo tokens/s", "keras-hub tokens/s", "speed-up", f"goal >={GOAL}x"]
    measurements, summary, rows = [], [], []
    for backend in [b for item in args.backends for b in item.split(",")]:
        tokens = {"kzoo": [], "keras_hub": []}
        for round_index in range(args.rounds):
            order = ("kzoo", "keras_hub") if round_index % 2 == 0 else ("keras_hub", "kzoo")
            for impl in order:
                record = run_worker(impl, backend, args)
                measurements.append(dict(record, backend=backend, impl=impl, round=round_index))
                tokens[impl].append(record["tokens_per_s"])
        kzoo_tps, hub_tps = statistics.median(tokens["kzoo"]), statistics.median(tokens["keras_hub"])
        speedup = kzoo_tps / hub_tps
        summary.append({"backend": backend, "kzoo_tokens_per_s": kzoo_tps, "keras_hub_tokens_per_s": hub_tps,
                        "speedup_kzoo_over_keras_hub": speedup, "goal_met": speedup >= GOAL})
        rows.append([backend, f"{kzoo_tps:,.0f}", f"{hub_tps:,.0f}", f"{speedup:.2f}x",
                     "met" if speedup >= GOAL else "not met"])
        print(format_table(headers, rows[-1:]), flush=True)
    print(f"\nfp32 training, batch {args.batch_size} x seq {args.sequence_length}, {args.max_predictions} masked "
          f"positions per row, dropout {args.dropout}, jit_compile={JIT_COMPILE}; median of {args.rounds} "
          f"round(s) of the median of {args.steps} timed steps after {args.warmup_steps} warm-up step(s).\n"
          "kzoo: BertPretrainer (MLM + NSP; last layer at the masked positions and [CLS] only); "
          "keras-hub: BertMaskedLM (MLM only).\n")
    print(format_table(headers, rows))
    config = {name: getattr(args, name) for name in WORKER_FLAGS + ("rounds",)}
    config.update(num_layers=4, num_heads=4, hidden_dim=256, intermediate_dim=1024, dtype="float32",
                  jit_compile=JIT_COMPILE, optimizer="AdamW(1e-4)")
    machine = {"processor": platform.processor(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version()}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"config": config, "machine": machine, "summary": summary, "measurements": measurements}, f,
                  indent=2)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
