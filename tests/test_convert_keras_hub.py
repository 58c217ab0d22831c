"""Weights to and from keras-hub backbones give the same outputs (≤ 1e-5), each with its GELU variant."""

import keras
import keras_hub
import numpy as np
import pytest
from conftest import make_inputs, numpy_outputs

from kzoo.convert import from_keras_hub, to_keras_hub
from kzoo.models import BertBackbone

CASES = {
    "BertBackbone": dict(vocabulary_size=60, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=24,
                         max_sequence_length=32, dropout=0.0),
    "DistilBertBackbone": dict(vocabulary_size=60, num_layers=2, num_heads=4, hidden_dim=16, intermediate_dim=24,
                               max_sequence_length=32, dropout=0.0),
    "AlbertBackbone": dict(vocabulary_size=60, num_layers=6, num_heads=2, embedding_dim=8, hidden_dim=16,
                           intermediate_dim=24, num_groups=3, num_inner_repetitions=2, max_sequence_length=32,
                           dropout=0.0),
}


def _run_hub(hub, inputs, keys):
    outputs = hub({k: inputs[k] for k in keys})
    return numpy_outputs(outputs if isinstance(outputs, dict) else {"sequence_output": outputs})


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for variable in model.weights:  # LayerNorms and biases too, so a mix-up cannot hide
        variable.assign(rng.normal(0, 0.2, size=variable.shape).astype("float32"))


@pytest.mark.parametrize("class_name", sorted(CASES))
def test_from_and_to_keras_hub_give_same_outputs(class_name):
    keras.utils.set_random_seed(0)
    hub = getattr(keras_hub.models, class_name)(**CASES[class_name])
    _randomize(hub)
    ours = from_keras_hub(hub)
    inputs = make_inputs(ours, length=12)
    expected = _run_hub(hub, inputs, ours.input_keys)
    actual = numpy_outputs(ours(inputs))
    mask = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(actual["sequence_output"][mask], expected["sequence_output"][mask], atol=1e-5)
    if "pooled_output" in expected:
        np.testing.assert_allclose(actual["pooled_output"], expected["pooled_output"], atol=1e-5)
    _randomize(ours, seed=1)
    back = to_keras_hub(ours)
    np.testing.assert_allclose(_run_hub(back, inputs, ours.input_keys)["sequence_output"][mask],
                               numpy_outputs(ours(inputs))["sequence_output"][mask], atol=1e-5)


def test_to_keras_hub_refuses_a_different_activation():
    backbone = BertBackbone(**CASES["BertBackbone"], activation="gelu")
    with pytest.raises(ValueError, match="uses activation 'gelu_approximate'"):
        to_keras_hub(backbone)
