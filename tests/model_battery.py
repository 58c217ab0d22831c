"""A keras-hub-style test battery for kzoo models: keras_hub/src/tests/test_case.py's `run_backbone_test` and
`run_task_test` (with its `run_serialization_test`, `run_model_saving_test`, `run_precision_test` and
`run_quantization_test`) as plain functions for pytest, over kzoo's backbones and task models.

`run_backbone_test(cls, init_kwargs, input_data, expected_output_shape)` builds `cls(**init_kwargs)` and checks:

- **inputs**: the model's inputs are exactly `input_data`'s keys (a DistilBERT takes no `segment_ids`);
- **lengths**: at the input's sequence length L the outputs have `expected_output_shape`; with PAD padding
  positions appended (length L + PAD) they have that shape with every L after the batch axis made L + PAD, and
  the outputs at the first L positions stay within PADDING_TOLERANCE; with that padding left unmasked they
  move by more than UNMASKED_MIN_CHANGE (so the padding mask is what keeps them: the check can fail);
- **config**: `get_config` → `from_config` gives an equal config (compared as JSON, so it must be JSON), and
  the rebuilt model, given the same weights, gives the same outputs (SAME_WEIGHTS_TOLERANCE);
- **saving**: `save_to_preset` + `from_preset`, and `.keras` `save` + `keras.saving.load_model` (safe mode),
  give the same class, as many distinct variables (a tied layer stays tied) and the same outputs
  (SAME_WEIGHTS_TOLERANCE); a second `save_to_preset` into the same folder is refused without `overwrite=True`;
- **precision**: under mixed_bfloat16 and under mixed_float16, built from `init_kwargs` and given the float32
  model's weights: every variable is float32, every layer computes in the policy's 16-bit type and so do the
  outputs, which are within PRECISION_TOLERANCE of float32's (so finite);
- **int8**: `quantize("int8")` on a copy makes every Dense, EinsumDense and Embedding int8 and keeps the
  outputs within INT8_TOLERANCE of float32's; its weights file (`save_weights`) loaded into another copy
  quantized the same way gives the same outputs (SAME_WEIGHTS_TOLERANCE).

`run_task_test(cls, init_kwargs, train_data, expected_output_shape)` runs the same checks on a task model
(`init_kwargs` holds its backbone; the precision check rebuilds that backbone from its config under the policy,
as keras-hub's does) with the inputs `x` of `train_data = (x, y[, sample_weight])`, and then:

- **predict**: `predict(x)` (compiled) has `expected_output_shape` and the eager call's outputs
  (PREDICT_TOLERANCE);
- **fit**: one epoch of `fit` on `train_data` (batches of `batch_size`, compiled with the task's defaults;
  eagerly unless `fit_eagerly=False`; under `fit_policy` if given) gives finite losses and finite weights and
  changes most trainable weights.

`run_quantized_saving_test(model, inputs)` is the saving check on an int8 copy (it fails today: a kzoo bug,
see tests/test_battery.py).

Every tolerance is relative: outputs are "within T" of reference outputs when max |output − reference| /
max |reference| ≤ T for each output (tiny models have logits of 0.003 to 0.3, so absolute tolerances would say
little; for 16-bit and int8 outputs the divisor is at least LOSSY_SCALE_FLOOR); entries of magnitude ≥
FILL_MAGNITUDE (fill values such as a question answerer's -1e9 at padding) must be equal. The sequence length
L must differ from every other output dimension, so that the sequence axes are the axes of size L. Importing
this module runs nothing.
"""

import gc
import json
import os
import tempfile
import warnings
from unittest import mock

import keras
import numpy as np

# Every tolerance is relative (`relative_difference`).
# Same weights, same graph, float32 (a config round trip, a reloaded preset, .keras or weights file): equal up
# to summation order.
SAME_WEIGHTS_TOLERANCE = 1e-6
# Compiled `predict` against the eager call: XLA may fuse and reorder float32 sums. Measured at most 5e-7.
PREDICT_TOLERANCE = 1e-5
# Real positions with and without masked padding appended (relative, as below): the attention sums run over
# more (zero-weighted) terms. Measured 0 on tests/test_battery.py's cases under TensorFlow and JAX.
PADDING_TOLERANCE = 1e-6
# The control: with that padding unmasked, the real positions' outputs move by more than this (relative):
# measured 0.0008 to 0.024 on the same cases.
UNMASKED_MIN_CHANGE = 1e-4
PAD = 4
# The lossy comparisons (16-bit compute, int8 weights) divide by max(max |float32 output|, LOSSY_SCALE_FLOOR):
# fresh heads give logits of 0.003 to 0.3 (initializer_range 0.02), and the relative error of a near-zero logit
# (an NSP head's 0.006) says nothing; beside a scale of 0.05 it does.
LOSSY_SCALE_FLOOR = 0.05
# Largest difference from the float32 outputs with the same weights, per policy: about twice the largest
# measured on tests/test_battery.py's cases with 8 initial weights each (2026-12-02, TensorFlow and JAX): 0.027
# for mixed_bfloat16 (8-bit significands) and 0.0028 for mixed_float16 (11-bit).
PRECISION_TOLERANCE = {"mixed_bfloat16": 0.05, "mixed_float16": 0.006}
# The same for Keras' int8 (per-channel absmax weight scales, activations quantized per call): measured at most
# 0.033.
INT8_TOLERANCE = 0.07
FILL_MAGNITUDE = 1e6
POLICIES = ("mixed_bfloat16", "mixed_float16")
QUANTIZED_LAYERS = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Embedding)


# Helpers ---------------------------------------------------------------------------------------------------
def _as_dict(outputs):
    """A model's outputs (a tensor or a dict of them) as `{name: tensor}`; a single output is named "output"."""
    return dict(outputs) if isinstance(outputs, dict) else {"output": outputs}


def _numpy(outputs):
    """`{name: float32 numpy array}` (16-bit outputs cast first: numpy has no bfloat16)."""
    return {key: keras.ops.convert_to_numpy(keras.ops.cast(value, "float32")) if _is_float(value)
            else keras.ops.convert_to_numpy(value) for key, value in _as_dict(outputs).items()}


def _is_float(value):
    return "float" in keras.backend.standardize_dtype(value.dtype)


def _shapes(outputs):
    return {key: tuple(np.shape(value)) for key, value in _as_dict(outputs).items()}


def relative_difference(actual, expected, compare_fill=True, scale_floor=0.0):
    """max |actual − expected| / max(max |expected|, `scale_floor`) over the entries of `expected` below
    FILL_MAGNITUDE; the entries at or above it (fill values) must be equal, else `inf` (with
    `compare_fill=False` they are left out); `inf` if anything compared in `actual` is not finite."""
    actual, expected = np.asarray(actual, "float64"), np.asarray(expected, "float64")
    fill = np.abs(expected) >= FILL_MAGNITUDE
    if not np.isfinite(actual[~fill]).all():
        return np.inf
    if compare_fill and not np.array_equal(actual[fill], expected[fill]):
        return np.inf
    real = ~fill
    if not real.any():
        return 0.0
    scale = max(np.abs(expected[real]).max(), scale_floor, 1e-30)
    return float(np.abs(actual[real] - expected[real]).max() / scale)


def _assert_close(actual, expected, tolerance, what, scale_floor=0.0):
    """The same outputs (names, shapes), each within `tolerance` of `expected`'s (`relative_difference`)."""
    assert set(actual) == set(expected), (what, sorted(actual), sorted(expected))
    for key in expected:
        assert np.shape(actual[key]) == np.shape(expected[key]), (what, key, np.shape(actual[key]))
        difference = relative_difference(actual[key], expected[key], scale_floor=scale_floor)
        assert difference <= tolerance, f"{what}: {key} differs by {difference:.4g} (relative) > {tolerance}"


def _sequence_length(inputs):
    return int(np.shape(inputs["token_ids"])[1])


def _at_length(shapes, length, new_length):
    """`shapes` with every `length` after the batch axis made `new_length`."""
    return {key: tuple(shape[:1]) + tuple(new_length if n == length else n for n in shape[1:])
            for key, shape in shapes.items()}


def _expected_shapes(expected_output_shape):
    return {key: tuple(shape) for key, shape in _as_dict(expected_output_shape).items()}


def _with_padding(inputs, length, unmasked=False):
    """`inputs` with `length` padding positions appended to each (batch, sequence) input (id 0, segment 0, mask
    0; with `unmasked`, the whole padding mask is 1 instead). Other inputs (mask_positions) are kept."""
    sequence = _sequence_length(inputs)
    padded = {}
    for key, value in inputs.items():
        value = np.asarray(value)
        if value.ndim == 2 and value.shape[1] == sequence and key != "mask_positions":
            value = np.concatenate([value, np.zeros((value.shape[0], length), value.dtype)], axis=1)
        padded[key] = value
    if unmasked:
        padded["padding_mask"] = np.ones_like(padded["padding_mask"])
    return padded


def _distinct_variables(model):
    return len({id(variable) for variable in model.weights})


def _rebuilt(model):
    """`type(model).from_config(model.get_config())` holding `model`'s weights."""
    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    return clone


def _with_policy(cls, init_kwargs, policy):
    """`cls` built under `policy`: keras-hub's recipe, a layer in `init_kwargs` (a task's backbone) rebuilt from
    its config under the policy; a backbone itself takes `dtype`."""
    kwargs = {}
    for key, value in init_kwargs.items():
        if isinstance(value, keras.Layer):
            value = type(value).from_config({**value.get_config(), "dtype": policy})
        kwargs[key] = value
    if not any(isinstance(value, keras.Layer) for value in init_kwargs.values()):
        kwargs["dtype"] = policy
    return cls(**kwargs)


def _quantize(model, mode):
    """`model.quantize(mode)`, quietly and without Keras' `gc.collect()` per replaced variable (0.5 s each in a
    test process, 15 s for a tiny model; it only frees memory sooner)."""
    with warnings.catch_warnings(), mock.patch.object(gc, "collect", lambda *args: 0):
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")
        model.quantize(mode)


# The checks ------------------------------------------------------------------------------------------------
def run_serialization_test(model, inputs):
    """`get_config` → `from_config`: an equal (JSON) config and, with the same weights, the same outputs."""
    config = json.dumps(model.get_config(), sort_keys=True)
    clone = _rebuilt(model)
    assert type(clone) is type(model)
    assert json.dumps(clone.get_config(), sort_keys=True) == config, "from_config(get_config()) changed the config"
    _assert_close(_numpy(clone(inputs)), _numpy(model(inputs)), SAME_WEIGHTS_TOLERANCE, "config round trip")


def run_variable_length_test(model, inputs, expected_output_shape):
    """Output shapes at the input's length L and at L + PAD; the real positions' outputs unchanged by masked
    padding, and changed by unmasked padding."""
    length = _sequence_length(inputs)
    expected = _expected_shapes(expected_output_shape)
    short = model(inputs)
    assert _shapes(short) == expected, ("outputs at length", length, _shapes(short), expected)
    long = model(_with_padding(inputs, PAD))
    assert _shapes(long) == _at_length(expected, length, length + PAD), ("outputs at length", length + PAD,
                                                                          _shapes(long))
    short, long = _numpy(short), _numpy(long)
    unmasked = _numpy(model(_with_padding(inputs, PAD, unmasked=True)))

    def first_positions(outputs):
        return {key: value[tuple(slice(0, n) for n in short[key].shape)] for key, value in outputs.items()}

    _assert_close(first_positions(long), short, PADDING_TOLERANCE, "masked padding appended")
    moved = max(relative_difference(value, short[key], compare_fill=False)
                for key, value in first_positions(unmasked).items())
    assert moved > UNMASKED_MIN_CHANGE, f"unmasked padding moved the outputs by only {moved:.3g}"


def run_model_saving_test(model, inputs):
    """`save_to_preset` + `from_preset` and `.keras` save + load: same class, variables and outputs."""
    expected = _numpy(model(inputs))
    with tempfile.TemporaryDirectory() as directory:
        preset = os.path.join(directory, "preset")
        model.save_to_preset(preset)
        try:
            model.save_to_preset(preset)
            raise AssertionError("save_to_preset overwrote a preset without overwrite=True")
        except FileExistsError as error:
            assert "overwrite=True" in str(error), error
        path = os.path.join(directory, "model.keras")
        model.save(path)
        for how, restored in (("from_preset", type(model).from_preset(preset)),
                              (".keras", keras.saving.load_model(path))):
            assert type(restored) is type(model), (how, type(restored))
            assert _distinct_variables(restored) == _distinct_variables(model), (how, "variable count")
            _assert_close(_numpy(restored(inputs)), expected, SAME_WEIGHTS_TOLERANCE, how)


def run_precision_test(model, cls, init_kwargs, inputs, policies=POLICIES, float32_outputs=()):
    """Each mixed policy: float32 variables, 16-bit layers and outputs (but `float32_outputs`), outputs finite
    and close to float32's."""
    expected = _numpy(model(inputs))
    for name in policies:
        policy = keras.dtype_policies.get(name)
        mixed = _with_policy(cls, init_kwargs, name)
        mixed.set_weights(model.get_weights())
        assert {v.dtype for v in mixed.weights if "float" in v.dtype} == {"float32"}, name
        # A task model itself carries no policy (a kzoo bug: tests/test_battery.py): its layers are checked.
        for layer in mixed._flatten_layers(include_self=not hasattr(mixed, "backbone")):
            if isinstance(layer, keras.layers.InputLayer):
                continue
            assert layer.compute_dtype == policy.compute_dtype, (name, layer.path, layer.compute_dtype)
            assert layer.variable_dtype == "float32", (name, layer.path, layer.variable_dtype)
        outputs = mixed(inputs)
        for key, value in _as_dict(outputs).items():
            dtype = "float32" if key in float32_outputs else policy.compute_dtype
            assert keras.backend.standardize_dtype(value.dtype) == dtype, (name, key, value.dtype)
        _assert_close(_numpy(outputs), expected, PRECISION_TOLERANCE[name], name, LOSSY_SCALE_FLOOR)


def run_quantization_test(model, inputs):
    """`quantize("int8")` on a copy: every Dense/EinsumDense/Embedding int8, outputs close to float32's; the
    int8 weights saved (`save_weights`) and loaded into another copy quantized the same way give the same
    outputs."""
    expected = _numpy(model(inputs))
    quantized = _rebuilt(model)
    _quantize(quantized, "int8")
    layers = [layer for layer in quantized._flatten_layers() if isinstance(layer, QUANTIZED_LAYERS)]
    assert layers and all(layer.quantization_mode == "int8" for layer in layers), [
        layer.path for layer in layers if layer.quantization_mode != "int8"]
    outputs = _numpy(quantized(inputs))
    _assert_close(outputs, expected, INT8_TOLERANCE, "int8", LOSSY_SCALE_FLOOR)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "int8.weights.h5")
        quantized.save_weights(path)
        restored = type(model).from_config(model.get_config())
        _quantize(restored, "int8")
        restored.load_weights(path)
        _assert_close(_numpy(restored(inputs)), outputs, SAME_WEIGHTS_TOLERANCE, "int8 weights file")
    return quantized


def run_quantized_saving_test(model, inputs):
    """An int8 model (`quantize("int8")` on a copy of `model`) saved with `save_to_preset` and as `.keras`
    reloads as int8 with the same outputs."""
    quantized = _rebuilt(model)
    _quantize(quantized, "int8")
    run_model_saving_test(quantized, inputs)


def run_fit_test(model, train_data, batch_size, run_eagerly=True):
    """One epoch of `fit` with the task's default compile (and `run_eagerly`): finite losses and weights, most
    trainable weights moved."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(train_data)
    before = [keras.ops.convert_to_numpy(v) for v in model.trainable_weights]
    model.compile(run_eagerly=run_eagerly)
    history = model.fit(x, y, sample_weight=sample_weight, batch_size=batch_size, epochs=1, shuffle=False,
                        verbose=0).history
    for key, values in history.items():
        assert np.isfinite(values).all(), (key, values)
    after = [keras.ops.convert_to_numpy(v) for v in model.trainable_weights]
    assert all(np.isfinite(value).all() for value in after), "fit made a weight non-finite"
    moved = sum(not np.array_equal(a, b) for a, b in zip(after, before))
    assert moved > len(before) // 2, f"fit changed only {moved} of {len(before)} trainable weights"


def run_predict_test(model, x, expected_output_shape, batch_size):
    """`predict` (compiled): `expected_output_shape` and the eager call's outputs."""
    predicted = model.predict(x, batch_size=batch_size, verbose=0)
    assert _shapes(predicted) == _expected_shapes(expected_output_shape), _shapes(predicted)
    _assert_close(_numpy(predicted), _numpy(model(x)), PREDICT_TOLERANCE, "predict")


# The batteries ---------------------------------------------------------------------------------------------
def run_backbone_test(cls, init_kwargs, input_data, expected_output_shape, run_mixed_precision_check=True,
                      run_quantization_check=True):
    """Every check above on the backbone `cls(**init_kwargs)` with `input_data` (a dict of (batch, L) arrays,
    padding rows included); `expected_output_shape` is a dict of output shapes at length L."""
    keras.utils.set_random_seed(0)
    backbone = cls(**init_kwargs)
    assert set(backbone.input) == set(input_data), ("inputs", sorted(backbone.input), sorted(input_data))
    run_variable_length_test(backbone, input_data, expected_output_shape)
    run_serialization_test(backbone, input_data)
    run_model_saving_test(backbone, input_data)
    if run_mixed_precision_check:
        run_precision_test(backbone, cls, init_kwargs, input_data)
    if run_quantization_check:
        run_quantization_test(backbone, input_data)


def run_task_test(cls, init_kwargs, train_data, expected_output_shape, batch_size=2, run_mixed_precision_check=True,
                  run_quantization_check=True, policies=POLICIES, float32_outputs=(), fit_policy=None,
                  fit_eagerly=True):
    """Every check above on the task `cls(**init_kwargs)` (`init_kwargs` holds its backbone) with the inputs of
    `train_data = (x, y[, sample_weight])`, then `predict` and `fit`; `expected_output_shape` is the output
    shape (or a dict of them) for `x`. The precision check runs under `policies`; `float32_outputs` name the
    outputs that stay float32 under a mixed policy. The fit runs eagerly (the loss, gradients and update of this
    task: a compiled step is XLA's work, and seconds to compile) unless `fit_eagerly=False`; with `fit_policy`
    (e.g. "mixed_bfloat16") it fits a copy built under that policy instead."""
    keras.utils.set_random_seed(0)
    task = cls(**init_kwargs)
    x, _, _ = keras.utils.unpack_x_y_sample_weight(train_data)
    assert set(task.input) == set(x), ("inputs", sorted(task.input), sorted(x))
    run_variable_length_test(task, x, expected_output_shape)
    run_serialization_test(task, x)
    run_model_saving_test(task, x)
    if run_mixed_precision_check:
        run_precision_test(task, cls, init_kwargs, x, policies=policies, float32_outputs=float32_outputs)
    if run_quantization_check:
        run_quantization_test(task, x)
    run_predict_test(task, x, expected_output_shape, batch_size)
    run_fit_test(task if fit_policy is None else _with_policy(cls, init_kwargs, fit_policy), train_data, batch_size,
                 run_eagerly=fit_eagerly)
