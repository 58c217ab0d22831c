"""`kzoo distill`: a fine-tuned teacher classifier → a shallower student, distilled on the teacher's data.

Everything lands in one output folder:
    best/              the distilled student (kzoo preset + tokenizer) at its best validation accuracy
    hard_labels/best/  with --hard-label-baseline: the same student trained on the labels alone
    distilled.csv      one row per epoch of the distillation (hard_labels.csv: of the baseline)
    metrics.json       held-out scores of teacher, student (and baseline), the ratio, parameter counts, speeds
"""

import dataclasses
import json
import os
import time

from kzoo.evaluation.paired import describe_paired, paired_accuracy_difference
from kzoo.recipes.finetune import FinetuneConfig, compile_on, fit_resumably, run_in_engine, timed_predictions


@dataclasses.dataclass
class DistillConfig(FinetuneConfig):
    """`source` is the teacher: a folder written by `kzoo finetune` (its `best/`) or `save_to_preset`."""

    student_layers: int = 3
    student_arch: str | None = None  # None: the teacher's architecture; "distil_bert" from a BERT teacher
    # Where the student's embeddings and evenly spread layers come from. None: the teacher (head included).
    # A general-purpose checkpoint (e.g. the one the teacher was fine-tuned from) gives DistilBERT's task
    # distillation, whose student starts from general-purpose weights; the student's head is then drawn fresh.
    student_init: str | None = None
    temperature: float = 2.0
    alpha: float = 0.5
    kd_weight: float | None = None  # None: 1 − alpha
    cosine_weight: float = 0.0  # the hidden-state loss, 1 − cos at every non-padding token
    # "last": the last layers' hidden states; "spread": each student layer's against the teacher layer at the same
    # spread position (the layers a teacher-initialised student starts from), averaged over the layers.
    cosine_layers: str = "last"
    hard_label_baseline: bool = False
    # A transfer set (classify): unlabelled rows of `transfer_data` (default: `data`) satisfying `transfer_where`;
    # the teacher's soft labels are all the student learns from them (the hard-label baseline never sees them).
    transfer_data: str | None = None
    transfer_where: str | None = None
    learning_rate: float = 1e-4
    speed_batch_size: int = 32
    speed_repeats: int = 20

    def __post_init__(self):
        if self.task not in ("classify", "tokens"):
            raise ValueError(f"kzoo distill distils classify or tokens task models; got task {self.task!r}.")
        if self.cosine_layers not in ("last", "spread"):
            raise ValueError(f"cosine_layers is 'last' or 'spread'; got {self.cosine_layers!r}.")
        if self.cosine_layers == "spread" and not self.cosine_weight:
            raise ValueError("--cosine-layers spread chooses the hidden states of the cosine loss; give it a "
                             "--cosine-weight above 0.")
        if (self.transfer_data or self.transfer_where) and self.task != "classify":
            raise ValueError("A transfer set of unlabelled rows is for classify; tokens distils on labelled rows.")
        super().__post_init__()


def transfer_set(config, held_out, report=print):
    """(texts, or (texts, pairs)) of the transfer set: rows of `config.transfer_data` (default `config.data`)
    satisfying `config.transfer_where`, less any whose text is in `held_out` (a list of the validation and test
    splits' x), so no test example is ever seen through the teacher."""
    from kzoo.data.labelled_files import read_rows
    from kzoo.recipes.finetune_tasks import TASKS

    path = config.transfer_data or config.data
    rows = read_rows(path, where=config.transfer_where, encoding_errors=config.encoding_errors)
    x = TASKS["classify"].texts(rows, config, path)
    examples = _examples(x)
    seen = {example for split in held_out for example in _examples(split)}
    kept = [example for example in examples if example not in seen]
    if not kept:
        raise ValueError(f"No transfer-set row of {path} ({config.transfer_where or 'all rows'}) is left once the "
                         "validation and test texts are removed.")
    report(f"transfer set: {len(kept):,} unlabelled rows of {path}"
           + (f" where {config.transfer_where}" if config.transfer_where else "")
           + f" ({len(examples) - len(kept):,} dropped: their text is in the validation or test split)")
    columns = [list(c) for c in zip(*kept)]
    return tuple(columns) if config.pair_field else columns[0]


def _examples(x):
    """x (a text list, or a (texts, pairs) tuple) as one tuple per example: (text,) or (text, pair)."""
    return list(zip(*x) if isinstance(x, tuple) else zip(x))


def _with_unlabelled(x, extra):
    """Training x followed by the transfer set's (both plain text lists, or both (texts, pairs))."""
    if isinstance(x, tuple):
        return tuple(list(a) + list(b) for a, b in zip(x, extra))
    return list(x) + list(extra)


def init_source(config, teacher):
    """The model the student's weights are copied from: the teacher, or `config.student_init`'s backbone."""
    if config.student_init is None:
        return teacher
    source = type(teacher).from_preset(config.student_init, label_names=teacher.label_names,
                                       sequence_length=config.sequence_length, **config.engine.dtype_options)
    if source.preprocessor is not None and not source.preprocessor.same_vocabulary(teacher.preprocessor):
        raise ValueError(f"--student-init {config.student_init} has another vocabulary than the teacher "
                         f"{config.source}: the student reads the teacher's token ids, so they must match.")
    return source.backbone  # a backbone: init_student copies no head, the student keeps its fresh one


def make_student(config, teacher, source=None):
    """(a fresh student of the teacher's kind, the layers copied into it from `source`; none without one)."""
    from kzoo.distill import init_student, student_backbone

    backbone = student_backbone(teacher, config.student_layers, config.student_arch)
    student = type(teacher)(backbone, label_names=teacher.label_names)
    student.preprocessor = teacher.preprocessor
    return student, ([] if source is None else init_student(student, source))


def distill(config, report=print):
    """Distil per `config`; returns the metrics dict also written to `out/metrics.json`."""
    return run_in_engine(_distill, config, report)


def _distill(config, task, metrics_path, splits, engine, report):
    import keras

    from kzoo.atomic import atomic_file
    from kzoo.distill import Distiller, spread_layers
    from kzoo.table import format_table
    from kzoo.timing import forward_seconds
    from kzoo.train.backup import remove_backup

    (train_x, train_y), (val_x, val_y), (test_x, test_y), label_names = splits
    teacher = task.model_class.from_preset(config.source, sequence_length=config.sequence_length,
                                           **config.engine.dtype_options)
    if teacher.preprocessor is None:
        raise ValueError(f"{config.source} has no tokenizer; kzoo distill reads raw text and needs one.")
    if teacher.label_names != label_names:
        raise ValueError(f"The teacher's labels {teacher.label_names} differ from the data's {label_names}: "
                         f"distil on the data (and --label-field) the teacher was fine-tuned on.")
    keras.utils.set_random_seed(config.training_seed)
    source = init_source(config, teacher)
    student, layers = make_student(config, teacher, source)
    # Weights and dropout seed states: the baseline repeats the student's start and dropout draws exactly, even
    # where loading --student-init has moved the global seed on between the two builds.
    initial_state = [keras.ops.convert_to_numpy(variable.value) for variable in student.variables]
    distill_x, distill_y = train_x, train_y
    if config.transfer_data or config.transfer_where:
        unlabelled = transfer_set(config, [val_x, test_x], report)
        distill_x = _with_unlabelled(train_x, unlabelled)
        distill_y = list(train_y) + [None] * len(_examples(unlabelled))
    report(engine.description)
    origin = "teacher layers" if config.student_init is None else f"layers of {config.student_init}:"
    report(f"teacher {type(teacher.backbone).__name__} ({teacher.backbone.num_layers} layers) → student "
           f"{type(student.backbone).__name__} ({len(layers)} layer{'s' * (len(layers) > 1)} from {origin} "
           f"{layers})")

    runs = {}

    def train(name, model, directory, x, y):
        compile_on(engine, model, config, len(y))
        start = time.perf_counter()
        checkpoint = fit_resumably(model, x, y, (val_x, val_y), config, engine, task, name, directory, report)
        runs[name] = {"train_seconds": time.perf_counter() - start, "best_epoch": checkpoint.best_epoch,
                      "best_validation": checkpoint.best}

    cosine_layers = None
    if config.cosine_layers == "spread":
        cosine_layers = spread_layers(teacher.backbone.num_layers, student.backbone.num_layers)
    distiller = Distiller(student, teacher, temperature=config.temperature, alpha=config.alpha,
                          kd_weight=config.kd_weight, cosine_weight=config.cosine_weight, cosine_layers=cosine_layers)
    train("distilled", distiller, os.path.join(config.out, "best"), distill_x, distill_y)
    student.load_weights(os.path.join(config.out, "best", "model.weights.h5"))
    models = {"teacher": teacher, "distilled": student}
    if config.hard_label_baseline:
        keras.utils.set_random_seed(config.training_seed)
        baseline, _ = make_student(config, teacher)
        for variable, value in zip(baseline.variables, initial_state):
            variable.assign(value)
        train("hard_labels", baseline, os.path.join(config.out, "hard_labels", "best"), train_x, train_y)
        baseline.load_weights(os.path.join(config.out, "hard_labels", "best", "model.weights.h5"))
        models["hard_labels"] = baseline

    batch = teacher.text_batches(test_x[:config.speed_batch_size], batch_size=config.speed_batch_size,
                                 multiple=1)[0][0]
    results, correct = {}, {}
    for name, model in models.items():
        predicted, seconds = timed_predictions(task, model, test_x, config.batch_size)
        correct[name] = task.correct(predicted, test_y)
        results[name] = {**task.score(predicted, test_y, train_y, label_names), "predict_seconds": seconds,
                         "encoder_parameters": model.backbone.count_params(),
                         "layer_parameters": sum(b.count_params() for b in model.backbone.encoder.unique_blocks),
                         "batch_forward_seconds": forward_seconds(model, {k: batch[k] for k in model.input_keys},
                                                                  config.speed_repeats),
                         **runs.get(name, {})}
    teacher_scores, student_scores = results["teacher"], results["distilled"]
    summary = {
        "data": config.data, "where": config.where, "teacher": config.source, "label_names": label_names,
        "examples": {"train": len(train_y), "validation": len(val_y), "test": len(test_y),
                     "transfer": len(distill_y) - len(train_y)},
        "transfer_data": config.transfer_data, "transfer_where": config.transfer_where,
        "student_layers": layers, "student_arch": type(student.backbone).__name__,
        "student_init": config.student_init or "teacher",
        "temperature": config.temperature, "alpha": config.alpha, "kd_weight": distiller.kd_weight,
        "cosine_weight": config.cosine_weight, "cosine_layers": cosine_layers or config.cosine_layers,
        "epochs": config.epochs, "seed": config.seed, "training_seed": config.training_seed,
        "learning_rate": config.learning_rate, "backend": keras.backend.backend(), "engine": engine.description,
        "accuracy_ratio": student_scores["accuracy"] / teacher_scores["accuracy"],
        "encoder_parameter_ratio": student_scores["encoder_parameters"] / teacher_scores["encoder_parameters"],
        "speedup_same_batch": teacher_scores["batch_forward_seconds"] / student_scores["batch_forward_seconds"],
        "speed_batch": {"size": int(batch["token_ids"].shape[0]), "width": int(batch["token_ids"].shape[1])},
        **{name: scores for name, scores in results.items()},
    }
    if "hard_labels" in correct:
        summary["distilled_vs_hard_labels"] = paired_accuracy_difference(correct["distilled"], correct["hard_labels"])
    with atomic_file(metrics_path) as f:
        json.dump(summary, f, indent=2)
    remove_backup(os.path.join(config.out, "backup"))
    rows = [[name, f"{s['accuracy']:.4f}", f"{s['macro_f1']:.4f}", f"{s['encoder_parameters']:,}",
             f"{s['batch_forward_seconds'] * 1000:.1f}", f"{s['predict_seconds']:.1f}"] for name, s in results.items()]
    report(f"\nHeld-out test split ({len(test_y):,} examples; majority baseline "
           f"{teacher_scores['majority_baseline']:.4f}):")
    report(format_table(["model", "accuracy", "macro_f1", "encoder params", "batch ms", "predict s"], rows))
    report(f"student/teacher accuracy {summary['accuracy_ratio']:.1%}, encoder parameters "
           f"{summary['encoder_parameter_ratio']:.1%}, {summary['speedup_same_batch']:.2f}× faster on one batch of "
           f"{summary['speed_batch']['size']}×{summary['speed_batch']['width']} tokens")
    if "distilled_vs_hard_labels" in summary:
        report(f"distilled − hard labels: {describe_paired(summary['distilled_vs_hard_labels'])}")
    report(f"student in {os.path.join(config.out, 'best')}, metrics in {metrics_path}")
    return summary
