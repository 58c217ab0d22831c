"""One optimizer step of each training job, on N devices or with K accumulated micro-batches, for the engine
tests (`test_engines.py` runs this file in a fresh process: the device count must be set before the backend
starts). Prints one JSON line: under "steps", for every job and setting, the largest weight difference from one
step of the whole batch on one device, and how far that step moved the weights; under "predictions", per
setting, the largest difference of a classifier's raw-text outputs (batches of 4, the last one short) from one
device's.

    python tests/engine_jobs.py DEVICES SETTING [SETTING ...]      SETTING: "devices=N", "accumulate=K" or both
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from kzoo.engines import virtual_cpu_devices  # noqa: E402

if __name__ == "__main__":
    virtual_cpu_devices(int(sys.argv[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kzoo.distill import DISTILBERT_LOSS_WEIGHTS, Distiller, student_backbone  # noqa: E402
from kzoo.engines import Engine, EngineConfig  # noqa: E402
from kzoo.models import BertBackbone, BertPretrainer, DistilBertMaskedLM, TextClassifier  # noqa: E402

VOCAB, BATCH, LENGTH, PREDICTIONS = 61, 8, 12, 4
TEXTS = ["good day", "a very bad movie was the day", "fine", "the movie was great", "sad", "a nice day",
         "the the the movie was awful and poor"]  # 7: batches of 4 leave a short one of 3


def tiny_bert(seed, layers=2):
    keras.utils.set_random_seed(seed)
    return BertBackbone(vocabulary_size=VOCAB, num_layers=layers, num_heads=2, hidden_dim=16, intermediate_dim=32,
                        max_sequence_length=16, dropout=0.0)


def token_inputs(seed=0, equal_lengths=False):
    """A batch of BATCH rows of unequal lengths (so replicas get unequal numbers of real tokens), or all of
    the full length (what accumulation averages exactly: see `EngineConfig`)."""
    rng = np.random.default_rng(seed)
    lengths = np.full(BATCH, LENGTH) if equal_lengths else rng.integers(4, LENGTH + 1, BATCH)
    mask = (np.arange(LENGTH)[None, :] < lengths[:, None]).astype("int32")
    ids = rng.integers(5, VOCAB, (BATCH, LENGTH)).astype("int32") * mask
    ids[:, 0] = 2
    segments = ((np.arange(LENGTH)[None, :] >= lengths[:, None] // 2) * mask).astype("int32")
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}


def mlm_batch(equal_weights):
    """Inputs with mask positions, targets and mask weights: unequal numbers of real predictions per row (an
    exact global mean over replicas must count them), or the same number in every row (what accumulation
    averages exactly: see `EngineConfig.accumulate`)."""
    x = token_inputs(1, equal_weights)
    rng = np.random.default_rng(2)
    x["mask_positions"] = rng.integers(1, 4, (BATCH, PREDICTIONS)).astype("int32")
    counts = np.full(BATCH, 3) if equal_weights else np.array([1, 4, 2, 4, 1, 3, 4, 2])
    weights = (np.arange(PREDICTIONS)[None, :] < counts[:, None]).astype("float32")
    y = {"mlm": rng.integers(5, VOCAB, (BATCH, PREDICTIONS)).astype("int32"), "nsp": np.arange(BATCH) % 2}
    return x, y, weights


# Each job: (build(), x, y, sample_weight, the variables that train). Built fresh in every engine's scope.
def classifier_job(equal_weights):
    def build():
        return TextClassifier(tiny_bert(0), num_classes=3)
    return build, token_inputs(), np.arange(BATCH) % 3, None, lambda model: model.trainable_weights


def distiller_job(equal_weights):
    def build():
        teacher = TextClassifier(tiny_bert(0, layers=3), num_classes=3)
        student = TextClassifier(student_backbone(teacher, num_layers=2), num_classes=3)
        return Distiller(student, teacher, temperature=2.0, alpha=0.5, cosine_weight=0.5, cosine_layers=[0, 2])
    return build, token_inputs(0, equal_weights), np.arange(BATCH) % 3, None, lambda model: model.student.trainable_weights


def mlm_distiller_job(equal_weights):
    def build():
        teacher = BertPretrainer(tiny_bert(0, layers=3))
        student = DistilBertMaskedLM(student_backbone(teacher, 2, "distil_bert"))
        return Distiller(student, teacher, **DISTILBERT_LOSS_WEIGHTS)
    x, y, weights = mlm_batch(equal_weights)
    return build, x, y["mlm"], weights, lambda model: model.student.trainable_weights


def pretrainer_job(equal_weights):
    def build():
        return BertPretrainer(tiny_bert(0))
    x, y, weights = mlm_batch(equal_weights)
    return build, x, y, weights, lambda model: model.trainable_weights  # bare: the mask weights


JOBS = {"classifier": classifier_job, "distiller": distiller_job, "mlm_distiller": mlm_distiller_job,
        "pretrainer": pretrainer_job}


def one_update(job, engine, initial=None):
    """Weights after one optimizer update of the whole batch (fed as `accumulate` micro-batches); SGD, so a
    wrongly scaled loss term shows in the step (Adam's first step would normalise it away)."""
    build, x, y, sample_weight, trained = job
    accumulate = engine.config.accumulate
    with engine.scope():
        model = build()
        if initial is not None:
            model.set_weights(initial)
        optimizer = keras.optimizers.SGD(0.5, gradient_accumulation_steps=accumulate if accumulate > 1 else None)
        model.compile(optimizer=optimizer, jit_compile=engine.jit_compile)
        initial = model.get_weights()
        start = [keras.ops.convert_to_numpy(v) for v in trained(model)]
        # tf.data, as the pretraining pipeline feeds it (a bare mask-weights array is not valid numpy input)
        rows = (x, y) if sample_weight is None else (x, y, sample_weight)
        model.fit(tf.data.Dataset.from_tensor_slices(rows).batch(BATCH // accumulate), epochs=1, verbose=0)
        end = [keras.ops.convert_to_numpy(v) for v in trained(model)]
    return initial, start, end


def text_predictions(engine, vocabulary):
    """A classifier's outputs for TEXTS (raw strings) on `engine`, predicted in length-sorted batches of 4."""
    from kzoo.data.task_inputs import TextPreprocessor
    from kzoo.data.tokenizers import load_wordpiece

    with engine.scope():
        model = TextClassifier(tiny_bert(0), num_classes=3,
                               preprocessor=TextPreprocessor(load_wordpiece(vocabulary), sequence_length=LENGTH))
        return model.predict(TEXTS, batch_size=4)


def setting_options(setting):
    """"devices=2,accumulate=2" → {"devices": 2, "accumulate": 2}: an `EngineConfig`'s keyword arguments."""
    return {key: int(value) for key, value in (item.split("=") for item in setting.split(","))}


def largest_difference(arrays, others):
    """The largest absolute difference between two lists of same-shaped arrays."""
    return max(float(np.abs(a - b).max()) for a, b in zip(arrays, others))


def main(settings):
    import tempfile

    from kzoo.data.vocab import WORDPIECE_SPECIALS

    vocabulary = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    with open(vocabulary, "w") as f:
        f.write("\n".join([*WORDPIECE_SPECIALS, *sorted({w for text in TEXTS for w in text.split()})]) + "\n")
    single = text_predictions(Engine(), vocabulary)
    predictions = {setting: largest_difference([single], [text_predictions(
        Engine(EngineConfig(**setting_options(setting))), vocabulary)]) for setting in settings}
    results = {}
    for name, make_job in JOBS.items():
        references = {}  # one step of the whole batch on one device, per kind of batch
        for setting in settings:
            options = setting_options(setting)
            equal_weights = "accumulate" in options
            job = make_job(equal_weights)
            if equal_weights not in references:
                references[equal_weights] = one_update(job, Engine())
            initial, start, expected = references[equal_weights]
            engine = Engine(EngineConfig(**options))
            _, start_n, got = one_update(job, engine, initial)
            results[f"{name} {setting}"] = {
                "replicas": engine.replicas,
                "start_diff": largest_difference(start, start_n),
                "max_diff": largest_difference(expected, got),
                "update": largest_difference(expected, start),
            }
    print(json.dumps({"steps": results, "predictions": predictions}))


if __name__ == "__main__":
    main(sys.argv[2:])
