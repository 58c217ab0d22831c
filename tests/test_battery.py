"""tests/model_battery.py over every architecture and every task head: config round trip, variable lengths and
padding, preset and `.keras` saving, mixed precision, int8; fit and predict for the tasks. Tiny configs (hidden
32, 2 layers; ALBERT's 2 layers share one block, E=8), batches of 2 rows of 12 tokens, the second row padded.
Two kzoo bugs the battery found are marked xfail (strict) at the end."""

import keras
import numpy as np
import pytest
from conftest import ARCHS, TINY, make_inputs
from model_battery import run_backbone_test, run_quantized_saving_test, run_task_test

from kzoo.models import (AlbertPretrainer, BertPretrainer, DistilBertMaskedLM, SpanQuestionAnswerer, TextClassifier,
                         TextEmbedder, TokenClassifier)

BATCH, LENGTH, HIDDEN, CLASSES, PREDICTIONS = 2, 12, 32, 3, 3
SIZES = dict(hidden_dim=HIDDEN, intermediate_dim=2 * HIDDEN, num_layers=2)
ALBERT = dict(num_groups=1, num_inner_repetitions=1)  # as ALBERT's presets: every layer runs the one block
PRETRAINERS = {"bert": BertPretrainer, "distil_bert": DistilBertMaskedLM, "albert": AlbertPretrainer}


def config(arch):
    cls, kwargs = TINY[arch]
    return cls, {**kwargs, **SIZES, **(ALBERT if arch == "albert" else {})}


def backbone(arch):
    cls, kwargs = config(arch)
    keras.utils.set_random_seed(1)
    return cls(**kwargs)


def inputs(model):
    return make_inputs(model, batch=BATCH, length=LENGTH, seed=1)  # rows of 12 and 9 real tokens


@pytest.mark.parametrize("arch", ARCHS)
def test_backbone_battery(arch):
    cls, kwargs = config(arch)
    expected = {"sequence_output": (BATCH, LENGTH, HIDDEN)}
    if arch != "distil_bert":
        expected["pooled_output"] = (BATCH, HIDDEN)
    run_backbone_test(cls, kwargs, inputs(backbone(arch)), expected)


def classifier_case(arch):
    model = backbone(arch)
    x = inputs(model)
    return TextClassifier, {"backbone": model, "num_classes": CLASSES}, (x, np.array([0, 2])), (BATCH, CLASSES)


def token_classifier_case(arch):
    model = backbone(arch)
    x = inputs(model)
    labels = np.random.default_rng(0).integers(0, CLASSES, size=(BATCH, LENGTH)).astype("int32")
    return (TokenClassifier, {"backbone": model, "num_classes": CLASSES},
            (x, labels, x["padding_mask"].astype("float32")), (BATCH, LENGTH, CLASSES))


def question_answerer_case(arch):
    model = backbone(arch)
    x = inputs(model)
    y = {"start_logits": np.array([3, 0]), "end_logits": np.array([5, 0])}  # the second row: no answer
    return SpanQuestionAnswerer, {"backbone": model}, (x, y), {key: (BATCH, LENGTH) for key in y}


def pretrainer_case(arch):
    model = backbone(arch)
    cls = PRETRAINERS[arch]
    x = dict(inputs(model), mask_positions=np.array([[1, 4, 7], [2, 3, 8]], "int32"))
    rng = np.random.default_rng(0)
    y = {"mlm": rng.integers(5, model.vocabulary_size, size=(BATCH, PREDICTIONS)).astype("int32")}
    sample_weight = {"mlm": np.array([[1, 1, 1], [1, 1, 0]], "float32")}  # a padded prediction slot
    expected = {"mlm": (BATCH, PREDICTIONS, model.vocabulary_size)}
    if cls.pair_task:
        y[cls.pair_task] = np.array([0, 1], "int32")
        sample_weight[cls.pair_task] = None
        expected[cls.pair_task] = (BATCH, 2)
    return cls, {"backbone": model}, (x, y, sample_weight), expected


def embedder_case(arch):
    """Two pairs, interleaved (anchor, positive, anchor, positive): the contrastive loss needs a negative."""
    model = backbone(arch)
    x = make_inputs(model, batch=2 * BATCH, length=LENGTH, seed=1)
    return TextEmbedder, {"backbone": model}, (x, np.zeros(2 * BATCH, "int32")), (2 * BATCH, HIDDEN)


TASKS = {"TextClassifier": classifier_case, "TokenClassifier": token_classifier_case,
         "SpanQuestionAnswerer": question_answerer_case, "Pretrainer": pretrainer_case,
         "TextEmbedder": embedder_case}


# Outputs documented as float32 under a mixed policy: the span logits, the embeddings.
FLOAT32_OUTPUTS = {"SpanQuestionAnswerer": ("start_logits", "end_logits"), "TextEmbedder": ("output",)}


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("arch", ARCHS)
def test_task_battery(arch, task):
    cls, init_kwargs, train_data, expected = TASKS[task](arch)
    # The heads run under mixed_bfloat16 (the backbones run under both policies above). Pretrainers fit a compiled
    # step under mixed_bfloat16 (tests/test_training.py fits each in float32); the other tasks fit eagerly in
    # float32.
    pretrainer = task == "Pretrainer"
    run_task_test(cls, init_kwargs, train_data, expected, batch_size=len(train_data[0]["token_ids"]),
                  policies=("mixed_bfloat16",),
                  float32_outputs=FLOAT32_OUTPUTS.get(task, ()),
                  fit_policy="mixed_bfloat16" if pretrainer else None, fit_eagerly=not pretrainer)


@pytest.mark.xfail(strict=True, raises=ValueError, reason=(
    "kzoo bug: an int8 model's config does not record the quantization (Backbone.get_config keeps only the "
    "constructor arguments), so save_to_preset/from_preset and .keras load_model rebuild it in float32 and "
    "refuse its int8 weights. Its weights file does reload into a copy quantized first (the battery's int8 "
    "check)."))
def test_int8_model_reloads_from_preset_and_keras_file():
    cls, kwargs = config("bert")
    model = cls(**kwargs)
    run_quantized_saving_test(model, inputs(model))


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "kzoo bug: a task model on a mixed-precision backbone keeps the float32 dtype policy (Backbone sets its "
    "dtype_policy, Task does not), so under mixed_float16 compile() does not wrap its optimizer in a "
    "LossScaleOptimizer as Keras does for a mixed_float16 model (kzoo.engines wraps it itself)."))
def test_task_takes_its_backbones_mixed_policy():
    cls, kwargs = config("bert")
    task = TextClassifier(cls(**kwargs, dtype="mixed_float16"), num_classes=CLASSES)
    task.compile()
    assert task.dtype_policy.name == "mixed_float16"
    assert isinstance(task.optimizer, keras.optimizers.LossScaleOptimizer)
