"""Distil a fine-tuned text classifier into a smaller student: fewer layers, trained on the teacher's soft labels.

--teacher is a classifier folder: classify_csv.py's --out (the default, runs/classifier) or `kzoo finetune`'s
OUT/best. The student starts from the teacher's embeddings and evenly spread layers, and trains on
0.5 x cross-entropy with the labels + 0.5 x T^2 KL(teacher || student) at temperature 2, on the same CSV, rows and
split as classify_csv.py (same --data, --max-rows and --seed), so both are scored on the same held-out rows.
The student is saved to --out with its tokenizer; the last line printed is a JSON summary. `kzoo distill` is the
one-command form (with `kzoo finetune`'s split), and also times both models.

    python examples/distill_classifier.py --teacher runs/classifier --data my.csv --label-field label
    python examples/distill_classifier.py            # after classify_csv.py: the tweets, a 3-layer student
    python examples/distill_classifier.py --tiny     # after classify_csv.py --tiny: a 1-layer student, seconds
"""

import json
import sys

import numpy as np
from classify_csv import arguments, parse, read_csv, split


def accuracy(model, texts, labels):
    return float(np.mean(np.array(model.predict_labels(texts)) == np.array(labels)))


def main():
    parser = arguments(__doc__.splitlines()[0], "runs/student", model=False)
    parser.add_argument("--teacher", default="runs/classifier", help="a fine-tuned TextClassifier folder")
    parser.add_argument("--student-layers", type=int, help="default: half the teacher's")
    args = parse(parser)
    (texts, labels), (test_texts, test_labels) = split(*read_csv(args.data, args.text_field, args.label_field),
                                                       args.seed, args.max_rows)
    import keras

    from kzoo.distill import Distiller, init_student, student_backbone
    from kzoo.models import TextClassifier

    keras.utils.set_random_seed(args.seed)
    teacher = TextClassifier.from_preset(args.teacher)
    layers = args.student_layers or max(1, teacher.backbone.num_layers // 2)
    student = TextClassifier(student_backbone(teacher, num_layers=layers), label_names=teacher.label_names,
                             preprocessor=teacher.preprocessor)
    init_student(student, teacher)  # embeddings, evenly spread teacher layers, pooler and head
    distiller = Distiller(student, teacher, temperature=2.0, alpha=0.5)
    distiller.compile(optimizer=keras.optimizers.AdamW(args.learning_rate))
    distiller.fit(texts, labels, validation_data=(test_texts, test_labels), epochs=args.epochs,
                  batch_size=args.batch_size, verbose=2)
    distiller.save_to_preset(args.out, overwrite=True)  # the student alone, with its tokenizer
    summary = {}
    for name, model in (("teacher", teacher), ("student", student)):
        summary[name] = {"accuracy": accuracy(model, test_texts, test_labels), "layers": model.backbone.num_layers,
                         "parameters": model.count_params()}
        print(f"{name}: {model.backbone.num_layers} layers, {model.count_params():,} parameters, test accuracy "
              f"{summary[name]['accuracy']:.4f} on {len(test_texts)} rows")
    print(f"student in {args.out}")
    print(json.dumps(summary))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
