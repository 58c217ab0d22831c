"""Keras' own `keras.distillation.Distiller` on the same tweets task as `kzoo distill`, for comparison.

Same teacher, same split, same student (3 layers initialised from teacher layers [0, 2, 5]), same optimizer,
schedule, temperature, hard-label weight and epochs; the best epoch by validation accuracy is scored on the
test split. Keras' Distiller takes token ids only, so the texts go in as kzoo's length-bucketed batches: the same
batches in the same order as `kzoo distill` (same seed), from the same initial student.

Keras' KD loss is `LogitsDistillation(T, loss=keras.losses.KLDivergence())`: T²·KL of the softmaxes, the objective
kzoo's Distiller uses (tests/test_distill.py checks they take the same steps). `--keras-default-loss` keeps
`LogitsDistillation`'s default `loss="kl_divergence"` instead, which in Keras 3.15 fails its own
`isinstance(loss, KLDivergence)` check and applies the KL to the scaled logits, clipped to [1e-7, 1], with no
softmax and no T².

    python experiments/keras_distiller_tweets.py --teacher runs/tweets_teacher/best --out runs/keras_distiller \
        --compare runs/tweets_distill/best

The student lands in OUT/best; each `--compare` student (e.g. kzoo distill's OUT/best) is scored on the same test
rows, with the paired difference (it − Keras'), its 95% interval and McNemar's p.
"""

import argparse
import json
import os
import time

import keras
import numpy as np

from kzoo.data.labelled_files import tweets_csv
from kzoo.evaluation import paired_accuracy_difference
from kzoo.models import TextClassifier
from kzoo.recipes.distill import DistillConfig, make_student
from kzoo.recipes.finetune import load_splits
from kzoo.recipes.finetune_tasks import TASKS
from kzoo.train.optim import make_optimizer


class KeepBest(keras.callbacks.Callback):
    def __init__(self, student):
        super().__init__()
        self.student, self.best, self.weights = student, -1.0, None

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_accuracy"] > self.best:
            self.best, self.weights = logs["val_accuracy"], self.student.get_weights()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--student-layers", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--max-train-examples", type=int)
    parser.add_argument("--keras-default-loss", action="store_true",
                        help="LogitsDistillation's default loss (KL on clipped logits in Keras 3.15), "
                             "not KLDivergence()")
    parser.add_argument("--compare", nargs="*", default=[], help="kzoo student folders to score on the same rows")
    args = parser.parse_args()
    config = DistillConfig(task="classify", data=tweets_csv(), source=args.teacher, out=args.out,
                           label_field="sentiment", where="confidence>=0.8", encoding_errors="replace",
                           student_layers=args.student_layers, epochs=args.epochs, learning_rate=args.learning_rate,
                           max_train_examples=args.max_train_examples)
    task = TASKS["classify"]
    (train_x, train_y), (val_x, val_y), (test_x, test_y), label_names = load_splits(config, task)
    teacher = TextClassifier.from_preset(args.teacher)
    keras.utils.set_random_seed(config.training_seed)
    student, layers = make_student(config, teacher)
    distiller = keras.distillation.Distiller(
        teacher=teacher, student=student, student_loss_weight=args.alpha,
        distillation_losses=keras.distillation.LogitsDistillation(
            temperature=args.temperature, **({} if args.keras_default_loss else {"loss": keras.losses.KLDivergence()})))
    steps = args.epochs * -(-len(train_y) // config.batch_size)
    distiller.compile(optimizer=make_optimizer("adamw", args.learning_rate, steps, int(config.warmup * steps)),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    train = student._for_keras(student.text_batches(train_x, train_y, batch_size=config.batch_size, shuffle=True))
    validation = student._for_keras(student.text_batches(val_x, val_y, batch_size=config.batch_size))
    keep = KeepBest(student)
    start = time.perf_counter()
    distiller.fit(train, validation_data=validation, epochs=args.epochs, callbacks=[keep], verbose=2)
    seconds = time.perf_counter() - start
    student.set_weights(keep.weights)
    os.makedirs(args.out, exist_ok=True)
    student.save_to_preset(os.path.join(args.out, "best"), overwrite=True)
    predicted = student.predict_labels(test_x)
    scores = task.score(predicted, test_y, train_y, label_names)
    correct = task.correct(predicted, test_y)
    compared = {}
    for folder in args.compare:
        other = task.predict(TextClassifier.from_preset(folder), test_x, config.batch_size)
        compared[folder] = {"accuracy": task.score(other, test_y, train_y, label_names)["accuracy"],
                            "minus_keras": paired_accuracy_difference(task.correct(other, test_y), correct)}
    result = {"implementation": "keras.distillation.Distiller", "keras": keras.__version__,
              "backend": keras.backend.backend(), "student_layers": layers, "epochs": args.epochs,
              "distillation_loss": "default 'kl_divergence'" if args.keras_default_loss else "KLDivergence()",
              "temperature": args.temperature, "student_loss_weight": args.alpha, "train_seconds": seconds,
              "best_validation_accuracy": keep.best, **scores, "compared": compared}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
