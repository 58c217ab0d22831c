"""Backbones: hidden states and ALBERT's real weight sharing. Output shapes, padding invariance, config round
trips, saving, mixed precision and int8 of every architecture: tests/test_battery.py."""

import keras
import numpy as np
import pytest
from conftest import make_backbone, make_inputs
from keras import ops

from kzoo.models import AlbertBackbone


def test_hidden_states_share_weights_and_end_at_sequence_output(arch):
    backbone = make_backbone(arch)
    inputs = make_inputs(backbone)
    model = backbone.with_hidden_states()
    outputs = model(inputs)
    assert len(outputs["hidden_states"]) == backbone.num_layers + 1
    plain = backbone(inputs)
    np.testing.assert_array_equal(ops.convert_to_numpy(outputs["hidden_states"][-1]),
                                  ops.convert_to_numpy(plain["sequence_output"]))
    for key in plain:
        np.testing.assert_array_equal(ops.convert_to_numpy(outputs[key]), ops.convert_to_numpy(plain[key]))
    assert model.count_params() == backbone.count_params()


def _albert(num_layers, num_groups=1, num_inner_repetitions=1):
    keras.utils.set_random_seed(3)
    return AlbertBackbone(vocabulary_size=50, num_layers=num_layers, num_heads=2, embedding_dim=8, hidden_dim=16,
                          intermediate_dim=32, num_groups=num_groups, num_inner_repetitions=num_inner_repetitions,
                          max_sequence_length=16)


@pytest.mark.parametrize("groups,inner", [(1, 1), (2, 1), (2, 3)])
def test_albert_variable_count_does_not_depend_on_depth(groups, inner):
    counts = {L: (len(_albert(L, groups, inner).weights), _albert(L, groups, inner).count_params())
              for L in (groups, 2 * groups, 6 * groups)}
    assert len(set(counts.values())) == 1, counts
    one_block = _albert(groups, groups, inner).encoder.unique_blocks[0].count_params()
    assert len(_albert(6 * groups, groups, inner).encoder.unique_blocks) == groups * inner
    assert _albert(6 * groups, groups, inner).encoder.count_params() == groups * inner * one_block


def test_albert_changing_a_shared_block_changes_every_layer_that_runs_it():
    L, G, K = 6, 3, 2  # layers 0-1 run group 0, 2-3 group 1, 4-5 group 2
    backbone = _albert(L, G, K)
    assert [backbone.encoder.group_for_layer(i) for i in range(L)] == [0, 0, 1, 1, 2, 2]
    model = backbone.with_hidden_states()
    inputs = {"token_ids": np.array([[2, 7, 9, 11, 3]]), "segment_ids": np.zeros((1, 5), "int32"),
              "padding_mask": np.ones((1, 5), "int32")}
    before = [ops.convert_to_numpy(h) for h in model(inputs)["hidden_states"]]
    block = backbone.encoder.unique_blocks[1 * K + 1]  # group 1, second inner block
    kernel = block.output_dense.kernel
    # A random change (a uniform shift would be absorbed by the LayerNorm that follows).
    kernel.assign(kernel + np.random.default_rng(0).normal(size=kernel.shape).astype("float32"))
    after = [ops.convert_to_numpy(h) for h in model(inputs)["hidden_states"]]
    changed = [not np.allclose(a, b, atol=1e-6) for a, b in zip(before[1:], after[1:])]
    # Layers 0-1 precede group 1 and are untouched; layers 2 and 3 both run the changed block; later layers
    # inherit the change.
    assert changed == [False, False, True, True, True, True]
    # Layer 3 runs it a second time: applying group 1 to layer 2's new output reproduces layer 3 exactly.
    x = ops.convert_to_numpy(after[3])
    for inner in backbone.encoder.blocks_for_layer(3):
        x = inner(x, inputs["padding_mask"])
    np.testing.assert_allclose(ops.convert_to_numpy(x), after[4], atol=1e-5)


def test_albert_layers_not_divisible_by_groups_is_rejected():
    with pytest.raises(ValueError, match="num_layers=5 is not divisible by num_groups=2"):
        _albert(5, 2)
