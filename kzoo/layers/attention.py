"""Multi-head self-attention on `keras.ops.dot_product_attention`."""

import math

import keras
from keras import ops

from kzoo.layers.initializers import truncated_normal


@keras.saving.register_keras_serializable(package="kzoo")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Self-attention with separate query/key/value/output projections (they map one-to-one to the
    Hugging Face and keras-hub checkpoints).

    Written here rather than taken from `keras.layers.MultiHeadAttention` because that layer only routes to
    `ops.dot_product_attention` (each backend's fused kernel) when flash attention is enabled globally, and
    otherwise materialises the scores with einsum + softmax. Here inference always takes the fused op;
    only training with attention dropout > 0 takes the explicit path, because the fused op has no dropout
    (and float16 on a JAX CPU: `_fused_attention_unavailable`).

    Call it as `layer(inputs, padding_mask)`: inputs (batch, sequence, `hidden_dim`), padding_mask (batch,
    sequence) with 1 for real tokens and 0 for padding, which no token attends to.

    Args:
        num_heads: the number of attention heads; must divide `hidden_dim`.
        hidden_dim: the width of the inputs, outputs and of every projection.
        dropout: dropout rate on the attention probabilities (training only).
        initializer_range: standard deviation of the truncated-normal initial kernels.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> layer = MultiHeadSelfAttention(num_heads=2, hidden_dim=8)
    >>> tuple(layer(np.ones((1, 3, 8), "float32"), np.array([[1, 1, 0]])).shape)
    (1, 3, 8)
    """

    def __init__(self, num_heads, hidden_dim, dropout=0.0, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads != 0:
            raise ValueError(
                f"hidden_dim={hidden_dim} is not divisible by num_heads={num_heads}; "
                "each head needs hidden_dim / num_heads features."
            )
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.head_dim = self.hidden_dim // self.num_heads
        self.dropout = float(dropout)
        self.initializer_range = float(initializer_range)

        def dense(name):
            return keras.layers.Dense(
                self.hidden_dim, kernel_initializer=truncated_normal(self.initializer_range),
                dtype=self.dtype_policy, name=name,
            )

        self.query_dense = dense("query")
        self.key_dense = dense("key")
        self.value_dense = dense("value")
        self.output_dense = dense("attention_output")
        self.probs_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, inputs_shape, padding_mask_shape=None):
        for layer in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            layer.build(inputs_shape)
        self.built = True

    def _split_heads(self, x):
        # (batch, seq, hidden) -> (batch, seq, heads, head_dim): the layout dot_product_attention takes.
        shape = ops.shape(x)
        return ops.reshape(x, (shape[0], shape[1], self.num_heads, self.head_dim))

    def call(self, inputs, padding_mask=None, training=None, query_inputs=None):
        """`query_inputs` (batch, Q, H), default `inputs`: the rows that attend to every row of `inputs`."""
        query = self._split_heads(self.query_dense(inputs if query_inputs is None else query_inputs))
        key = self._split_heads(self.key_dense(inputs))
        value = self._split_heads(self.value_dense(inputs))
        mask = None
        if padding_mask is not None:
            mask = ops.cast(padding_mask, "bool")[:, None, None, :]  # (batch, 1, 1, key_seq)
        scale = 1.0 / math.sqrt(self.head_dim)
        if (training and self.dropout > 0) or _fused_attention_unavailable(query.dtype):
            context = self._explicit_attention(query, key, value, mask, scale, training)
        else:
            context = ops.dot_product_attention(query, key, value, mask=mask, scale=scale)
        shape = ops.shape(context)
        context = ops.reshape(context, (shape[0], shape[1], self.hidden_dim))
        return self.output_dense(context)

    def _explicit_attention(self, query, key, value, mask, scale, training):
        scores = ops.cast(ops.einsum("bqhd,bkhd->bhqk", query, key), "float32") * scale
        if mask is not None:
            scores = ops.where(mask, scores, -1e9)
        probs = ops.softmax(scores, axis=-1)
        probs = self.probs_dropout(ops.cast(probs, value.dtype), training=training)
        return ops.einsum("bhqk,bkhd->bqhd", probs, value)

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads, hidden_dim=self.hidden_dim, dropout=self.dropout,
            initializer_range=self.initializer_range,
        )
        return config


def _fused_attention_unavailable(dtype):
    """True for float16 on JAX's CPU backend, where `jax.nn.dot_product_attention` asks XLA for a float16
    matmul accumulating in float32, which XLA's CPU backend does not have ("precision 'F16_F16_F32' is not
    supported by dot_general on CPU"); GPUs have it."""
    if keras.backend.backend() != "jax" or keras.backend.standardize_dtype(dtype) != "float16":
        return False
    import jax

    return jax.default_backend() == "cpu"
