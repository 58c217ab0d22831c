"""Inference speed: kzoo against keras-hub's backbones on the same backend and config.

Each (implementation, architecture, backend) runs in its own process, in alternating rounds so that
machine noise hits both sides alike. Prints a table of seconds per batch and the ratio keras-hub / kzoo
(> 1 means kzoo is faster) and writes JSON.

    .venv/bin/python bench/infer.py                       # BERT/DistilBERT/ALBERT base, TF and JAX, 8 x 128
    .venv/bin/python bench/infer.py --archs bert --backends jax --repeats 5
"""

import argparse
import json
import os
import statistics
import sys
import time

import workers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Same architecture on both sides; kzoo runs with keras-hub's GELU variant for each (tanh for BERT and ALBERT,
# exact for DistilBERT), taken from kzoo.convert's table.
ARCHS = {
    "bert": ("BertBackbone", dict(vocabulary_size=30522, num_layers=12, num_heads=12, hidden_dim=768,
                                  intermediate_dim=3072, max_sequence_length=512)),
    "distil_bert": ("DistilBertBackbone", dict(vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=768,
                                               intermediate_dim=3072, max_sequence_length=512)),
    "albert": ("AlbertBackbone", dict(vocabulary_size=30000, num_layers=12, num_heads=12, embedding_dim=128,
                                      hidden_dim=768, intermediate_dim=3072, max_sequence_length=512)),
}


def build(impl, arch):
    class_name, config = ARCHS[arch]
    if impl == "kzoo":
        from kzoo import models
        from kzoo.convert.keras_hub_io import _KERAS_HUB_ACTIVATION

        return getattr(models, class_name)(**config, dropout=0.0, activation=_KERAS_HUB_ACTIVATION[class_name])
    import keras_hub

    return getattr(keras_hub.models, class_name)(**config, dropout=0.0)


def worker(impl, arch, batch_size, sequence_length, repeats):
    import numpy as np

    model = build(impl, arch)
    rng = np.random.default_rng(0)
    inputs = {
        "token_ids": rng.integers(1, 30000, (batch_size, sequence_length)).astype("int32"),
        "padding_mask": np.ones((batch_size, sequence_length), "int32"),
    }
    if "segment_ids" in {t.name for t in model.inputs} or arch != "distil_bert":
        inputs["segment_ids"] = np.zeros((batch_size, sequence_length), "int32")
    for _ in range(2):  # compile + warm caches
        model.predict_on_batch(inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(inputs)
        times.append(time.perf_counter() - start)
    print(json.dumps({"times": times, "params": int(model.count_params())}))


def run_worker(impl, arch, backend, args):
    return workers.run_worker(__file__, backend, [impl, "--archs", arch, "--batch-size", str(args.batch_size),
                                                  "--sequence-length", str(args.sequence_length),
                                                  "--repeats", str(args.repeats)], f"{impl}/{arch}/{backend}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default="bert,distil_bert,albert")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=6, help="timed batches per process")
    parser.add_argument("--rounds", type=int, default=2, help="alternating kzoo/keras-hub processes per pair")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "infer.json"))
    parser.add_argument("--worker", choices=["kzoo", "keras_hub"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.archs, args.batch_size, args.sequence_length, args.repeats)

    sys.path.insert(0, ROOT)
    from kzoo.table import format_table

    results, rows = [], []
    for backend in args.backends.split(","):
        for arch in args.archs.split(","):
            times = {"kzoo": [], "keras_hub": []}
            params = {}
            for _ in range(args.rounds):
                for impl in ("kzoo", "keras_hub"):
                    record = run_worker(impl, arch, backend, args)
                    times[impl] += record["times"]
                    params[impl] = record["params"]
            kzoo_s, hub_s = statistics.median(times["kzoo"]), statistics.median(times["keras_hub"])
            results.append({"backend": backend, "arch": arch, "batch_size": args.batch_size,
                            "sequence_length": args.sequence_length, "kzoo_s_per_batch": kzoo_s,
                            "keras_hub_s_per_batch": hub_s, "ratio_keras_hub_over_kzoo": hub_s / kzoo_s,
                            "params": params, "samples": {k: len(v) for k, v in times.items()}})
            rows.append([backend, arch, f"{kzoo_s:.3f}", f"{hub_s:.3f}", f"{hub_s / kzoo_s:.2f}x"])
            print(format_table(["backend", "arch", "kzoo s/batch", "keras-hub s/batch", "speed-up"], rows[-1:]),
                  flush=True)
    print(f"\nfp32, batch {args.batch_size} x seq {args.sequence_length}, median of "
          f"{args.rounds} x {args.repeats} batches per side\n")
    print(format_table(["backend", "arch", "kzoo s/batch", "keras-hub s/batch", "speed-up"], rows))
    workers.write_results(results, args.out)


if __name__ == "__main__":
    main()
