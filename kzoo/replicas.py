"""Replica arithmetic shared by the losses, the optimisers and the raw-text batches: `tf.distribute`'s replicas
(no-ops off TensorFlow, where `keras.distribution` runs one global program instead of per-replica copies), and
how many shards `keras.distribution` cuts each JAX batch into."""

import keras


def replica_count():
    """The number of `tf.distribute` replicas computing one step: 1 off TensorFlow, without a strategy, and in
    a strategy's cross-replica context (code run under `strategy.scope()` but outside `strategy.run` sees the
    whole batch).

    Example:
    >>> replica_count()
    1
    """
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def sum_over_replicas(value):
    """`value` (a tensor or a list of tensors) summed over the replicas; unchanged with one replica.

    Args:
        value: what this replica computed (inside `strategy.run` under `tf.distribute`).
    """
    if replica_count() == 1:
        return value
    import tensorflow as tf

    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def weighted_mean(values, weights=None):
    """Σ w·v / Σ w (a plain mean without weights; `weights` broadcast to `values`' shape), in float32.

    Under `tf.distribute` each replica returns its share: its own Σ w·v over the Σ w of the global batch, so
    the replicas' summed gradients are those of the global mean, however the weight falls between them (Keras'
    own losses divide a per-replica mean by the replica count, exact only for equal per-replica weights).

    Args:
        values: a tensor of per-item values (losses).
        weights: their weights, broadcastable to `values`; None: all 1.

    Returns:
        A float32 scalar.

    Example:
    >>> import numpy as np
    >>> float(weighted_mean(np.array([1.0, 3.0]), np.array([1.0, 0.0])))
    1.0
    """
    from keras import ops

    values = ops.cast(values, "float32")
    weights = ops.ones_like(values) if weights is None else ops.broadcast_to(ops.cast(weights, "float32"),
                                                                            ops.shape(values))
    return ops.sum(values * weights) / ops.maximum(sum_over_replicas(ops.sum(weights)), 1e-9)


def batch_shards():
    """How many parts the current `keras.distribution` (JAX) splits each batch's rows into: a batch fed to `fit`,
    `evaluate` or `predict` must have a multiple of it (JAX refuses uneven shards). 1 without a
    distribution and on TensorFlow, where `tf.distribute` splits uneven batches itself.

    Example:
    >>> batch_shards()   # no distribution set
    1
    """
    if keras.backend.backend() != "jax":
        return 1
    distribution = keras.distribution.distribution()
    if distribution is None:
        return 1
    mesh = distribution.device_mesh
    return int(mesh.shape[mesh.axis_names.index(distribution.batch_dim_name)])
