"""A rejected request leaves the model as it was; runs of the commands are crash-safe; errors are one line.

Model API cases run on TF and JAX (each: the bad call's message, then a good call that must equal a fresh
model's output). Loading, data and text cases live in test_reliability_loading.py, test_reliability_text.py
and test_fuzz_text.py; kill -9 in test_kill_resume.py.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_backbone, make_inputs, write_text_corpus

from kzoo.models import BertPretrainer, TextClassifier

LIMIT = r"\(limit 97\)"


def _bad(inputs, key="token_ids", index=(1, 3), value=97):
    bad = {k: np.array(v) for k, v in inputs.items()}
    bad[key] = bad[key].astype(np.asarray(value).dtype)
    bad[key][index] = value
    return bad


def _as_dataset(x, y=None):
    return tf.data.Dataset.from_tensor_slices(x if y is None else (x, y)).batch(len(next(iter(x.values()))))


# (name, how the bad request is made, the message it must get). Each runs against the backbone's predict path.
BAD_PREDICTIONS = {
    "predict, id = vocabulary size": (lambda m, x: m.predict(_bad(x), verbose=0),
                                      r"^token_ids has value 97 at index \(1, 3\); every value must be in \[0, 97\) "
                                      + LIMIT),
    "predict, negative id": (lambda m, x: m.predict(_bad(x, value=-1), verbose=0), r"value -1 at index \(1, 3\).*"
                             + LIMIT),
    "predict on a tf.data dataset": (lambda m, x: m.predict(_as_dataset(_bad(x, value=500)), verbose=0),
                                     r"^token_ids has value 500 at index \(1, 3\).*" + LIMIT),
    "predict_on_batch": (lambda m, x: m.predict_on_batch(_bad(x, value=10**6)), r"value 1000000 at index"),
    "eager call": (lambda m, x: m(_bad(x)), r"^token_ids has value 97 at index \(1, 3\)"),
    "float ids (5.7)": (lambda m, x: m.predict(_bad(x, value=5.7), verbose=0),
                        r"^token_ids must hold integer ids; got .*5\.7.* at index \(1, 3\)"),
    "float ids in an eager call": (lambda m, x: m(_bad(x, value=2.5)), r"token_ids must hold integer ids; got .*2\.5"),
    "NaN id": (lambda m, x: m.predict(_bad(x, value=np.nan), verbose=0), r"token_ids must hold integer ids; got .*nan"),
    "string ids": (lambda m, x: m.predict(dict(x, token_ids=x["token_ids"].astype(str)), verbose=0),
                   r"token_ids must hold integer ids; got an array of dtype <U"),
    "segment id 2": (lambda m, x: m.predict(_bad(x, key="segment_ids", value=2), verbose=0),
                     r"^segment_ids has value 2 at index \(1, 3\).*limit 2\)"),
    "predict, inputs as a list": (lambda m, x: m.predict([_bad(x)[k] for k in sorted(x)], verbose=0),
                                  r"^token_ids has value 97 at index \(1, 3\)"),
    "sequence longer than the maximum": (
        lambda m, x: m.predict({k: np.tile(v, (1, 4)) for k, v in x.items()}, verbose=0),
        r"token_ids has sequence length 40, longer than max_sequence_length=32"),
}


@pytest.fixture(scope="module")
def served():
    """One backbone for every bad request (each must leave it unchanged), its inputs, and a fresh twin's outputs."""
    model = make_backbone("bert")
    x = make_inputs(model, length=10)
    return model, x, make_backbone("bert").predict(x, verbose=0)  # same seed: same weights


@pytest.mark.parametrize("case", list(BAD_PREDICTIONS))
def test_a_rejected_prediction_leaves_the_model_usable(case, served):
    """JAX used to answer every call after one bad request with "'NoneType' object is not callable": Keras had
    handed the variables to a compiled step that then failed."""
    request, message = BAD_PREDICTIONS[case]
    model, x, expected = served
    with pytest.raises(ValueError, match=message) as error:
        request(model, x)
    assert "\n" not in str(error.value)
    after = model.predict(x, verbose=0)
    for key in expected:
        np.testing.assert_allclose(after[key], expected[key], atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)["sequence_output"]), expected["sequence_output"],
                               atol=1e-5)


def _pretrainer_batch(backbone, positions):
    x = make_inputs(backbone, batch=2, length=10)
    x["mask_positions"] = np.array(positions, "int32")
    y = {"mlm": np.full((2, 2), 7, "int32"), "nsp": np.array([0, 1], "int32")}
    return x, y


BAD_TRAINING = {
    "fit, mask position past the sequence": (
        lambda m, x, y: m.fit(dict(x, mask_positions=np.array([[1, 2], [3, 10]])), y, verbose=0),
        r"^mask_positions has value 10 at index \(1, 1\); every value must be in \[0, 10\) \(limit 10\)"),
    "fit on a dataset with a bad id": (lambda m, x, y: m.fit(_as_dataset(_bad(x, index=(0, 5)), y), verbose=0),
                                       r"^token_ids has value 97 at index \(0, 5\)"),
    "fit with bad validation data": (
        lambda m, x, y: m.fit(x, y, validation_data=(_bad(x, index=(1, 1)), y), verbose=0),
        r"^token_ids has value 97 at index \(1, 1\)"),
    "evaluate": (lambda m, x, y: m.evaluate(_bad(x, key="mask_positions", index=(0, 0), value=-2), y, verbose=0),
                 r"^mask_positions has value -2 at index \(0, 0\)"),
    "train_on_batch": (lambda m, x, y: m.train_on_batch(_bad(x, value=1000), y), r"value 1000 at index \(1, 3\)"),
    "test_on_batch": (lambda m, x, y: m.test_on_batch(_bad(x, value=98), y), r"value 98 at index \(1, 3\)"),
}


def _compiled_pretrainer():
    model = BertPretrainer(make_backbone("bert"))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def _two_steps(model, x, y):
    keras.utils.set_random_seed(5)
    model.fit(x, y, epochs=2, verbose=0)
    return model.get_weights()


def test_rejected_training_calls_leave_the_model_and_its_optimizer_usable():
    """Every bad call of BAD_TRAINING in turn on one model: each is refused with its message, none trains or
    counts an optimizer step (TF counts a step stopped by a graph check unless put back): two steps from there
    equal a fresh model's two steps."""
    model, fresh = _compiled_pretrainer(), _compiled_pretrainer()
    x, y = _pretrainer_batch(model.backbone, [[1, 2], [3, 4]])
    for case, (request, message) in BAD_TRAINING.items():
        with pytest.raises(ValueError, match=message):
            request(model, x, y)
    for a, b in zip(_two_steps(model, x, y), _two_steps(fresh, x, y)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_distiller_rejects_a_bad_batch_and_trains_on(tmp_path):
    from kzoo.distill import Distiller, student_backbone

    teacher = TextClassifier(make_backbone("bert"), num_classes=2)
    student = TextClassifier(student_backbone(teacher, 1), num_classes=2)
    distiller = Distiller(student, teacher, alpha=0.5)
    distiller.compile(optimizer="adam")
    x = make_inputs(teacher.backbone, batch=4, length=12)
    y = np.array([0, 1, 0, 1])
    distiller.fit(x, y, verbose=0)
    before = [keras.ops.convert_to_numpy(v) for v in distiller.variables]
    with pytest.raises(ValueError, match=r"^token_ids has value 97 at index \(1, 3\)"):
        distiller.fit(_as_dataset(_bad(x), y), verbose=0)
    after = [keras.ops.convert_to_numpy(v) for v in distiller.variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))  # student, teacher and optimizer untouched
    history = distiller.fit(x, y, epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))


def test_a_bad_batch_inside_a_dataset_keeps_the_steps_before_it():
    model = _compiled_pretrainer()
    x, y = _pretrainer_batch(model.backbone, [[1, 2], [3, 4]])
    data = tf.data.Dataset.from_tensor_slices((_bad(x, index=(1, 3)), y)).batch(1)  # the second step is bad
    with pytest.raises(ValueError, match=r"^token_ids has value 97 at index \(0, 3\)"):
        model.fit(data, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 1  # the first step, applied and counted
    assert np.all(np.isfinite(model.predict(x, verbose=0)["mlm"]))


def test_a_resume_under_other_settings_is_refused(tmp_path):
    from kzoo.train.backup import AtomicBackupAndRestore

    model = _compiled_pretrainer()
    x, y = _pretrainer_batch(model.backbone, [[1, 2], [3, 4]])
    model.fit(x, y, verbose=0, callbacks=[AtomicBackupAndRestore(str(tmp_path), fingerprint={"lr": 1e-3, "seed": 0},
                                                                 delete_checkpoint=False)])
    assert AtomicBackupAndRestore(str(tmp_path), fingerprint={"lr": 1e-3, "seed": 0}).completed_epochs() == 1
    with pytest.raises(ValueError, match=r"holds the backup of a run with other settings \(lr differ\)"):
        AtomicBackupAndRestore(str(tmp_path), fingerprint={"lr": 2e-3, "seed": 0}).completed_epochs()


# Runs of the commands -----------------------------------------------------------------------------------------
def _pretrain_args(corpus, out, *extra):
    return ["pretrain", "--arch", "bert", "--corpus", str(corpus), "--out", str(out), "--vocab-size", "200",
            "--steps", "4", "--log-every", "2", "--batch-size", "8", "--sequence-length", "32", "--eval-batches", "2",
            "--quiet", *extra]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="command logic, backend-independent: TF only")
def test_pretrain_holding_nothing_out_finishes_with_a_plot_and_summary(tmp_path, capsys):
    from kzoo.cli import main

    corpus = write_text_corpus(tmp_path / "corpus", documents=40)
    assert main(_pretrain_args(corpus, tmp_path / "run", "--holdout-every", "0")) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 4 and "held_out" not in summary
    assert (tmp_path / "run" / "metrics.png").stat().st_size > 1000
    assert not (tmp_path / "run" / "backup").exists()
    assert main(_pretrain_args(corpus, tmp_path / "run", "--holdout-every", "0")) == 2
    assert "summary.json exists: this run has finished" in capsys.readouterr().err


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="command logic, backend-independent: TF only")
def test_bad_command_input_is_one_line_and_leaves_no_output_folder(tmp_path, capsys):
    from kzoo.cli import main

    corpus = write_text_corpus(tmp_path / "corpus", documents=40)
    cases = [
        (_pretrain_args(corpus, tmp_path / "a", "--holdout-every", "1000"), r"No held-out documents"),
        (_pretrain_args(corpus, tmp_path / "b", "--sequence-length", "4096"), r"sequence_length 4096 exceeds"),
        (_pretrain_args(tmp_path / "missing", tmp_path / "c"), r"missing does not exist"),
        (_pretrain_args(corpus, tmp_path / "d", "--vocab", str(tmp_path / "none.txt")), r"none\.txt does not exist"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("kzoo pretrain: error: "), err
        assert __import__("re").search(message, err), (message, err)
        assert not os.path.exists(argv[argv.index("--out") + 1]), f"{argv} left its --out folder behind"


def test_stale_staging_is_removed_and_a_folder_moved_aside_is_put_back(tmp_path):
    from kzoo.atomic import atomic_directory, remove_stale_staging

    (tmp_path / ".kzoo-abc123").mkdir()
    (tmp_path / ".kzoo-abc123" / "config.json").write_text("{}")
    (tmp_path / ".kzoo-x1").write_text("half a file")
    aside = tmp_path / ".kzoo-old-model-q9z"  # a replacement of model/ killed between its two renames
    (aside / "old").mkdir(parents=True)
    (aside / "old" / "model.weights.h5").write_text("weights")
    with atomic_directory(str(tmp_path / "best")) as staging:  # a finished result is never touched
        open(os.path.join(staging, "a"), "w").close()
    remove_stale_staging(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["best", "model"]
    assert (tmp_path / "model" / "model.weights.h5").read_text() == "weights"


def test_resumed_log_keeps_each_epoch_once(tmp_path):
    from kzoo.train.backup import cut_log

    log = tmp_path / "metrics.csv"
    log.write_text("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n3,0.")  # the last row cut short by a kill
    with open(log, "a") as appending:  # a CSVLogger holding the file open across the cut writes on after it
        cut_log(str(log), 2)
        appending.write("2,0.75\n")
    assert log.read_text() == "epoch,loss\n0,1.0\n1,0.9\n2,0.75\n"
    cut_log(str(log), 0)  # no backup: a new run, with its own header
    assert not log.exists()
