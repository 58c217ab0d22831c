"""`kzoo finetune`: a labelled CSV/JSONL file → a fine-tuned task model, its best checkpoint and `metrics.json`.

Everything lands in one output folder:
    best/          the task model (kzoo preset + tokenizer) at its best validation accuracy (loss: qa, embed)
    metrics.csv    one row per epoch (train and validation loss and accuracy)
    backup/        the training state after each epoch, removed once metrics.json is written
    metrics.json   held-out test scores: the task's `columns` (accuracy, macro_f1, majority_baseline; embed:
                   retrieval), + int8 when asked, timings:
                   the run has finished

A run killed at any moment resumes after its last finished epoch, rerun with the same command, and ends with
the unbroken run's weights (`fit_resumably`).
"""

import dataclasses
import json
import os
import time

from kzoo.engines import EngineConfig
from kzoo.recipes.finetune_tasks import TASKS


@dataclasses.dataclass
class FinetuneConfig:
    task: str
    data: str
    source: str  # a preset name, a kzoo preset folder or a Hugging Face folder (with its tokenizer)
    out: str
    text_field: str | None = None  # None: the task's default (see finetune_tasks: text, tokens, question)
    pair_field: str | None = None
    label_field: str | None = None
    where: str | None = None
    encoding_errors: str = "strict"
    test_share: float = 0.2
    validation_share: float = 0.1  # of the training rows, for checkpoint selection
    seed: int = 0  # the split, and the training unless `training_seed` is set
    # What is random in training (a new head's weights, batch order, dropout): another value replicates a run on the
    # same split. A distilled student's head is the teacher's (when the shapes match), so there only the batches
    # and dropout change.
    training_seed: int | None = None
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup: float = 0.1
    sequence_length: int = 128
    max_train_examples: int | None = None
    max_test_examples: int | None = None  # score only the first N test rows (quick runs; the split stays the same)
    lora_rank: int | None = None
    quantize: str | None = None
    doc_stride: int | None = None  # qa: long contexts in windows sharing this many tokens (None: truncated)
    max_answer_length: int | None = None  # qa: the longest answer in word pieces (None: the model's, 30)
    engine: EngineConfig = dataclasses.field(default_factory=EngineConfig)  # devices, precision, accumulation
    overwrite: bool = False
    verbose: int = 1

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"Unknown task {self.task!r}; kzoo finetune knows {list(TASKS)}.")
        for field, default in TASKS[self.task].fields.items():
            if getattr(self, field) is None:
                setattr(self, field, default)
        if self.quantize not in (None, "int8"):
            raise ValueError(f"quantize must be None or 'int8'; got {self.quantize!r}.")
        for field in ("epochs", "batch_size", "sequence_length", "max_train_examples", "max_test_examples"):
            if getattr(self, field) is not None and getattr(self, field) < 1:
                raise ValueError(f"{field} must be ≥ 1; got {getattr(self, field)}.")
        for field in ("test_share", "validation_share"):
            if not 0 < getattr(self, field) < 1:
                raise ValueError(f"{field} must be between 0 and 1 (a share of the rows); got {getattr(self, field)}.")
        if self.training_seed is None:
            self.training_seed = self.seed
        self.engine.one_host("kzoo finetune and kzoo distill")
        self._check_span_options()

    def _check_span_options(self):
        """--doc-stride and --max-answer-length: for --task qa only, and in range (before any data is read; the
        model checks doc_stride against each question's room for context)."""
        from kzoo.models.question_answerer import check_doc_stride, check_max_answer_length

        for field in ("doc_stride", "max_answer_length"):
            if getattr(self, field) is not None and self.task != "qa":
                raise ValueError(f"--{field.replace('_', '-')} is for --task qa only; got --task {self.task}.")
        check_doc_stride(self.doc_stride)
        if self.max_answer_length is not None:
            check_max_answer_length(self.max_answer_length)


def load_task_model(config, label_names):
    """The task's model on `config.source`'s backbone and tokenizer, in the engine's precision, with LoRA when
    asked."""
    kwargs = {} if label_names is None else {"label_names": label_names}
    kwargs.update({field: getattr(config, field) for field in ("doc_stride", "max_answer_length")
                   if getattr(config, field, None) is not None})  # qa only (FinetuneConfig checks)
    model = TASKS[config.task].model_class.from_preset(config.source, sequence_length=config.sequence_length,
                                                       **kwargs, **config.engine.dtype_options)
    if model.preprocessor is None:
        raise ValueError(f"{config.source} has no tokenizer (vocab.txt, tokenizer.json or spiece.model); "
                         "kzoo finetune reads raw text and needs one.")
    if config.lora_rank:
        model.enable_lora(config.lora_rank)
    return model


def timed_predictions(task, model, x, batch_size):
    start = time.perf_counter()
    predicted = task.predict(model, x, batch_size)
    return predicted, time.perf_counter() - start


def load_splits(config, task, report=print):
    """(train, validation, test) pairs of (x, y) and the label names, split under `config.seed` (the same rows
    for every run with the same data, shares and seed: a teacher and its students see the same test split)."""
    from kzoo.data.labelled_files import read_rows, split_rows

    rows = read_rows(config.data, where=config.where, encoding_errors=config.encoding_errors)
    train_rows, test_rows = split_rows(rows, config.test_share, config.seed)
    train_rows, validation_rows = split_rows(train_rows, config.validation_share, config.seed + 1)
    if config.max_train_examples:
        train_rows = train_rows[:config.max_train_examples]
    if config.max_test_examples:
        test_rows = test_rows[:config.max_test_examples]

    (train_x, train_y), (val_x, val_y), (test_x, test_y) = (task.read(part, config) for part in
                                                            (train_rows, validation_rows, test_rows))
    label_names = task.label_names(train_y)
    unseen = sorted((task.held_out_labels(val_y) | task.held_out_labels(test_y)) - set(label_names or ()))
    if unseen:
        raise ValueError(f"label(s) {unseen} appear in the held-out rows but never in training; the split of "
                         f"{config.data} is too small for its label set.")
    report(f"{config.data}: {len(train_y):,} train / {len(val_y):,} validation / {len(test_y):,} test examples"
           + (f", {len(label_names)} labels" if label_names else ""))

    return (train_x, train_y), (val_x, val_y), (test_x, test_y), label_names


def run_in_engine(body, config, report=print):
    """`body(config, task, metrics_path, splits, engine, report)` inside the engine's scope, with what `start_run`
    gives: the frame of `kzoo finetune` and `kzoo distill`."""
    task, metrics_path, splits, engine = start_run(config, report)
    with engine.scope():
        return body(config, task, metrics_path, splits, engine, report)


def start_run(config, report=print):
    """(task, OUT/metrics.json path, `load_splits`, the `Engine`) for `kzoo finetune` and `kzoo distill`;
    refuses a finished run (its metrics.json exists) unless `config.overwrite`."""
    from kzoo.atomic import remove_stale_staging
    from kzoo.engines import Engine
    from kzoo.train.backup import remove_outputs

    task = TASKS[config.task]
    metrics_path = os.path.join(config.out, "metrics.json")
    if os.path.exists(metrics_path) and not config.overwrite:
        raise FileExistsError(f"{metrics_path} exists: this run has finished. Pass --overwrite to run again.")
    if config.overwrite:  # start over: nothing of an earlier run may be resumed or kept
        remove_outputs(config.out, ("backup", "best", "hard_labels", "metrics.json", "metrics.csv", "distilled.csv",
                                    "hard_labels.csv", "int8.weights.h5"))
    engine = Engine(config.engine)
    engine.micro_batch_size(config.batch_size)  # refuses a batch that does not divide over the devices
    splits = load_splits(config, task, report)
    os.makedirs(config.out, exist_ok=True)
    remove_stale_staging(config.out)
    return task, metrics_path, splits, engine


def compile_on(engine, model, config, examples):
    """Compile `model` on `engine` with AdamW: linear warmup over `config.warmup` of the run's updates, then
    linear decay. Call inside `engine.scope()`."""
    steps = config.epochs * -(-examples // config.batch_size)
    model.compile(optimizer=engine.make_optimizer("adamw", config.learning_rate, steps, int(config.warmup * steps)),
                  jit_compile=engine.jit_compile)


def fit_options(engine, config):
    """`fit`'s keyword arguments shared by `kzoo finetune` and `kzoo distill`: the micro-batch, seed, verbosity."""
    return {"epochs": config.epochs, "batch_size": engine.micro_batch_size(config.batch_size),
            "verbose": config.verbose, "seed": config.training_seed}


def fit_resumably(model, x, y, validation, config, engine, task, name, best_dir, report=print):
    """`model.fit` for a run of `kzoo finetune` or `kzoo distill`, resumable: the best model so far is kept in
    `best_dir`, one row per epoch in OUT/<name>.csv, and a backup after each epoch in OUT/backup/<name>, from
    which a rerun resumes (same batches, dropout draws and best-so-far as the unbroken run). Returns the
    `BestCheckpoint`; remove OUT/backup once the run's results are written."""
    import keras

    from kzoo.train.backup import AtomicBackupAndRestore, BestCheckpoint, run_fingerprint

    log = os.path.join(config.out, f"{name}.csv")
    checkpoint = BestCheckpoint(best_dir, monitor=task.monitor, mode=task.mode)
    backup = AtomicBackupAndRestore(os.path.join(config.out, "backup", name), log=log, stateful=[checkpoint],
                                    fingerprint=run_fingerprint(config), delete_checkpoint=False)
    done = backup.completed_epochs()
    if done:
        report(f"resuming {name} from {backup.backup_dir} after epoch {done} of {config.epochs}")
    model.fit(x, y, validation_data=validation, initial_epoch=done, **fit_options(engine, config),
              callbacks=[checkpoint, keras.callbacks.CSVLogger(log, append=True), backup])  # in this order
    return checkpoint


def finetune(config, report=print):
    """Fine-tune per `config`; returns the metrics dict also written to `out/metrics.json`."""
    return run_in_engine(_finetune, config, report)


def _finetune(config, task, metrics_path, splits, engine, report):
    import keras
    import numpy as np

    from kzoo.atomic import STAGING_PREFIX, atomic_file
    from kzoo.table import format_table
    from kzoo.train.backup import remove_backup

    (train_x, train_y), (val_x, val_y), (test_x, test_y), label_names = splits
    keras.utils.set_random_seed(config.training_seed)
    model = load_task_model(config, label_names)
    compile_on(engine, model, config, task.training_rows(model, train_x, train_y))
    report(engine.description)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    report(f"{type(model).__name__} on {config.source}: {model.count_params():,} parameters, {trainable:,} "
           f"trainable{f' (LoRA rank {config.lora_rank})' if config.lora_rank else ''}")

    best_dir = os.path.join(config.out, "best")
    start = time.perf_counter()
    checkpoint = fit_resumably(model, train_x, task.fit_targets(train_y), (val_x, task.fit_targets(val_y)), config,
                               engine, task, "metrics", best_dir, report)
    train_seconds = time.perf_counter() - start

    model.load_weights(os.path.join(best_dir, "model.weights.h5"))

    def test_scores():
        predicted, seconds = timed_predictions(task, model, test_x, config.batch_size)
        # The model's own variables (Keras' .weights.h5 files also hold the optimizer's state).
        weight_bytes = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights)
        return {**task.score(predicted, test_y, train_y, label_names), "predict_seconds": seconds,
                "weights_megabytes": weight_bytes / 2**20}

    results = {"test": test_scores()}
    if config.quantize:
        model.quantize(config.quantize)
        name = f"{config.quantize}.weights.h5"
        staging = os.path.join(config.out, STAGING_PREFIX + name)  # written whole, then renamed into place
        model.save_weights(staging, overwrite=True)
        os.replace(staging, os.path.join(config.out, name))
        results[config.quantize] = test_scores()
    summary = {"task": config.task, "data": config.data, "where": config.where, "source": config.source,
               "label_names": label_names,
               "examples": {"train": len(train_y), "validation": len(val_y), "test": len(test_y)},
               "parameters": model.count_params(), "trainable_parameters": trainable,
               "lora_rank": config.lora_rank, "epochs": config.epochs, "seed": config.seed,
               "training_seed": config.training_seed, "best_epoch": checkpoint.best_epoch,
               "best_validation": {task.monitor: checkpoint.best}, "train_seconds": train_seconds,
               "backend": keras.backend.backend(), "engine": engine.description, **results["test"],
               **{key: value for key, value in results.items() if key != "test"}}
    with atomic_file(metrics_path) as f:
        json.dump(summary, f, indent=2)
    remove_backup(os.path.join(config.out, "backup"))
    table = [[name, *(f"{scores[column]:.4f}" for column in task.columns), f"{scores['predict_seconds']:.1f}",
              f"{scores['weights_megabytes']:.1f}"] for name, scores in
             [("fp32" if config.quantize else "model", results["test"])] + [
                 (key, value) for key, value in results.items() if key != "test"]]
    report(f"\nHeld-out test split ({len(test_y):,} examples), best epoch {checkpoint.best_epoch}:")
    report(format_table(["model", *task.columns, "predict s", "weights MB"], table))
    report(f"best checkpoint in {best_dir}, metrics in {metrics_path}")
    return summary
