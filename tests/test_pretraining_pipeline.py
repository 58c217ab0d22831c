"""Tokenizer training, the corpus → tf.data pipeline feeding fit() on the current backend, the optimiser
schedule, and `kzoo pretrain` (checkpoint, kill, resume)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import BACKEND, ROOT

from kzoo.data.pipeline import pretraining_dataset, special_ids
from kzoo.data.vocab import train_sentencepiece, train_wordpiece


@pytest.fixture(scope="module")
def wordpiece(text_corpus, tmp_path_factory):
    return train_wordpiece(text_corpus, 200, str(tmp_path_factory.mktemp("wp") / "vocab.txt"))


@pytest.fixture(scope="module")
def sentencepiece(text_corpus, tmp_path_factory):
    return train_sentencepiece(text_corpus, 90, str(tmp_path_factory.mktemp("sp") / "spiece.model"))


def test_trained_wordpiece_covers_the_corpus(wordpiece, text_corpus):
    tokenizer, report = wordpiece
    vocabulary = tokenizer.get_vocabulary()
    assert vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocabulary) == report.size <= 200
    ids = np.asarray(tokenizer(["The old house saw a quiet river gladly!"])[0])
    assert special_ids(tokenizer).pad == 0 and tokenizer.token_to_id("[UNK]") not in ids.tolist()
    assert " ".join(vocabulary[i] for i in ids) == "the old house saw a quiet river gladly !"


def test_trained_sentencepiece_has_albert_specials(sentencepiece):
    tokenizer, report = sentencepiece
    assert tokenizer.get_vocabulary()[:5] == ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    ids = special_ids(tokenizer)
    assert (ids.pad, ids.cls, ids.sep, ids.mask) == (0, 2, 3, 4)
    assert report.size == 90


def test_vocabulary_larger_than_the_corpus_supports(text_corpus, tmp_path):
    """Documented handling: the vocabulary comes out smaller and the report says so."""
    tokenizer, report = train_wordpiece(text_corpus, 5000, str(tmp_path / "vocab.txt"))
    assert report.shortfall and report.size == tokenizer.vocabulary_size() < 5000
    assert "supports no more" in str(report)
    tokenizer, report = train_sentencepiece(text_corpus, 5000, str(tmp_path / "spiece.model"))
    assert report.shortfall and report.size < 5000


@pytest.mark.parametrize("arch", ["bert", "albert", "distil_bert"])
def test_pipeline_feeds_fit(arch, wordpiece, sentencepiece, text_corpus):
    from kzoo import models
    from kzoo.data.pipeline import ARCH_TASKS
    from kzoo.recipes.pretrain import DEFAULT_PRESETS, ARCH_CLASSES

    tokenizer = (sentencepiece if arch == "albert" else wordpiece)[0]
    task = ARCH_TASKS[arch]
    data = pretraining_dataset(text_corpus, tokenizer, task, sequence_length=32, batch_size=8,
                               masking="ngram" if arch == "albert" else "whole_word",
                               segments=arch != "distil_bert")
    x, y, weights = next(iter(data))
    x = {k: np.asarray(v) for k, v in x.items()}
    ids = special_ids(tokenizer)
    assert x["token_ids"].shape == (8, 32) and x["mask_positions"].shape == (8, 6)
    assert np.all(x["token_ids"][:, 0] == ids.cls)
    assert np.array_equal(x["padding_mask"], (x["token_ids"] != ids.pad).astype("int32"))
    if arch == "distil_bert":
        assert "segment_ids" not in x and set(y) == {"mlm"}
    else:
        assert set(y) == {"mlm", task} and set(np.unique(y[task])) <= {0, 1}
        # segment 1 starts right after the first [SEP]
        first_sep = np.argmax(x["token_ids"] == ids.sep, axis=1)
        assert all(x["segment_ids"][r, first_sep[r] + 1] == 1 for r in range(8) if x["padding_mask"][r, first_sep[r] + 1])
    backbone = models.Backbone.from_preset(DEFAULT_PRESETS[arch], vocabulary_size=tokenizer.vocabulary_size(),
                                           num_layers=2, hidden_dim=32, intermediate_dim=64, num_heads=2)
    model = getattr(models, ARCH_CLASSES[arch])(backbone)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    history = model.fit(data, steps_per_epoch=3, epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    assert 0.0 <= history["mlm_accuracy"][-1] <= 1.0


def test_pipeline_is_deterministic_and_masks_change_each_epoch(wordpiece, text_corpus):
    tokenizer = wordpiece[0]

    def batches(seed):
        data = pretraining_dataset(text_corpus, tokenizer, "nsp", sequence_length=32, batch_size=16, seed=seed)
        iterator = iter(data)
        return [next(iterator) for _ in range(2)]

    first, again, other = batches(0), batches(0), batches(1)
    for a, b in zip(first, again):
        assert np.array_equal(np.asarray(a[0]["token_ids"]), np.asarray(b[0]["token_ids"]))
    assert not np.array_equal(np.asarray(first[0][0]["token_ids"]), np.asarray(other[0][0]["token_ids"]))
    # Held-out data: the same batches on every pass.
    held_out = pretraining_dataset(text_corpus, tokenizer, "nsp", sequence_length=32, batch_size=16,
                                   holdout_every=4, split="eval", repeat=False)
    passes = [[np.asarray(x["token_ids"]) for x, _, _ in held_out] for _ in range(2)]
    assert len(passes[0]) > 0 and all(np.array_equal(a, b) for a, b in zip(*passes))


def test_warmup_linear_decay_and_no_decay_on_layer_norm_and_bias():
    from kzoo.models import BertBackbone
    from kzoo.train.optim import make_optimizer

    optimizer = make_optimizer("adamw", 1e-3, total_steps=100, warmup_steps=10)
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    rates = [float(keras.ops.convert_to_numpy(schedule(s))) for s in (0, 5, 10, 55, 100)]
    assert rates == pytest.approx([0.0, 5e-4, 1e-3, 5e-4, 0.0], abs=1e-9)
    model = BertBackbone(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                         max_sequence_length=16)
    decayed = {v.path for v in model.trainable_variables if optimizer._use_weight_decay(v)}
    assert decayed and all(v.name not in ("bias", "gamma", "beta") for v in model.trainable_variables
                           if v.path in decayed)
    assert any("layer_norm" in v.path or "norm" in v.path for v in model.trainable_variables
               if v.path not in decayed)
    with pytest.raises(ValueError, match="optimizer must be"):
        make_optimizer("sgd", 1e-3, 10, 1)


def _pretrain_command(corpus, out, steps, *extra):
    return [sys.executable, "-m", "kzoo.cli", "pretrain", "--arch", "bert", "--corpus", corpus, "--out", out,
            "--vocab-size", "200", "--steps", str(steps), "--batch-size", "8", "--sequence-length", "32",
            "--log-every", "2", "--eval-batches", "2", "--holdout-every", "5", "--quiet", *extra]


def _env():
    return dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)


@pytest.mark.slow
def test_pretrain_cli_resumes_after_a_kill(text_corpus, tmp_path):
    """Kill the run after its first checkpoint; running it again continues from there, and the outputs are
    complete: model, tokenizer, metrics with one row per logged epoch, the plot and the summary."""
    out = str(tmp_path / "run")
    command = _pretrain_command(text_corpus, out, 12, "--preset", "bert_tiny_en_uncased")
    process = subprocess.Popen(command, env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    metadata = os.path.join(out, "backup", "training_metadata.json")
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if os.path.exists(metadata) and json.load(open(metadata))["epoch"] >= 2:
            break
        time.sleep(0.2)
    assert process.poll() is None, f"run ended before it could be killed:\n{process.stdout.read()}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    backed_up = json.load(open(metadata))["epoch"]
    assert 2 <= backed_up < 6 and not os.path.exists(os.path.join(out, "model"))

    resumed = subprocess.run(command, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "reusing" in resumed.stdout and f"Epoch {backed_up + 1}/6" in resumed.stdout
    assert "Epoch 1/6" not in resumed.stdout  # nothing before the checkpoint is trained again
    with open(os.path.join(out, "metrics.csv")) as f:
        epochs = sorted({int(row["epoch"]) for row in csv.DictReader(f)})
    assert epochs == list(range(6))
    for name in ("model/config.json", "model/model.weights.h5", "model/vocab.txt", "metrics.png", "summary.json"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert not os.path.exists(os.path.join(out, "backup"))
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["steps"] == 12 and {"nsp_accuracy", "mlm_accuracy"} <= set(summary["held_out"])

    again = subprocess.run(command, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode != 0 and "has finished" in again.stderr


def test_pretrain_cli_rejects_bad_input(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("\n\n")
    result = subprocess.run(_pretrain_command(str(empty), str(tmp_path / "out"), 2), env=_env(), cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "kzoo pretrain: error: The corpus" in result.stderr
    assert "is empty" in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "out")  # nothing written
