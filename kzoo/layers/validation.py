"""Checks on the tensors users hand in.

JAX clamps out-of-range gathers silently and TF's XLA path does the same, so an id past the vocabulary would
quietly read the last embedding row. These checks turn that into a clear error: eagerly with numpy when the
values are concrete, inside `jax.jit` with a host callback, and with graph asserts in a `tf.function`.
"""

import numpy as np
from keras import ops

from keras import backend as keras_backend


# What TF prints for the graph assert above: "assertion failed: [kzoo input check] [token_ids] [[200]] [[1 3]] [97]".
TF_CHECK_PATTERN = r"assertion failed: \[kzoo input check\] \[(\w+)\] \[\[?(-?\d+)\]?\] \[\[([\d ]+)\]\] \[(\d+)\]"


def is_concrete(x):
    """True when `x` holds values we can read now (not a symbolic or traced tensor)."""
    if isinstance(x, (np.ndarray, list, tuple, int)):
        return True
    if keras_backend.is_keras_tensor(x):
        return False
    name = keras_backend.backend()
    if name == "jax":
        import jax

        return not isinstance(x, jax.core.Tracer)
    if name == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly() and hasattr(x, "numpy")
    if name == "torch":
        import torch

        if torch.jit.is_tracing() or torch.compiler.is_compiling():  # torch.onnx / torch.export trace the model
            return False
        return isinstance(x, torch.Tensor) and type(x) is torch.Tensor and not x.is_meta  # not a fake tensor
    return False


def first_index(mask, offset=()):
    """(index within `mask`, index within the whole tensor) of `mask`'s first True; `offset` is where `mask`
    starts in the whole tensor (a shard of it)."""
    local = tuple(int(i) for i in np.argwhere(mask)[0])
    return local, tuple(i + (offset[k] if k < len(offset) else 0) for k, i in enumerate(local))


def check_range_numpy(values, high, what, offset=()):
    """Raise a one-line `ValueError` naming `what`, the first value outside [0, `high`), its index and `high`.
    `offset`: where `values` starts in the whole tensor (a shard of it), added to the index named."""
    values = np.asarray(values)
    bad = (values < 0) | (values >= high)
    if bad.any():
        local, index = first_index(bad, offset)
        raise ValueError(
            f"{what} has value {int(values[local])} at index {index}; "
            f"every value must be in [0, {high}) (limit {high})."
        )


def check_ids_in_range(ids, limit, what):
    """Raise `ValueError` naming `what`, the offending value and `limit` unless `0 <= ids < limit`.

    Returns `ids`; use the returned tensor, because in a `tf.function` it carries the check as a control
    dependency, so the check runs before the gather that would otherwise fail first with TF's own message.
    """
    if keras_backend.is_keras_tensor(ids):
        return ids
    if is_concrete(ids):
        check_range_numpy(ops.convert_to_numpy(ids), limit, what)
        return ids
    name = keras_backend.backend()
    if name == "jax":
        import jax

        jax.debug.callback(lambda v: check_range_numpy(v, limit, what), ids)
    elif name == "tensorflow":
        import tensorflow as tf

        bad = tf.logical_or(ids < 0, ids >= tf.cast(limit, ids.dtype))
        first = tf.where(bad)[:1]
        # The message's fields are read back by `kzoo.models.batch_checks` (TF_CHECK_PATTERN) into one line.
        check = tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)),
                                    ["kzoo input check", what, tf.gather_nd(ids, first), first, limit], summarize=8)
        with tf.control_dependencies([check]):
            return tf.identity(ids)
    return ids


def check_sequence_length(length, limit, what="token_ids"):
    """Raise `ValueError` when a static sequence length exceeds the model's `max_sequence_length`."""
    if length is not None and length > limit:
        raise ValueError(
            f"{what} has sequence length {length}, longer than max_sequence_length={limit}."
        )


def gather_positions(sequence, positions, what="mask_positions"):
    """`sequence[b, positions[b, p], :]` as (batch, P, features), after checking `positions` against the
    sequence length when it is static (JAX and XLA would clamp an out-of-range position silently)."""
    if isinstance(sequence.shape[1], int):
        positions = check_ids_in_range(positions, sequence.shape[1], what)
    return ops.take_along_axis(sequence, ops.cast(positions, "int32")[..., None], axis=1)
