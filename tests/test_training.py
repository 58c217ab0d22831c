"""Pretrainers train with compile() + fit(). Mixed bfloat16 forward passes and fit steps of every pretrainer:
tests/test_battery.py."""

import keras
import numpy as np
import pytest
from conftest import make_backbone, make_inputs
from keras.src.models.functional import Functional

from kzoo.models import AlbertPretrainer, BertPretrainer, DistilBertMaskedLM

PRETRAINERS = {"bert": BertPretrainer, "distil_bert": DistilBertMaskedLM, "albert": AlbertPretrainer}


def _pretraining_batch(backbone, pair_task, batch=16, predictions=3, seed=0):
    rng = np.random.default_rng(seed)
    x = make_inputs(backbone, batch=batch, length=12, pad=False, seed=seed)
    x["mask_positions"] = rng.integers(1, 12, size=(batch, predictions)).astype("int32")
    y = {"mlm": rng.integers(5, backbone.vocabulary_size, size=(batch, predictions)).astype("int32")}
    weights = np.ones((batch, predictions), "float32")
    weights[:, -1] = rng.integers(0, 2, size=batch)  # some padded prediction slots
    sample_weight = {"mlm": weights}
    if pair_task:
        y[pair_task] = rng.integers(0, 2, size=batch).astype("int32")
        sample_weight[pair_task] = None
    return x, y, sample_weight


def test_fit_lowers_the_loss_of_every_pretrainer(arch):
    model = PRETRAINERS[arch](make_backbone(arch, dropout=0.1))
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-2))
    x, y, sample_weight = _pretraining_batch(model.backbone, model.pair_task)
    history = model.fit(x, y, sample_weight=sample_weight, batch_size=8, epochs=10, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0], history["loss"]
    expected = {"loss", "mlm_loss", "mlm_accuracy"}
    if model.pair_task:
        expected |= {f"{model.pair_task}_loss", f"{model.pair_task}_accuracy"}
    assert expected <= set(history)
    # The total is the unweighted sum of the parts (docs/design.md §4).
    parts = history["mlm_loss"][-1] + (history[f"{model.pair_task}_loss"][-1] if model.pair_task else 0.0)
    assert history["loss"][-1] == pytest.approx(parts, rel=1e-4)


def test_mlm_loss_ignores_padded_prediction_slots():
    from kzoo.models.pretrainers import weighted_cross_entropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 7)).astype("float32")
    labels = np.array([[1, 2, 3], [4, 5, 6]])
    weights = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    expected = (ce * weights).sum() / weights.sum()
    actual = float(keras.ops.convert_to_numpy(weighted_cross_entropy(labels, logits, weights)))
    assert actual == pytest.approx(expected, rel=1e-5)


def _full_graph_twin(model):
    """The same pretrainer (same weights) run through its whole functional graph: the last layer at every
    position, then the MLM head's gather (the computation `Pretrainer.call` shortcuts)."""
    class FullGraph(type(model)):
        def call(self, inputs, training=None, mask=None):
            return Functional.call(self, inputs, training=training, mask=mask)

    twin = FullGraph(type(model.backbone).from_config(model.backbone.get_config()))
    twin.set_weights(model.get_weights())
    return twin


def test_last_layer_at_masked_positions_only_equals_the_full_graph(arch):
    model = PRETRAINERS[arch](make_backbone(arch))
    twin = _full_graph_twin(model)
    x = make_inputs(model.backbone, batch=3, length=10, pad=True)
    # Position 0 ([CLS]), a repeat, and slots inside the padding (padded prediction slots point there).
    x["mask_positions"] = np.array([[0, 4, 9], [2, 2, 8], [1, 3, 5]], "int32")
    fast, full = model(x), twin(x)
    assert set(fast) == set(full)
    for key in full:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(fast[key]), keras.ops.convert_to_numpy(full[key]),
                                   atol=1e-5, rtol=0, err_msg=key)
    if arch != "albert":
        return  # training: once, on the architecture whose last block is also used by earlier layers
    # Training is the same too: three SGD steps (dropout 0) end at the same weights.
    x, y, sample_weight = _pretraining_batch(model.backbone, model.pair_task, batch=12)
    before = model.get_weights()
    for m in (model, twin):
        m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5))
        m.fit(x, y, sample_weight=sample_weight, batch_size=4, epochs=1, shuffle=False, verbose=0)
    changed = 0
    for fast_weight, full_weight, initial in zip(model.get_weights(), twin.get_weights(), before):
        np.testing.assert_allclose(fast_weight, full_weight, atol=1e-5, rtol=0)
        changed += int(np.abs(full_weight - initial).max() > 1e-4)
    assert changed > len(model.get_weights()) // 2  # the steps did move the weights


def test_distil_bert_accepts_bare_mask_ids():
    model = DistilBertMaskedLM(make_backbone("distil_bert"))
    model.compile(optimizer="adam")
    x, y, sample_weight = _pretraining_batch(model.backbone, None, batch=8)
    logs = model.fit(x, y["mlm"], sample_weight=sample_weight["mlm"], epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][0])


def test_pretrainer_refuses_a_compiled_loss():
    model = BertPretrainer(make_backbone("bert"))
    with pytest.raises(ValueError, match="computes its own loss"):
        model.compile(optimizer="adam", loss="mse")
