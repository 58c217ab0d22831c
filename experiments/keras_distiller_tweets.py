"""Keras' own `keras.distillation.Distiller` on the same tweets task as `kzoo distill`, for comparison.

Same teacher, same split, same student (3 layers initialised from teacher layers [0, 2, 5]), same optimizer,
schedule, temperature, hard-label weight and epochs; the best epoch by validation accuracy is scored on the
test split. Keras' Distiller takes token ids only, so the texts go in as kzoo's length-bucketed batches.

    python experiments/keras_distiller_tweets.py --teacher runs/tweets_teacher/best --out runs/keras_distiller
"""

import argparse
import json
import os
import time

import keras
import numpy as np

from kzoo.models import TextClassifier
from kzoo.train.distill_run import DistillConfig, _make_student
from kzoo.train.finetune import load_splits
from kzoo.train.finetune_tasks import TASKS
from kzoo.train.labelled_data import tweets_csv
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
    args = parser.parse_args()
    config = DistillConfig(task="classify", data=tweets_csv(), source=args.teacher, out=args.out,
                           label_field="sentiment", where="confidence>=0.8", encoding_errors="replace",
                           student_layers=args.student_layers, epochs=args.epochs, learning_rate=args.learning_rate,
                           max_train_examples=args.max_train_examples)
    task = TASKS["classify"]
    (train_x, train_y), (val_x, val_y), (test_x, test_y), label_names = load_splits(config, task)
    teacher = TextClassifier.from_preset(args.teacher)
    keras.utils.set_random_seed(config.seed)
    student, layers = _make_student(config, teacher)
    distiller = keras.distillation.Distiller(
        teacher=teacher, student=student, student_loss_weight=args.alpha,
        distillation_losses=keras.distillation.LogitsDistillation(temperature=args.temperature))
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
    scores = task.score(student.predict_labels(test_x), test_y, train_y, label_names)
    result = {"implementation": "keras.distillation.Distiller", "keras": keras.__version__,
              "backend": keras.backend.backend(), "student_layers": layers, "epochs": args.epochs,
              "temperature": args.temperature, "student_loss_weight": args.alpha, "train_seconds": seconds,
              "best_validation_accuracy": keep.best, **scores}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
