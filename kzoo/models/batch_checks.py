"""Every batch a kzoo model is handed is checked on the host before a compiled step sees it.

Why by hand: Keras checks shapes, not values. An id past the vocabulary is clamped silently by JAX and XLA, and
a float id is truncated to an int silently on every backend. The layers check values too (`kzoo.layers.
validation`), but inside a compiled JAX step that check can only fail *after* Keras has handed the model's
variables to the step (`donate_argnums`): the step's error then leaves every variable empty, and each later
call fails with "'NoneType' object is not callable". So the values are checked here first, where a rejected
batch costs nothing: on JAX in front of each compiled step (datasets included), on every backend for arrays
handed to `fit`/`evaluate`/`predict`/`*_on_batch` and to eager calls. On TensorFlow a `tf.data` batch is
checked by the layers' graph asserts, turned back into the same one-line `ValueError` here.
"""

import contextlib
import re

import keras
import numpy as np

from kzoo.layers.validation import TF_CHECK_PATTERN, check_range_numpy, first_index, is_concrete

INTEGER_INPUTS = ("token_ids", "segment_ids", "padding_mask", "mask_positions")


def input_limits(model):
    """`{"token_ids": V, "segment_ids": S, "sequence_length": L}` from the model's embedding layers (the
    smallest of each when a model holds two, as a `Distiller` does)."""
    from kzoo.layers.embeddings import TokenAndPositionEmbedding

    embeddings = [layer for layer in model._flatten_layers() if isinstance(layer, TokenAndPositionEmbedding)]
    if not embeddings:
        return {}
    limits = {"token_ids": min(e.vocabulary_size for e in embeddings),
              "sequence_length": min(e.max_sequence_length for e in embeddings)}
    segments = [e.num_segments for e in embeddings if e.num_segments > 0]
    if segments:
        limits["segment_ids"] = min(segments)
    return limits


def _integers(name, value, offset=()):
    """`value` as a numpy integer array, or a `ValueError` naming the first value that is not a whole number."""
    array = np.asarray(value)
    if array.dtype.kind in "iub":
        return array
    if array.dtype.kind != "f":
        raise ValueError(f"{name} must hold integer ids; got an array of dtype {array.dtype}.")
    fractional = ~np.isfinite(array) | (array != np.round(array))
    if fractional.any():
        local, index = first_index(fractional, offset)
        raise ValueError(f"{name} must hold integer ids; got {array[local]!r} at index {index} "
                         f"(an array of dtype {array.dtype}).")
    return array.astype(np.int64)


def _host_pieces(value):
    """[(offset, numpy array)] of what this process holds of `value`: all of it, or (a global JAX array on
    several hosts) its local shards, each with where it starts in the whole array."""
    if getattr(value, "is_fully_addressable", True) is False:
        return [(tuple(piece.start or 0 for piece in shard.index), np.asarray(shard.data))
                for shard in value.addressable_shards]
    return [((), keras.ops.convert_to_numpy(value))]


def check_batch(x, limits):
    """Raise a one-line `ValueError` naming the input, the value, its index and the limit unless every integer
    input of the dict `x` is a whole number in range and no sequence is longer than the model's maximum."""
    if not isinstance(x, dict):
        return
    present = {name: x[name] for name in INTEGER_INPUTS if name in x and x[name] is not None and is_concrete(x[name])}
    if "token_ids" in present and len(np.shape(present["token_ids"])) >= 2 and "sequence_length" in limits:
        length = np.shape(present["token_ids"])[1]
        if length > limits["sequence_length"]:
            raise ValueError(f"token_ids has sequence length {length}, longer than max_sequence_length="
                             f"{limits['sequence_length']}.")
    bounds = {name: limits[name] for name in ("token_ids", "segment_ids") if name in limits}
    if "token_ids" in present and len(np.shape(present["token_ids"])) >= 2:
        bounds["mask_positions"] = np.shape(present["token_ids"])[1]
    for name, value in present.items():
        for offset, piece in _host_pieces(value):
            piece = _integers(name, piece, offset)
            if name in bounds:
                check_range_numpy(piece, bounds[name], name, offset)


@contextlib.contextmanager
def graph_checks_as_value_errors(on_failure=None):
    """Re-raise a TensorFlow graph assert from `kzoo.layers.validation` as the one-line `ValueError` an eager
    call gives (TF reports it as a multi-line `InvalidArgumentError` with the graph's stack), after calling
    `on_failure()`."""
    try:
        yield
    except Exception as error:
        match = re.search(TF_CHECK_PATTERN, str(error)) if type(error).__name__ == "InvalidArgumentError" else None
        if match is None:
            raise
        if on_failure is not None:
            on_failure()
        name, value, index, limit = match.groups()
        index = tuple(int(i) for i in index.split())
        raise ValueError(f"{name} has value {value} at index {index}; every value must be in [0, {limit}) "
                         f"(limit {limit}).") from None


class _AppliedSteps(keras.callbacks.Callback):
    """Counts the training steps `fit` finished, to put the optimizer's step count back after a rejected one.
    (The rejected step's dropout seeds have moved on too: those are left, as they change no weight.)"""

    def __init__(self, optimizer):
        super().__init__()
        self.optimizer, self.earlier_epochs, self.this_epoch = optimizer, 0, 0
        self.start = int(optimizer.iterations.numpy()) if optimizer.built else 0

    def on_train_batch_end(self, batch, logs=None):
        self.this_epoch = batch + 1  # `batch` is the last step done: one call covers steps_per_execution steps

    def on_epoch_end(self, epoch, logs=None):
        self.earlier_epochs, self.this_epoch = self.earlier_epochs + self.this_epoch, 0

    def restore(self):
        if self.optimizer.built:
            self.optimizer.iterations.assign(self.start + self.earlier_epochs + self.this_epoch)


def with_callback(callbacks, callback):
    """`fit`'s `callbacks` argument (None, a list or a `CallbackList`) with `callback` added."""
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks.append(callback)
        return callbacks
    return list(callbacks or []) + [callback]


# The state tuple a compiled JAX step takes, by length: fit's, evaluate's, predict's (keras/backend/jax/trainer.py).
_JAX_STATE_PARTS = {4: ("trainable_variables", "non_trainable_variables", "optimizer_variables", "metrics_variables"),
                    3: ("trainable_variables", "non_trainable_variables", "metrics_variables"),
                    2: ("trainable_variables", "non_trainable_variables")}


class BatchChecksMixin:
    """Mixed into kzoo's models (before `keras.Model`): batches are checked before they reach a compiled step,
    and a rejected batch leaves the model as it was (see the module docstring)."""

    def _check_arrays(self, x):
        if isinstance(x, (list, tuple)) and isinstance(getattr(self, "_inputs_struct", None), dict):
            names = sorted(self._inputs_struct)  # how Keras matches a list to dict inputs: by sorted key
            x = dict(zip(names, x)) if len(x) == len(names) else x
        check_batch(x, self._input_limits())

    def _input_limits(self):
        if getattr(self, "_kzoo_input_limits", None) is None:  # the layers are fixed once built
            object.__setattr__(self, "_kzoo_input_limits", input_limits(self))  # a plain attribute, not tracked
        return self._kzoo_input_limits

    def __call__(self, *args, **kwargs):
        # Before Keras casts the inputs to int32 (truncating a float id) and wraps errors in a call report.
        if args:
            self._check_arrays(args[0])
        return super().__call__(*args, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_arrays(x)
        validation = kwargs.get("validation_data")
        if isinstance(validation, (list, tuple)) and validation:
            self._check_arrays(validation[0])
        if keras.backend.backend() != "tensorflow" or self.optimizer is None:
            return super().fit(x, y, *args, **kwargs)
        # A TF step stopped by a graph check has already counted itself in the optimizer's `iterations` (that
        # increment does not wait for the gradients): put the count back to the steps that were applied.
        steps = _AppliedSteps(self.optimizer)
        kwargs["callbacks"] = with_callback(kwargs.get("callbacks"), steps)
        with graph_checks_as_value_errors(on_failure=steps.restore):
            return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_arrays(x)
        with graph_checks_as_value_errors():
            return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_arrays(x)
        with graph_checks_as_value_errors():
            return super().predict(x, *args, **kwargs)

    def train_on_batch(self, x, *args, **kwargs):
        self._check_arrays(x)
        return super().train_on_batch(x, *args, **kwargs)

    def test_on_batch(self, x, *args, **kwargs):
        self._check_arrays(x)
        return super().test_on_batch(x, *args, **kwargs)

    def predict_on_batch(self, x):
        self._check_arrays(x)
        return super().predict_on_batch(x)

    def _make_function(self, step_function, *args, **kwargs):
        """On JAX Keras' trainer wraps each compiled step here: check each batch, datasets included, before the
        step. When the step fails (a rejected batch, or an error while tracing it) before its state was
        donated, the variables Keras took out of the model for the loop are put back."""
        if keras.backend.backend() != "jax":
            return super()._make_function(step_function, *args, **kwargs)

        def checked_step(state, data):
            try:
                self._check_arrays(data[0] if isinstance(data, (tuple, list)) else data)
                return step_function(state, data)
            except BaseException:
                self._put_back(state)
                raise

        return super()._make_function(checked_step, *args, **kwargs)

    def _put_back(self, state):
        parts = _JAX_STATE_PARTS.get(len(state))
        if parts is None or any(getattr(leaf, "is_deleted", lambda: False)() for leaf in keras.tree.flatten(state)):
            return  # an unknown layout, or the step had taken (donated) the values: nothing left to put back
        self._jax_state = dict(zip(parts, state))
        self._jax_state_synced = False
        self.jax_state_sync()
