"""Re-score a `kzoo finetune` classifier (its `OUT/best/` folder) on the same held-out test split, in fp32 and after
Keras int8 quantization: accuracy, macro-F1, weights-file size and predict time, side by side.

    KERAS_BACKEND=jax python experiments/int8_scores.py --best runs/tweets/best --data $(python -c \
        "from kzoo.data.labelled_files import tweets_csv; print(tweets_csv())") --label-field sentiment \
        --where 'confidence>=0.8' --encoding-errors replace
"""

import argparse
import json
import os
import tempfile
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--best", required=True, help="a best/ folder written by kzoo finetune --task classify")
    parser.add_argument("--data", required=True)
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--label-field", default="label")
    parser.add_argument("--where")
    parser.add_argument("--encoding-errors", default="strict")
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", help="JSON file for the scores (default: beside --best)")
    args = parser.parse_args()

    from kzoo.data.labelled_files import column, read_rows, split_rows
    from kzoo.models import TextClassifier
    from kzoo.recipes.finetune_tasks import TASKS
    from kzoo.table import format_table

    rows = read_rows(args.data, where=args.where, encoding_errors=args.encoding_errors)
    train_rows, test_rows = split_rows(rows, args.test_share, args.seed)  # the split kzoo finetune used
    texts = [str(t) for t in column(test_rows, args.text_field, args.data)]
    labels = [str(v) for v in column(test_rows, args.label_field, args.data)]
    train_labels = [str(v) for v in column(train_rows, args.label_field, args.data)]
    model = TextClassifier.from_preset(args.best)
    task = TASKS["classify"]
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("fp32", "int8"):
            if name == "int8":
                model.quantize("int8")
            weights = os.path.join(scratch, f"{name}.weights.h5")
            model.save_weights(weights)
            model.predict_labels(texts[:64], batch_size=args.batch_size)  # compile outside the timing
            start = time.perf_counter()
            predicted = model.predict_labels(texts, batch_size=args.batch_size)
            seconds = time.perf_counter() - start
            results[name] = {**task.score(predicted, labels, train_labels, model.label_names),
                             "predict_seconds": seconds, "weights_megabytes": os.path.getsize(weights) / 2**20}
    rows = [[name, f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}", f"{r['majority_baseline']:.4f}",
             f"{r['weights_megabytes']:.1f}", f"{r['predict_seconds']:.1f}"] for name, r in results.items()]
    print(f"{len(texts):,} held-out examples of {args.data}")
    print(format_table(["model", "accuracy", "macro_f1", "majority_baseline", "weights MB", "predict s"], rows))
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.best)), "int8_scores.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
