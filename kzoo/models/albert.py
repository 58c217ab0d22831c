"""ALBERT (Lan et al. 2020): factorized embeddings and one set of block weights shared across layers."""

import keras

from kzoo.layers import FactorizedEmbedding, SharedTransformerStack
from kzoo.models.backbone import Backbone


@keras.saving.register_keras_serializable(package="kzoo")
class AlbertBackbone(Backbone):
    """ALBERT encoder: V×E embeddings projected to H, and `num_groups` × `num_inner_repetitions` shared blocks.

    Layer i runs group `i // (num_layers // num_groups)`. Inputs and outputs are `BertBackbone`'s.

    Args:
        vocabulary_size: the number of token ids (V).
        num_layers: the number of layers run (L); must divide by `num_groups`.
        num_heads: attention heads per block; must divide `hidden_dim`.
        embedding_dim: the width of the embedding tables (E).
        hidden_dim: the width of the blocks and pooler (H).
        intermediate_dim: the width of each block's feed-forward layer.
        num_groups: the number of groups of shared blocks.
        num_inner_repetitions: the number of blocks in each group.
        dropout: dropout rate in the embeddings and blocks (ALBERT's is 0).
        max_sequence_length: the number of learned positions: the longest input the model takes.
        num_segments: the number of segment (token type) ids.
        activation: tanh GELU ("gelu_approximate", Hugging Face's "gelu_new") by default.
        layer_norm_epsilon: the LayerNorms' epsilon.
        initializer_range: standard deviation of the truncated-normal initial weights.
        dtype: a Keras dtype policy name; None: Keras' global policy.
        **kwargs: `keras.Model` arguments (`name`).

    Example:
    >>> import numpy as np
    >>> model = AlbertBackbone(vocabulary_size=100, num_layers=6, num_heads=2, hidden_dim=16,
    ...                        intermediate_dim=32, embedding_dim=8, max_sequence_length=64)
    >>> out = model({"token_ids": np.array([[2, 5, 7]]), "segment_ids": np.zeros((1, 3), "int32"),
    ...              "padding_mask": np.ones((1, 3))})
    >>> tuple(out["sequence_output"].shape), len(model.encoder.unique_blocks)
    ((1, 3, 16), 1)
    """

    def __init__(self, vocabulary_size, num_layers, num_heads, embedding_dim, hidden_dim, intermediate_dim,
                 num_groups=1, num_inner_repetitions=1, dropout=0.0, max_sequence_length=512, num_segments=2,
                 activation="gelu_approximate", layer_norm_epsilon=1e-12, initializer_range=0.02, dtype=None,
                 **kwargs):
        layer_kwargs = dict(dropout=dropout, layer_norm_epsilon=layer_norm_epsilon,
                            initializer_range=initializer_range, dtype=dtype)
        embedding = FactorizedEmbedding(
            vocabulary_size, embedding_dim, hidden_dim, max_sequence_length=max_sequence_length,
            num_segments=num_segments, name="embeddings", **layer_kwargs,
        )
        encoder = SharedTransformerStack(
            num_layers, num_heads, hidden_dim, intermediate_dim, num_groups=num_groups,
            num_inner_repetitions=num_inner_repetitions, activation=activation, name="encoder", **layer_kwargs,
        )
        self._build_graph(embedding, encoder, dtype=dtype, **kwargs)
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_groups = num_groups
        self.num_inner_repetitions = num_inner_repetitions
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size, num_layers=self.num_layers, num_heads=self.num_heads,
            embedding_dim=self.embedding_dim, hidden_dim=self.hidden_dim, intermediate_dim=self.intermediate_dim,
            num_groups=self.num_groups, num_inner_repetitions=self.num_inner_repetitions, dropout=self.dropout,
            max_sequence_length=self.max_sequence_length, num_segments=self.num_segments,
            activation=self.activation, layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
        )
        return config
