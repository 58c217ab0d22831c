"""The pretraining recipe on 2 virtual CPU devices (`kzoo.engines`: keras.distribution.DataParallel on JAX,
MirroredStrategy on TensorFlow) trains exactly as one device does on the same global batch, with kzoo's AdamW,
its warmup schedule and replica-exact global clipping; and `kzoo pretrain|finetune|distill --data-parallel` run
end to end on 2 devices."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import BACKEND, ROOT, run_python

SCRIPT = """
import json, sys
from kzoo.engines import Engine, EngineConfig, virtual_cpu_devices
virtual_cpu_devices(2)

import keras, numpy as np
from kzoo.data.pipeline import pretraining_dataset
from kzoo.data.vocab import train_wordpiece
from kzoo.recipes.pretrain import PretrainConfig, build_pretrainer

corpus, workdir = sys.argv[1], sys.argv[2]
tokenizer, _ = train_wordpiece(corpus, 200, workdir + "/vocab.txt")
data = pretraining_dataset(corpus, tokenizer, "nsp", sequence_length=32, batch_size=8, seed=0).take(4).cache()
for _ in data:  # fill the cache: both runs see exactly these batches
    pass
config = PretrainConfig(arch="bert", corpus=corpus, out=workdir, backbone_overrides=dict(
    num_layers=2, hidden_dim=32, intermediate_dim=64, num_heads=2, dropout=0.0))

def train(engine):
    with engine.scope():
        keras.utils.set_random_seed(0)
        model = build_pretrainer(config, tokenizer.vocabulary_size())
        model.load_weights(workdir + "/initial.weights.h5")
        model.compile(optimizer=engine.make_optimizer("adamw", 1e-3, total_steps=4, warmup_steps=1, clipnorm=0.5),
                      jit_compile=engine.jit_compile)
        history = model.fit(data, epochs=1, verbose=0).history
    return engine.replicas, [keras.ops.convert_to_numpy(w) for w in model.weights], history["loss"][-1]

keras.utils.set_random_seed(0)
initial = build_pretrainer(config, tokenizer.vocabulary_size())
initial.save_weights(workdir + "/initial.weights.h5")
single_replicas, single, single_loss = train(Engine())
parallel_replicas, parallel, parallel_loss = train(Engine(EngineConfig(data_parallel=True)))
print(json.dumps({
    "replicas": [single_replicas, parallel_replicas],
    "max_abs_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(single, parallel)),
    "max_update": max(float(np.max(np.abs(a - keras.ops.convert_to_numpy(b))))
                      for a, b in zip(single, initial.weights)),
    "loss": [single_loss, parallel_loss],
}))
"""


@pytest.mark.slow
def test_data_parallel_equals_single_device(text_corpus, tmp_path):
    script = tmp_path / "parallel.py"
    script.write_text(SCRIPT)
    output = run_python(f"import runpy, sys; sys.argv = ['x', {text_corpus!r}, {str(tmp_path)!r}]; "
                        f"runpy.run_path({str(script)!r}, run_name='__main__')", BACKEND)
    result = json.loads(output.strip().splitlines()[-1])
    assert result["replicas"] == [1, 2]
    assert result["max_update"] > 1e-4  # the weights did move
    assert result["max_abs_diff"] <= 1e-5, result  # and moved the same way on 1 and on 2 devices
    assert result["loss"][0] == pytest.approx(result["loss"][1], rel=1e-5)


TWO_DEVICES = {"jax": "keras.distribution.DataParallel on 2 CPU devices",
               "tensorflow": "tf.distribute.MirroredStrategy on 2 CPU devices"}[BACKEND]


def run_on_two_devices(*arguments):
    """`kzoo ARGUMENTS --data-parallel` in a fresh process whose CPU is split into 2 devices; its stdout."""
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-m", "kzoo.cli", *map(str, arguments), "--data-parallel",
                             "--cpu-devices", "2", "--quiet"], env=env, capture_output=True, text=True, timeout=600,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert TWO_DEVICES in result.stdout, result.stdout
    return result.stdout


@pytest.mark.slow
def test_pretrain_command_runs_data_parallel_on_two_devices(text_corpus, tmp_path):
    out = tmp_path / "run"
    run_on_two_devices("pretrain", "--arch", "bert", "--corpus", text_corpus, "--out", out, "--vocab-size", "200",
                       "--steps", "4", "--log-every", "2", "--batch-size", "8", "--sequence-length", "32",
                       "--eval-batches", "2", "--holdout-every", "10")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 4 and 0 <= summary["held_out"]["mlm_accuracy"] <= 1


@pytest.mark.slow
def test_finetune_and_distill_commands_run_data_parallel_on_two_devices(tmp_path):
    """101 rows: 73 for training end in a batch of 1, and 19 test rows in one of 3, neither dividing over 2
    devices. The test accuracy scored on 2 devices must be the one this process (1 device) gets from the saved
    model."""
    from conftest import make_backbone, word_preprocessor
    from test_finetune import WORDS, write_sentiment_jsonl

    from kzoo.models import TextClassifier
    from kzoo.recipes.finetune import FinetuneConfig, load_splits
    from kzoo.recipes.finetune_tasks import TASKS

    data = write_sentiment_jsonl(tmp_path / "data.jsonl", 101, seed=1)
    source = tmp_path / "source"
    TextClassifier(make_backbone("bert", vocabulary_size=len(WORDS) + 5), num_classes=2, preprocessor=word_preprocessor(
        tmp_path / "vocab.txt", WORDS, sequence_length=24)).save_to_preset(str(source))
    options = ["--data", data, "--epochs", "1", "--batch-size", "8", "--max-test-examples", "19"]
    accumulate = ["--accumulate", "2"] if BACKEND == "jax" else []  # TensorFlow refuses accumulation
    run_on_two_devices("finetune", "--task", "classify", "--from", source, "--out", tmp_path / "ft", "--learning-rate",
                       "5e-3", *options, *accumulate)
    metrics = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert TWO_DEVICES in metrics["engine"] and ("2 micro-batches per update" in metrics["engine"]) == bool(accumulate)

    config = FinetuneConfig(task="classify", data=str(data), source=str(source), out=str(tmp_path / "x"),
                            max_test_examples=19)
    _, _, (test_x, test_y), _ = load_splits(config, TASKS["classify"], report=lambda _: None)
    predicted = TextClassifier.from_preset(str(tmp_path / "ft" / "best")).predict_labels(test_x, batch_size=8)
    assert metrics["accuracy"] == pytest.approx(np.mean([p == t for p, t in zip(predicted, test_y)]), abs=1e-9)

    run_on_two_devices("distill", "--teacher", tmp_path / "ft" / "best", "--out", tmp_path / "distilled",
                       "--student-layers", "1", "--precision", "mixed_bfloat16", *options)
    distilled = json.loads((tmp_path / "distilled" / "metrics.json").read_text())
    assert TWO_DEVICES in distilled["engine"] and "mixed_bfloat16" in distilled["engine"]
    assert 0 <= distilled["distilled"]["accuracy"] <= 1
    student = TextClassifier.from_preset(str(tmp_path / "distilled" / "best"))
    assert student.backbone.dtype_policy.name == "mixed_bfloat16"  # saved as trained: 16-bit compute
    assert {v.dtype for v in student.weights if v.trainable} == {"float32"}  # with float32 variables
