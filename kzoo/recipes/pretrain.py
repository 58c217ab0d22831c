"""`kzoo pretrain`: corpus → tokenizer → pretrained model, resumable, with metrics and a plot.

Everything lands in one output folder:
    vocab.txt | spiece.model   the tokenizer (trained here when none is given; reused on resume)
    backup/                    the training state (weights, optimizer, seeds) every `log_every` steps
    metrics.csv, metrics.png   one row per `log_every` steps: losses and accuracies, train and held-out
    model/                     the pretrainer as a kzoo preset (config.json + model.weights.h5 + tokenizer)
    summary.json               final held-out metrics and the unigram baseline: the run has finished

A run killed at any moment resumes where its last backup left it, rerun with the same command: the data stream
skips the batches already trained on, so the resumed run ends with the unbroken run's weights. The backup is
removed only once model/ and summary.json are committed (each written whole, in one rename).
"""

import dataclasses
import json
import math
import os

from kzoo.architectures import ARCHITECTURES
from kzoo.engines import EngineConfig

ARCH_CLASSES = {name: arch.pretrainer for name, arch in ARCHITECTURES.items()}
DEFAULT_PRESETS = {name: arch.tiny_preset for name, arch in ARCHITECTURES.items()}


@dataclasses.dataclass
class PretrainConfig:
    arch: str
    corpus: object
    out: str
    preset: str | None = None
    vocab: str | None = None
    vocabulary_size: int = 8000
    steps: int = 1000
    batch_size: int = 32
    sequence_length: int = 128
    learning_rate: float | None = None  # 5e-4 for AdamW, 5e-3 for LAMB (its trust ratio scales steps down)
    warmup: float = 0.1  # share of steps
    optimizer: str | None = None  # the architecture's: adamw for BERT/DistilBERT, lamb for ALBERT
    weight_decay: float = 0.01
    masking: str | None = None  # the architecture's: token for BERT/DistilBERT, ngram for ALBERT
    log_every: int = 50
    holdout_every: int = 20
    eval_batches: int = 20
    engine: EngineConfig = dataclasses.field(default_factory=EngineConfig)  # devices, hosts, precision, accumulation
    seed: int = 0
    overwrite: bool = False
    verbose: int = 1
    backbone_overrides: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}; got {self.arch!r}.")
        for field in ("steps", "batch_size", "log_every", "vocabulary_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be ≥ 1; got {getattr(self, field)}.")
        arch = ARCHITECTURES[self.arch]
        self.preset = self.preset or arch.tiny_preset
        self.optimizer = self.optimizer or arch.optimizer
        self.masking = self.masking or arch.masking
        self.learning_rate = self.learning_rate or (5e-3 if self.optimizer == "lamb" else 5e-4)
        self.engine.one_host("kzoo pretrain")


def check_vocabulary_file(path):
    """Raise naming `path` unless it is a WordPiece `vocab.txt` or (ending in .model) a SentencePiece model."""
    from kzoo.data.tokenizers import check_sentencepiece, check_wordpiece

    if not os.path.exists(path):
        raise FileNotFoundError(f"Vocabulary {path} does not exist.")
    if os.path.isdir(path):
        raise ValueError(f"Vocabulary {path} is a folder; give its vocab.txt or spiece.model file.")
    (check_sentencepiece if path.endswith(".model") else check_wordpiece)(path)


def load_or_train_tokenizer(config, report=print):
    """The given vocabulary, the one a previous (interrupted) run left in `out`, or a new one trained on the
    corpus: WordPiece `vocab.txt` for BERT/DistilBERT, SentencePiece `spiece.model` for ALBERT."""
    from kzoo.data import vocab as vocab_training
    from kzoo.data.tokenizers import LowercaseSentencePieceTokenizer, load_wordpiece

    path = config.vocab
    if path is None:
        arch = ARCHITECTURES[config.arch]
        path = os.path.join(config.out, arch.vocabulary_file)
        if not os.path.isfile(path):
            train = getattr(vocab_training, f"train_{arch.tokenizer}")  # train_wordpiece, train_sentencepiece
            tokenizer, result = train(config.corpus, config.vocabulary_size, path)
            report(f"trained {result}")
            return tokenizer, path
        report(f"reusing {path} from the previous run")
    if path.endswith(".model"):
        return LowercaseSentencePieceTokenizer(proto=path), path
    return load_wordpiece(path), path


def build_pretrainer(config, vocabulary_size):
    from kzoo import models

    overrides = {"vocabulary_size": vocabulary_size, **config.backbone_overrides, **config.engine.dtype_options}
    backbone = models.Backbone.from_preset(config.preset, **overrides)
    if backbone.max_sequence_length < config.sequence_length:
        raise ValueError(f"sequence_length {config.sequence_length} exceeds the preset's max_sequence_length "
                         f"{backbone.max_sequence_length}.")
    return getattr(models, ARCHITECTURES[config.arch].pretrainer)(backbone)


def unigram_baseline(dataset):
    """Masked-token accuracy of always predicting the most frequent target of `dataset` (an upper bound on
    any unigram guesser's held-out accuracy)."""
    import collections

    import numpy as np

    counts = collections.Counter()
    for _, y, weights in dataset.as_numpy_iterator():
        counts.update(np.asarray(y["mlm"])[np.asarray(weights) > 0].tolist())
    total = sum(counts.values())
    return counts.most_common(1)[0][1] / total if total else 0.0


def pair_majority_baseline(dataset, task):
    """Accuracy of always giving the most frequent sentence-pair label of `dataset` (NSP's random-B share is not
    exactly one half: a random B leaves its chunk's tail for the next pair, docs/design.md §5)."""
    import numpy as np

    labels = np.concatenate([np.asarray(y[task]).reshape(-1) for _, y, _ in dataset.as_numpy_iterator()])
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else 0.0


def pretrain(config, report=print):
    """Train (or resume) per `config`; returns the summary dict also written to `summary.json`."""
    import keras
    import tensorflow as tf

    from kzoo.atomic import atomic_file, remove_stale_staging
    from kzoo.data.corpus import check_corpus, iter_documents
    from kzoo.data.pipeline import pretraining_dataset
    from kzoo.engines import Engine
    from kzoo.train.backup import AtomicBackupAndRestore, remove_backup, remove_outputs, run_fingerprint
    from kzoo.train.plot import plot_metrics

    arch = ARCHITECTURES[config.arch]
    check_corpus(config.corpus, arch.pretraining_task, config.holdout_every)  # bad input fails before any output
    if config.vocab:
        check_vocabulary_file(config.vocab)
    engine = Engine(config.engine)  # first: several hosts must meet before any computation
    micro_batch = engine.micro_batch_size(config.batch_size)
    model_dir, summary_path = os.path.join(config.out, "model"), os.path.join(config.out, "summary.json")
    if os.path.exists(summary_path) and not config.overwrite:
        raise FileExistsError(f"{summary_path} exists: this run has finished. Pass --overwrite to train again.")
    if config.overwrite:
        trained_here = ("vocab.txt", "spiece.model") if config.vocab is None else ()
        remove_outputs(config.out, ("model", "backup", "metrics.csv", "metrics.png", "summary.json", *trained_here))
    os.makedirs(config.out, exist_ok=True)
    remove_stale_staging(config.out)
    tokenizer, tokenizer_path = load_or_train_tokenizer(config, report)
    data_options = dict(tokenizer=tokenizer, task=arch.pretraining_task, sequence_length=config.sequence_length,
                        batch_size=micro_batch, masking=config.masking, holdout_every=config.holdout_every,
                        segments=arch.segments)
    keras.utils.set_random_seed(config.seed)  # TF's global seed pairs with the data's op seeds
    train_data = pretraining_dataset(config.corpus, seed=config.seed, **data_options)
    eval_data = None
    if config.holdout_every:
        if next(iter_documents(config.corpus, config.holdout_every, "eval"), None) is None:
            raise ValueError(f"No held-out documents: the corpus has fewer than --holdout-every "
                             f"{config.holdout_every} documents; lower it, or pass 0 to hold none out.")
        eval_data = pretraining_dataset(config.corpus, seed=config.seed + 1, split="eval", repeat=False,
                                        **data_options).take(config.eval_batches).cache()
        # One pass fills the cache and counts the batches; a known length spares Keras' "ran out of data".
        eval_data = eval_data.apply(tf.data.experimental.assert_cardinality(sum(1 for _ in eval_data)))

    epochs = math.ceil(config.steps / config.log_every)  # whole logging intervals: steps rounds up to them
    total_steps = epochs * config.log_every
    keras.utils.set_random_seed(config.seed)  # again: the same weights and dropout seeds however the data was made
    with engine.scope():
        model = build_pretrainer(config, tokenizer.vocabulary_size())
        model.compile(optimizer=engine.make_optimizer(
            config.optimizer, config.learning_rate, total_steps, int(config.warmup * total_steps),
            weight_decay=config.weight_decay), jit_compile=engine.jit_compile)
    report(engine.description)
    report(f"{type(model).__name__} on {config.preset}: {model.count_params():,} parameters, vocabulary "
           f"{tokenizer.vocabulary_size():,}, {config.masking} masking, {config.optimizer}, global batch "
           f"{config.batch_size}")

    csv_path, backup_dir = os.path.join(config.out, "metrics.csv"), os.path.join(config.out, "backup")
    backup = AtomicBackupAndRestore(backup_dir, log=csv_path, fingerprint=run_fingerprint(config),
                                    delete_checkpoint=False)
    steps_per_epoch = config.log_every * config.engine.accumulate  # micro-batches
    if backup.completed_epochs():
        report(f"resuming from {backup_dir} after step {backup.completed_epochs() * config.log_every:,} of "
               f"{total_steps:,}")
    # The stream is a function of the seed alone: a resumed run skips the batches the backup has trained on.
    train_data = train_data.skip(backup.completed_epochs() * steps_per_epoch)
    callbacks = [keras.callbacks.CSVLogger(csv_path, append=True), backup]  # an epoch's row, then its backup
    with engine.scope():
        model.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_data=eval_data,
                  callbacks=callbacks, verbose=config.verbose, shuffle=False)

    summary = {"arch": config.arch, "preset": config.preset, "steps": total_steps,
               "parameters": model.count_params(), "vocabulary_size": tokenizer.vocabulary_size()}
    if eval_data is not None:
        with engine.scope():
            held_out = model.evaluate(eval_data, return_dict=True, verbose=0)
        summary["held_out"] = {k: float(v) for k, v in held_out.items()}
        summary["unigram_baseline_mlm_accuracy"] = unigram_baseline(eval_data)
        task = arch.pretraining_task
        if task in ("nsp", "sop"):
            summary[f"majority_baseline_{task}_accuracy"] = pair_majority_baseline(eval_data, task)
    model.save_to_preset(model_dir, overwrite=True, assets=[tokenizer_path])  # a killed run's model/ is redone
    plot_metrics(csv_path, os.path.join(config.out, "metrics.png"), config.log_every,
                 title=f"kzoo pretrain {config.arch} ({config.preset})")
    with atomic_file(summary_path) as f:
        json.dump(summary, f, indent=2)
    remove_backup(backup_dir)
    return summary
