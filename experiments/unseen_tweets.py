"""Score saved tweet classifiers on the tweets none of them trained on: annotator confidence below 0.8.

`kzoo finetune` / `kzoo distill` on the tweets use the 18,230 rows with confidence ≥ 0.8 (train, validation and
test). The other rows are labelled too, by less sure annotators; rows whose text also appears among the
confidence ≥ 0.8 rows are dropped, so no model here has seen any remaining text. A larger second test set: the
3,646-row test split can only resolve differences of about half a point, this one about four times as many rows.
Models distilled with a transfer set on these rows (`--transfer-where 'confidence<0.8'`) saw their texts and must
not be scored here.

    python experiments/unseen_tweets.py --out runs/unseen_tweets.json --models teacher=runs/tweets_teacher/best \
        distilled=runs/tweets_distill/best hard_labels=runs/tweets_distill/hard_labels/best \
        --pairs distilled:hard_labels

Writes each model's accuracy and macro-F1, and for each `--pairs A:B` the paired difference A − B on the same rows
(95% bootstrap interval, exact McNemar p). `--pairs A1,A2:B1,B2` pools training runs (e.g. `kzoo distill
--training-seed`): run i of A against run i of B, the difference of their mean accuracies. `--test-split` scores
the 3,646-row test split of `kzoo finetune` / `kzoo distill` (their default shares, `--seed`) instead.
"""

import argparse
import json
import os
import time

from kzoo.atomic import atomic_file
from kzoo.data.labelled_files import read_rows, tweets_csv
from kzoo.evaluation import describe_paired, paired_accuracy_difference
from kzoo.models import TextClassifier
from kzoo.recipes.finetune import FinetuneConfig, load_splits
from kzoo.recipes.finetune_tasks import TASKS


def unseen_rows(config, where):
    """(texts, labels) of the rows satisfying `where` whose text is in no row of `config.where` (the seen rows)."""
    task = TASKS["classify"]
    seen = set(task.texts(read_rows(config.data, where=config.where, encoding_errors=config.encoding_errors), config))
    texts, labels = task.read(read_rows(config.data, where=where, encoding_errors=config.encoding_errors), config)
    kept = [(t, y) for t, y in zip(texts, labels) if t not in seen]
    return [t for t, _ in kept], [y for _, y in kept], len(texts) - len(kept)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="NAME=FOLDER (a kzoo classifier preset)")
    parser.add_argument("--pairs", nargs="*", default=[],
                        help="A:B (or A1,A2:B1,B2: runs of each), names from --models: paired A − B")
    parser.add_argument("--where", help="the rows to score (default: confidence<0.8); not with --test-split")
    parser.add_argument("--seen-where", default="confidence>=0.8", help="the rows the models were trained/tested on")
    parser.add_argument("--test-split", action="store_true", help="score the test split of the --seen-where rows "
                        "(kzoo distill's default shares) instead of the unseen rows")
    parser.add_argument("--seed", type=int, default=0, help="with --test-split: the models' kzoo distill --seed")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=128, help="as kzoo distill's default")
    parser.add_argument("--out", required=True, help="a .json file")
    args = parser.parse_args()
    if args.test_split and args.where:
        parser.error("--where picks unseen rows to score; --test-split scores the test split of --seen-where.")
    malformed = [spec for spec in args.models if "=" not in spec]
    if malformed:
        parser.error(f"--models {malformed}: give NAME=FOLDER.")
    folders = dict(spec.split("=", 1) for spec in args.models)
    pairs = {}
    for pair in args.pairs:
        sides = [side.split(",") for side in pair.split(":")]
        if len(sides) != 2 or len(sides[0]) != len(sides[1]) or any(n not in folders for side in sides for n in side):
            parser.error(f"--pairs {pair!r}: give A:B (or A1,A2:B1,B2, as many runs each side) with names from "
                         f"--models ({sorted(folders)}).")
        pairs[pair.replace(":", "-")] = sides

    task = TASKS["classify"]
    config = FinetuneConfig(task="classify", data=tweets_csv(), source="", out="", label_field="sentiment",
                            where=args.seen_where, encoding_errors="replace", seed=args.seed)
    if args.test_split:
        _, _, (texts, labels), _ = load_splits(config, task)
        results = {"split": "test", "seen_where": args.seen_where, "seed": config.seed}
    else:
        where = args.where or "confidence<0.8"
        texts, labels, dropped = unseen_rows(config, where)
        print(f"{len(texts):,} rows where {where} ({dropped:,} dropped: their text is also a row where "
              f"{args.seen_where})")
        results = {"split": "unseen", "where": where, "seen_where": args.seen_where, "dropped": dropped}
    results.update(rows=len(texts), models={}, pairs={})
    correct = {}
    for name, folder in folders.items():
        model = TextClassifier.from_preset(folder, sequence_length=args.sequence_length)
        unknown = sorted(set(labels) - set(model.label_names))
        if unknown:
            raise ValueError(f"{folder} predicts {model.label_names}; the rows also have label(s) {unknown}.")
        start = time.perf_counter()
        predicted = task.predict(model, texts, args.batch_size)
        correct[name] = task.correct(predicted, labels)
        # The majority baseline here is these rows' own majority (no training labels to take it from).
        results["models"][name] = {"folder": folder, **task.score(predicted, labels, labels, model.label_names),
                                   "predict_seconds": time.perf_counter() - start}
        print(f"{name:>14}: accuracy {results['models'][name]['accuracy']:.4f}, macro-F1 "
              f"{results['models'][name]['macro_f1']:.4f} ({folder})")
    for key, (a, b) in pairs.items():
        results["pairs"][key] = paired_accuracy_difference([correct[n] for n in a], [correct[n] for n in b])
        runs = f" ({len(a)} runs each; counts over runs)" if len(a) > 1 else ""
        print(f"{key}{runs}: {describe_paired(results['pairs'][key], 'tweets')}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with atomic_file(args.out) as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
