"""Bad input gets a clear error naming the value and the limit, eagerly and inside compiled predict."""

import keras
import numpy as np
import pytest
from conftest import make_backbone, make_inputs

from kzoo.layers import TransformerStack
from kzoo.models import BertBackbone, BertPretrainer


def _error_text(excinfo):
    return str(excinfo.value)


@pytest.mark.parametrize("bad_id,label", [(97, "97"), (10_000, "10000"), (-1, "-1")])
def test_out_of_range_token_id_is_named_eagerly(arch, bad_id, label):
    backbone = make_backbone(arch)
    inputs = make_inputs(backbone)
    inputs["token_ids"][1, 4] = bad_id
    with pytest.raises(ValueError, match=rf"token_ids has value {label} at index \(1, 4\).*limit 97"):
        backbone(inputs)


def test_out_of_range_token_id_is_caught_inside_compiled_predict(arch):
    # JAX (jit) would otherwise clamp the gather and return the last row's embedding silently.
    backbone = make_backbone(arch)
    inputs = make_inputs(backbone)
    backbone.predict(inputs, verbose=0)  # valid ids pass
    inputs["token_ids"][0, 2] = 5000
    with pytest.raises(Exception) as excinfo:
        backbone.predict(inputs, verbose=0)
    assert "token_ids" in _error_text(excinfo) and "97" in _error_text(excinfo)


def test_out_of_range_segment_id_is_named():
    backbone = make_backbone("bert")
    inputs = make_inputs(backbone)
    inputs["segment_ids"][0, 1] = 2
    with pytest.raises(ValueError, match=r"segment_ids has value 2 .*limit 2"):
        backbone(inputs)


def test_sequence_longer_than_max_is_rejected(arch):
    backbone = make_backbone(arch)
    inputs = make_inputs(backbone, length=40, pad=False)
    with pytest.raises(ValueError, match="sequence length 40, longer than max_sequence_length=32"):
        backbone(inputs)


def test_missing_input_key_is_named(arch):
    backbone = make_backbone(arch)
    inputs = make_inputs(backbone)
    del inputs["padding_mask"]
    with pytest.raises(ValueError, match=r'Missing data for input "padding_mask"'):
        backbone(inputs)


def test_pretrainer_missing_mask_positions_is_named():
    model = BertPretrainer(make_backbone("bert"))
    with pytest.raises(ValueError, match=r'Missing data for input "mask_positions"'):
        model(make_inputs(model.backbone))


def test_bad_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="hidden_dim=30 is not divisible by num_heads=4"):
        BertBackbone(vocabulary_size=10, num_layers=1, num_heads=4, hidden_dim=30, intermediate_dim=8)
    with pytest.raises(ValueError, match="num_layers must be at least 1"):
        TransformerStack(num_layers=0, num_heads=1, hidden_dim=4, intermediate_dim=4)


def test_extra_input_keys_are_dropped_not_matched_by_position():
    """A DistilBERT model handed BERT-style inputs (with segment_ids) reads them by name: Keras alone would match
    the sorted keys by position and feed segment_ids in as token_ids."""
    from kzoo.models import TextClassifier

    model = TextClassifier(make_backbone("distil_bert"), num_classes=2)
    inputs = make_inputs(make_backbone("bert"))
    own = {key: inputs[key] for key in model.input_keys}
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(inputs)), keras.ops.convert_to_numpy(model(own)))
    np.testing.assert_array_equal(model.predict(inputs, verbose=0), model.predict(own, verbose=0))
