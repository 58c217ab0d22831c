"""`kzoo.engines`: N devices (JAX `DataParallel`, TF `MirroredStrategy`) and K accumulated micro-batches train
as one device does on the whole batch; the options are checked; accumulation keeps the schedule of updates."""

import json
import os

import keras
import numpy as np
import pytest
from conftest import BACKEND, ROOT, make_backbone, make_inputs, run_python
from engine_jobs import largest_difference, setting_options

from kzoo.engines import Engine, EngineConfig, tf_config
from kzoo.models import TextClassifier
from kzoo.train.optim import WarmupLinearDecay, make_optimizer

# (virtual devices, settings) per process: TensorFlow numbers the collectives of each device set from the same
# keys, so two device sets cannot share a process; TensorFlow refuses accumulation (check_accumulation). Two
# replicas of unequal weight show a per-replica mean as well as four do; four run under JAX (four on TensorFlow
# cost another 140 s of the suite).
ENGINE_RUNS = {
    "tensorflow": [(2, ["devices=2"])],
    "jax": [(4, ["devices=2", "devices=4", "devices=2,accumulate=2", "model_parallel=2"])],
}


@pytest.mark.slow
@pytest.mark.parametrize("run", range(len(ENGINE_RUNS[BACKEND])))
def test_each_job_on_n_devices_and_k_micro_batches_equals_one_device(run):
    """TextClassifier, Distiller (classify, α 0.5 + KD + layer-wise cosine), Distiller (MLM, DistilBERT's
    5·KD + 2·MLM + 1·cos at every token) and BertPretrainer (MLM + NSP): one SGD step of the global batch.
    Rows have unequal lengths and unequal numbers of masked predictions, so replicas hold unequal weight: each
    weighted mean must be of the global batch, not averaged over replicas. (Before kzoo.replicas.weighted_mean,
    the Distiller's KD and cosine terms counted R times on TensorFlow's R replicas.)"""
    devices, settings = ENGINE_RUNS[BACKEND][run]
    script = os.path.join(ROOT, "tests", "engine_jobs.py")
    output = run_python(f"import runpy, sys; sys.argv = ['engine_jobs.py', '{devices}', *{settings!r}]; "
                        f"runpy.run_path({script!r}, run_name='__main__')", BACKEND, timeout=900)
    report = json.loads(output.strip().splitlines()[-1])
    results = report["steps"]
    assert len(results) == 4 * len(settings)
    for name, result in results.items():
        options = setting_options(name.split()[1])
        replicas = devices // options["model_parallel"] if "model_parallel" in options else options.get("devices", 1)
        assert result["replicas"] == replicas, name
        assert result["start_diff"] == 0.0, name  # both started from the same weights
        assert result["update"] > 1e-2, name  # the step moved them
        assert result["max_diff"] <= 1e-5, (name, result)  # and moved them alike
    # Raw-text predict, batches of 4 with a short last one: TensorFlow must split each batch over the replicas
    # (Keras' predict_on_batch there returns every replica's copy of the outputs).
    assert set(report["predictions"]) == set(settings)
    assert max(report["predictions"].values()) <= 1e-5, report["predictions"]


def test_engine_options_are_checked():
    for bad, message in ((dict(precision="float64"), "precision must be one of"),
                         (dict(accumulate=0), "accumulate must be an int ≥ 1"),
                         (dict(model_parallel=2.5), "model_parallel must be an int ≥ 1"),
                         (dict(devices=0), "devices must be an int ≥ 1"),
                         (dict(coordinator="127.0.0.1:1234"), "need all of coordinator, num_processes"),
                         (dict(coordinator="h:1", num_processes=2, process_id=2), r"process_id must be in \[0")):
        with pytest.raises(ValueError, match=message):
            EngineConfig(**bad)
    assert EngineConfig(devices=2).data_parallel and EngineConfig(model_parallel=2).data_parallel
    with pytest.raises(ValueError, match="needs every process's HOST:PORT"):
        tf_config(EngineConfig(coordinator="h0:1", num_processes=2, process_id=0))
    assert tf_config(EngineConfig(coordinator="h0:1,h1:2", num_processes=2, process_id=1)) == {
        "cluster": {"worker": ["h0:1", "h1:2"]}, "task": {"type": "worker", "index": 1}}


def test_commands_refuse_several_hosts(monkeypatch):
    from kzoo.recipes.finetune import FinetuneConfig
    from kzoo.recipes.pretrain import PretrainConfig

    hosts = EngineConfig(coordinator="127.0.0.1:1234", num_processes=2, process_id=0)
    with pytest.raises(ValueError, match="kzoo finetune and kzoo distill run on one host"):
        FinetuneConfig(task="classify", data="d.csv", source="s", out="o", engine=hosts)
    with pytest.raises(ValueError, match="kzoo pretrain run on one host"):
        PretrainConfig(arch="bert", corpus="c", out="o", engine=hosts)
    variable = "KERAS_DISTRIBUTION_NUM_PROCESSES" if BACKEND == "jax" else "TF_CONFIG"
    monkeypatch.setenv(variable, "2")  # the engine's own variable counts only when several devices are asked for
    assert not EngineConfig().multi_host and EngineConfig(data_parallel=True).multi_host


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's strategies")
def test_tensorflow_refuses_what_its_engine_cannot_run():
    with pytest.raises(ValueError, match="model_parallel runs on JAX"):
        Engine(EngineConfig(model_parallel=2))
    with pytest.raises(ValueError, match="accumulate 2: Keras' gradient accumulation is wrong on TensorFlow"):
        Engine(EngineConfig(devices=1, accumulate=2))
    with pytest.raises(ValueError, match="accumulate on the jax backend"):
        make_optimizer("adamw", 1e-3, 10, 1, accumulate=2)


def test_one_device_engine_describes_itself_and_wraps_float16_optimizers():
    accumulate = 2 if BACKEND == "jax" else 1
    engine = Engine(EngineConfig(precision="mixed_float16", accumulate=accumulate))
    assert engine.replicas == 1 and engine.dtype == "mixed_float16"
    assert "one device" in engine.description and "mixed_float16" in engine.description
    optimizer = engine.make_optimizer("adamw", 1e-3, total_steps=10, warmup_steps=2)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    if accumulate > 1:
        assert "2 micro-batches per update" in engine.description
        assert optimizer.inner_optimizer.gradient_accumulation_steps == 2
        assert engine.micro_batch_size(32) == 16
        with pytest.raises(ValueError, match="batch_size 33 must divide into accumulate 2"):
            engine.micro_batch_size(33)


def test_schedule_counts_updates_under_accumulation():
    plain, accumulated = WarmupLinearDecay(1e-3, 2, 10), WarmupLinearDecay(1e-3, 2, 10, micro_steps=3)
    for update in range(12):
        for micro in range(3):  # Keras calls the schedule with the micro-batch count
            assert float(accumulated(3 * update + micro)) == pytest.approx(float(plain(update)), abs=0)
    assert WarmupLinearDecay.from_config(accumulated.get_config()).micro_steps == 3


@pytest.mark.skipif(BACKEND != "jax", reason="accumulation runs on JAX (check_accumulation)")
def test_accumulated_adamw_run_equals_the_run_on_whole_batches():
    """Three AdamW updates through warmup and decay with global clipping: 2 micro-batches of 4 per update end
    where 3 updates of 8 do (Adam's bias correction and the schedule count updates, not micro-batches)."""
    x = make_inputs(make_backbone("bert"), batch=8, length=10, pad=False)
    y = np.arange(8) % 3
    x3 = {key: np.concatenate([value] * 3) for key, value in x.items()}
    y3 = np.concatenate([y] * 3)
    runs = []
    for accumulate in (1, 2):
        model = TextClassifier(make_backbone("bert"), num_classes=3)
        model.compile(optimizer=make_optimizer("adamw", 1e-2, total_steps=3, warmup_steps=1, clipnorm=0.1,
                                               accumulate=accumulate))
        start = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
        model.fit(x3, y3, batch_size=8 // accumulate, epochs=1, shuffle=False, verbose=0)
        assert int(model.optimizer.iterations) == 3
        runs.append([keras.ops.convert_to_numpy(w) for w in model.trainable_weights])
    assert largest_difference(start, runs[0]) > 1e-3  # the updates moved the weights
    assert largest_difference(*runs) <= 1e-5


MODEL_PARALLEL_SCRIPT = """
import json
from kzoo.engines import Engine, EngineConfig, virtual_cpu_devices
virtual_cpu_devices(4)
import keras, numpy as np
from kzoo.models import BertBackbone

rng = np.random.default_rng(0)
x = {"token_ids": rng.integers(1, 30522, (4, 16)).astype("int32"), "segment_ids": np.zeros((4, 16), "int32"),
     "padding_mask": np.ones((4, 16), "int32")}
plain = BertBackbone.from_preset("bert_base_en_uncased", dropout=0.0)
expected = keras.ops.convert_to_numpy(plain(x)["sequence_output"])
engine = Engine(EngineConfig(model_parallel=2))
with engine.scope():
    sharded = BertBackbone.from_preset("bert_base_en_uncased", dropout=0.0)
    sharded.set_weights(plain.get_weights())
    got = keras.ops.convert_to_numpy(sharded(x)["sequence_output"])
shards = {v.path: [list(v.value.sharding.shard_shape(v.value.shape)), list(v.shape)] for v in sharded.weights}
print(json.dumps({"mesh": engine.mesh_shape, "replicas": engine.replicas, "description": engine.description,
                  "max_diff": float(np.abs(got - expected).max()), "shards": shards}))
"""


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "jax", reason="ModelParallel is keras.distribution's (JAX)")
def test_model_parallel_shards_bert_base_and_computes_what_one_device_does():
    """bert_base on a 2 (batch) × 2 (model) mesh of virtual devices: the word embeddings and every attention
    and feed-forward kernel hold half their columns or rows per device, the rest is whole, and the output
    equals the unsharded model's."""
    result = json.loads(run_python(MODEL_PARALLEL_SCRIPT, BACKEND).strip().splitlines()[-1])
    assert result["mesh"] == [2, 2] and result["replicas"] == 2
    assert "ModelParallel on 4 CPU devices, mesh 2 (batch) × 2 (model)" in result["description"]
    shards = result["shards"]
    assert shards["embeddings/token_embedding/embeddings"] == [[30522, 384], [30522, 768]]
    for layer in range(12):
        block = f"encoder/transformer_layer_{layer}"
        for name in ("query", "key", "value"):
            assert shards[f"{block}/attention/{name}/kernel"] == [[768, 384], [768, 768]]
        assert shards[f"{block}/attention/attention_output/kernel"] == [[384, 768], [768, 768]]
        assert shards[f"{block}/intermediate/kernel"] == [[768, 1536], [768, 3072]]
        assert shards[f"{block}/output/kernel"] == [[1536, 768], [3072, 768]]
    sharded = {path for path, (shard, shape) in shards.items() if shard != shape}
    assert len(sharded) == 1 + 12 * 6  # and nothing else: biases, LayerNorms, positions, pooler whole
    assert result["max_diff"] <= 1e-5, result["max_diff"]
