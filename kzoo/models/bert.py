"""BERT (Devlin et al. 2019): token + position + segment embeddings and L independent post-LN blocks."""

import keras

from kzoo.layers import TokenAndPositionEmbedding, TransformerStack
from kzoo.models.backbone import Backbone


@keras.saving.register_keras_serializable(package="kzoo")
class BertBackbone(Backbone):
    """BERT encoder with keras-hub's constructor names and dict inputs/outputs.

    Inputs `{"token_ids", "segment_ids", "padding_mask"}`, each int (batch, sequence); outputs
    `{"sequence_output": (batch, sequence, hidden_dim), "pooled_output": (batch, hidden_dim)}`.
    `from_preset` builds a named architecture or loads a saved folder (see `Backbone`).

    Args:
        vocabulary_size: the number of token ids.
        num_layers: the number of Transformer blocks.
        num_heads: attention heads per block; must divide `hidden_dim`.
        hidden_dim: the width of the embeddings, blocks and pooler.
        intermediate_dim: the width of each block's feed-forward layer.
        dropout: dropout rate in the embeddings and blocks (attention probabilities included).
        max_sequence_length: the number of learned positions: the longest input the model takes.
        num_segments: the number of segment (token type) ids.
        activation: "gelu" (exact erf, as Hugging Face) by default; keras-hub's BERT uses
            "gelu_approximate" (tanh).
        layer_norm_epsilon: the LayerNorms' epsilon.
        initializer_range: standard deviation of the truncated-normal initial weights.
        dtype: a Keras dtype policy name ("float32", "mixed_bfloat16", ...); None: Keras' global policy.
        **kwargs: `keras.Model` arguments (`name`).

    Example:
    >>> import numpy as np
    >>> model = BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                      intermediate_dim=32, max_sequence_length=64)
    >>> out = model({"token_ids": np.array([[2, 5, 7, 0]]), "segment_ids": np.zeros((1, 4), "int32"),
    ...              "padding_mask": np.array([[1, 1, 1, 0]])})
    >>> tuple(out["sequence_output"].shape), tuple(out["pooled_output"].shape)
    ((1, 4, 16), (1, 16))
    """

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, dropout=0.1,
                 max_sequence_length=512, num_segments=2, activation="gelu", layer_norm_epsilon=1e-12,
                 initializer_range=0.02, dtype=None, **kwargs):
        layer_kwargs = dict(dropout=dropout, layer_norm_epsilon=layer_norm_epsilon,
                            initializer_range=initializer_range, dtype=dtype)
        embedding = TokenAndPositionEmbedding(
            vocabulary_size, hidden_dim, max_sequence_length=max_sequence_length, num_segments=num_segments,
            name="embeddings", **layer_kwargs,
        )
        encoder = TransformerStack(
            num_layers, num_heads, hidden_dim, intermediate_dim, activation=activation, name="encoder",
            **layer_kwargs,
        )
        self._build_graph(embedding, encoder, dtype=dtype, **kwargs)
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
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
            hidden_dim=self.hidden_dim, intermediate_dim=self.intermediate_dim, dropout=self.dropout,
            max_sequence_length=self.max_sequence_length, num_segments=self.num_segments,
            activation=self.activation, layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
        )
        return config
