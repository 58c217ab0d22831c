"""`tf.distribute` replica arithmetic shared by the losses and the optimisers (no-ops off TensorFlow, where
`keras.distribution` runs one global program instead of per-replica copies)."""

import keras


def replica_count():
    """The number of `tf.distribute` replicas computing one step (1 off TensorFlow or without a strategy)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def sum_over_replicas(value):
    """`value` (a tensor or a list of tensors) summed over the replicas; unchanged with one replica."""
    if replica_count() == 1:
        return value
    import tensorflow as tf

    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)
