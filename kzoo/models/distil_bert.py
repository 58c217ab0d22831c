"""DistilBERT (Sanh et al. 2019): BERT without token types and without a pooler."""

import keras

from kzoo.models.bert import BertBackbone


@keras.saving.register_keras_serializable(package="kzoo")
class DistilBertBackbone(BertBackbone):
    """DistilBERT encoder: inputs `{"token_ids", "padding_mask"}`, output `{"sequence_output"}`.

    BERT without segment ids and without a pooler.

    Args:
        vocabulary_size: the number of token ids.
        num_layers: the number of Transformer blocks.
        num_heads: attention heads per block; must divide `hidden_dim`.
        hidden_dim: the width of the embeddings and blocks.
        intermediate_dim: the width of each block's feed-forward layer.
        dropout: dropout rate in the embeddings and blocks.
        max_sequence_length: the number of learned positions: the longest input the model takes.
        activation: "gelu" (exact erf) by default.
        layer_norm_epsilon: the LayerNorms' epsilon.
        initializer_range: standard deviation of the truncated-normal initial weights.
        dtype: a Keras dtype policy name; None: Keras' global policy.
        **kwargs: `keras.Model` arguments (`name`).

    Example:
    >>> import numpy as np
    >>> model = DistilBertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                            intermediate_dim=32, max_sequence_length=64)
    >>> out = model({"token_ids": np.array([[2, 5, 7]]), "padding_mask": np.ones((1, 3))})
    >>> tuple(out["sequence_output"].shape)
    (1, 3, 16)
    """

    has_pooler = False
    uses_segments = False

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, dropout=0.1,
                 max_sequence_length=512, activation="gelu", layer_norm_epsilon=1e-12, initializer_range=0.02,
                 dtype=None, **kwargs):
        kwargs.pop("num_segments", None)
        super().__init__(
            vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, dropout=dropout,
            max_sequence_length=max_sequence_length, num_segments=0, activation=activation,
            layer_norm_epsilon=layer_norm_epsilon, initializer_range=initializer_range, dtype=dtype, **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        del config["num_segments"]
        return config
