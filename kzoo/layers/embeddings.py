"""Input embeddings: BERT's token + position + segment sum, and ALBERT's factorized variant."""

import keras
from keras import ops

from kzoo.layers.initializers import truncated_normal, zero_init  # noqa: F401 (zero_init's old home)
from kzoo.layers.validation import check_ids_in_range, check_sequence_length


def embedding_table(layer):
    """The float table of a `keras.layers.Embedding`. After Keras' `quantize("int8")` its `embeddings` are the
    raw integers, so reading them directly (a position slice, a tied decoder) needs its per-row scale undone."""
    table = layer.embeddings
    if layer.quantization_mode in ("int8", "int4"):
        table = ops.divide(ops.cast(table, "float32"), ops.expand_dims(ops.cast(layer.embeddings_scale, "float32"), -1))
    return table


@keras.saving.register_keras_serializable(package="kzoo")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Word + learned position (+ segment) embeddings, then LayerNorm and dropout.

    Token ids, segment ids and the sequence length are validated against their limits on every backend (JAX
    would otherwise clamp out-of-range ids silently). Call it as `layer(token_ids, segment_ids)`, both (batch,
    sequence) ints; the output is (batch, sequence, `embedding_dim`).

    Args:
        vocabulary_size: the number of token ids.
        embedding_dim: the width of every embedding table and of the output.
        max_sequence_length: the number of learned positions: the longest input it takes.
        num_segments: the number of segment (token type) ids; 0 drops the segment table (DistilBERT), and then
            `segment_ids` are not needed.
        dropout: dropout rate after the LayerNorm.
        layer_norm_epsilon: the LayerNorm's epsilon.
        initializer_range: standard deviation of the truncated-normal initial weights.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> layer = TokenAndPositionEmbedding(vocabulary_size=100, embedding_dim=16, max_sequence_length=32)
    >>> tuple(layer(np.array([[1, 2, 3]]), np.array([[0, 0, 1]])).shape)
    (1, 3, 16)
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        max_sequence_length=512,
        num_segments=2,
        dropout=0.0,
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.max_sequence_length = int(max_sequence_length)
        self.num_segments = int(num_segments)
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.initializer_range = float(initializer_range)
        init = truncated_normal(self.initializer_range)
        self.token_embedding = keras.layers.Embedding(
            self.vocabulary_size, self.embedding_dim, embeddings_initializer=init,
            dtype=self.dtype_policy, name="token_embedding",
        )
        self.position_embedding = keras.layers.Embedding(
            self.max_sequence_length, self.embedding_dim, embeddings_initializer=init,
            dtype=self.dtype_policy, name="position_embedding",
        )
        self.segment_embedding = None
        if self.num_segments > 0:
            self.segment_embedding = keras.layers.Embedding(
                self.num_segments, self.embedding_dim, embeddings_initializer=init,
                dtype=self.dtype_policy, name="segment_embedding",
            )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, token_ids_shape, segment_ids_shape=None):
        self.token_embedding.build(token_ids_shape)
        self.position_embedding.build(token_ids_shape)
        if self.segment_embedding is not None:
            self.segment_embedding.build(token_ids_shape)
        self.layer_norm.build(tuple(token_ids_shape) + (self.embedding_dim,))
        self.built = True

    def call(self, token_ids, segment_ids=None, training=None):
        sequence_length = token_ids.shape[1]
        check_sequence_length(sequence_length, self.max_sequence_length)
        token_ids = check_ids_in_range(token_ids, self.vocabulary_size, "token_ids")
        x = self.token_embedding(token_ids)
        # Positions 0..S-1 are the first S rows of the table; a static slice needs no gather.
        positions = embedding_table(self.position_embedding)[: ops.shape(token_ids)[1]]
        x = x + ops.cast(positions, x.dtype)
        if self.segment_embedding is not None:
            if segment_ids is None:
                raise ValueError("segment_ids are required when num_segments > 0.")
            segment_ids = check_ids_in_range(segment_ids, self.num_segments, "segment_ids")
            x = x + self.segment_embedding(segment_ids)
        x = self.layer_norm(x)
        return self.dropout_layer(x, training=training)

    def compute_output_shape(self, token_ids_shape, segment_ids_shape=None):
        return tuple(token_ids_shape) + (self.embedding_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            max_sequence_length=self.max_sequence_length,
            num_segments=self.num_segments,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
        )
        return config


@keras.saving.register_keras_serializable(package="kzoo")
class FactorizedEmbedding(TokenAndPositionEmbedding):
    """ALBERT's embedding: V×E tables, LayerNorm and dropout at width E, then a Dense E→H projection.

    Args:
        vocabulary_size: the number of token ids (V).
        embedding_dim: the width of the embedding tables (E).
        hidden_dim: the width of the output (H).
        **kwargs: the other `TokenAndPositionEmbedding` arguments (`max_sequence_length`, `num_segments`, ...).

    Example:
    >>> import numpy as np
    >>> layer = FactorizedEmbedding(vocabulary_size=100, embedding_dim=8, hidden_dim=32)
    >>> tuple(layer(np.array([[1, 2, 3]]), np.array([[0, 0, 1]])).shape)
    (1, 3, 32)
    """

    def __init__(self, vocabulary_size, embedding_dim, hidden_dim, **kwargs):
        super().__init__(vocabulary_size, embedding_dim, **kwargs)
        self.hidden_dim = int(hidden_dim)
        self.projection = keras.layers.Dense(
            self.hidden_dim, kernel_initializer=truncated_normal(self.initializer_range),
            dtype=self.dtype_policy, name="projection",
        )

    def build(self, token_ids_shape, segment_ids_shape=None):
        super().build(token_ids_shape, segment_ids_shape)
        self.projection.build(tuple(token_ids_shape) + (self.embedding_dim,))

    def call(self, token_ids, segment_ids=None, training=None):
        return self.projection(super().call(token_ids, segment_ids, training=training))

    def compute_output_shape(self, token_ids_shape, segment_ids_shape=None):
        return tuple(token_ids_shape) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config["hidden_dim"] = self.hidden_dim
        return config
