"""Task heads on top of a backbone: pooler, tied MLM head, NSP and SOP heads."""

import keras
from keras import ops

from kzoo.layers.activations import get_activation
from kzoo.layers.embeddings import embedding_table
from kzoo.layers.initializers import truncated_normal
from kzoo.layers.validation import gather_positions


@keras.saving.register_keras_serializable(package="kzoo")
class Pooler(keras.layers.Layer):
    """Dense(H, tanh) on the first ([CLS]) token: (batch, sequence, H) → (batch, H).

    Args:
        hidden_dim: the output width (H).
        initializer_range: standard deviation of the truncated-normal initial kernel.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> tuple(Pooler(hidden_dim=8)(np.ones((2, 3, 8), "float32")).shape)
    (2, 8)
    """

    def __init__(self, hidden_dim, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.initializer_range = float(initializer_range)
        self.dense = keras.layers.Dense(
            self.hidden_dim, activation="tanh", kernel_initializer=truncated_normal(self.initializer_range),
            dtype=self.dtype_policy, name="dense",
        )

    def build(self, sequence_shape):
        self.dense.build((sequence_shape[0], sequence_shape[-1]))
        self.built = True

    def call(self, sequence_output):
        return self.dense(sequence_output[:, 0, :])

    def compute_output_shape(self, sequence_shape):
        return (sequence_shape[0], self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_dim=self.hidden_dim, initializer_range=self.initializer_range)
        return config


@keras.saving.register_keras_serializable(package="kzoo")
class MaskedLMHead(keras.layers.Layer):
    """Dense(E, activation) → LayerNorm → decoder to the vocabulary (+ bias), at the masked positions only.

    E is the word-embedding width (H for BERT, ALBERT's E for its H→E→V head). With `token_embedding` (a
    `keras.layers.Embedding`) the decoder is tied to it; without, the head owns a decoder kernel. The tie is not
    part of the config: the task model that owns both layers re-ties them when it is rebuilt. keras-hub's
    `MaskedLMHead` needs its own `ReversibleEmbedding`; this one ties to a plain Keras `Embedding` and validates
    `mask_positions` (JAX clamps out-of-range gathers).

    Call it as `head(sequence_output, mask_positions)`: (batch, sequence, H) and (batch, P) ints → logits (batch,
    P, `vocabulary_size`); without `mask_positions`, logits at every position.

    Args:
        vocabulary_size: the number of output logits per position (V).
        embedding_dim: the width of the decoder (E): the word embeddings' width.
        token_embedding: a `keras.layers.Embedding` of shape (V, E) to tie the decoder to, or None for an own
            decoder kernel.
        activation: the dense layer's activation (`get_activation` names).
        layer_norm_epsilon: the LayerNorm's epsilon.
        initializer_range: standard deviation of the truncated-normal initial weights.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> head = MaskedLMHead(vocabulary_size=50, embedding_dim=8)
    >>> tuple(head(np.ones((2, 6, 8), "float32"), np.array([[1, 4], [0, 5]])).shape)
    (2, 2, 50)
    """

    def __init__(self, vocabulary_size, embedding_dim, token_embedding=None, activation="gelu",
                 layer_norm_epsilon=1e-12, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.token_embedding = token_embedding
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.initializer_range = float(initializer_range)
        if token_embedding is not None and tuple(token_embedding.embeddings.shape) != (
            self.vocabulary_size, self.embedding_dim
        ):
            raise ValueError(
                f"token_embedding has shape {tuple(token_embedding.embeddings.shape)}, but the head expects "
                f"(vocabulary_size, embedding_dim) = ({self.vocabulary_size}, {self.embedding_dim})."
            )
        self.dense = keras.layers.Dense(
            self.embedding_dim, activation=get_activation(activation),
            kernel_initializer=truncated_normal(self.initializer_range), dtype=self.dtype_policy, name="dense",
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )

    def build(self, sequence_output_shape, mask_positions_shape=None):
        self.dense.build(sequence_output_shape)
        self.layer_norm.build(tuple(sequence_output_shape[:-1]) + (self.embedding_dim,))
        if self.token_embedding is None:
            self.decoder_kernel = self.add_weight(
                name="decoder_kernel", shape=(self.vocabulary_size, self.embedding_dim),
                initializer=truncated_normal(self.initializer_range),
            )
        self.bias = self.add_weight(name="bias", shape=(self.vocabulary_size,), initializer="zeros")
        self.built = True

    def call(self, sequence_output, mask_positions=None):
        x = sequence_output if mask_positions is None else gather_positions(sequence_output, mask_positions)
        x = self.layer_norm(self.dense(x))
        kernel = self.decoder_kernel if self.token_embedding is None else embedding_table(self.token_embedding)
        logits = ops.matmul(x, ops.transpose(ops.cast(kernel, x.dtype)))
        return logits + ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, sequence_output_shape, mask_positions_shape=None):
        length = sequence_output_shape[1] if mask_positions_shape is None else mask_positions_shape[1]
        return (sequence_output_shape[0], length, self.vocabulary_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size, embedding_dim=self.embedding_dim, activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon, initializer_range=self.initializer_range,
        )
        return config


@keras.saving.register_keras_serializable(package="kzoo")
class SentencePairHead(keras.layers.Layer):
    """Dense(num_classes) on the pooled output: the shape of both NSP and SOP.

    Args:
        num_classes: the number of output logits.
        initializer_range: standard deviation of the truncated-normal initial kernel.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> tuple(SentencePairHead()(np.ones((4, 8), "float32")).shape)
    (4, 2)
    """

    def __init__(self, num_classes=2, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.initializer_range = float(initializer_range)
        self.dense = keras.layers.Dense(
            self.num_classes, kernel_initializer=truncated_normal(self.initializer_range),
            dtype=self.dtype_policy, name="dense",
        )

    def build(self, pooled_shape):
        self.dense.build(pooled_shape)
        self.built = True

    def call(self, pooled_output):
        return self.dense(pooled_output)

    def compute_output_shape(self, pooled_shape):
        return (pooled_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, initializer_range=self.initializer_range)
        return config


@keras.saving.register_keras_serializable(package="kzoo")
class NextSentenceHead(SentencePairHead):
    """BERT's next-sentence prediction: label 0 = B follows A, 1 = B is a random sentence.

    Args: those of `SentencePairHead`.
    """


@keras.saving.register_keras_serializable(package="kzoo")
class SentenceOrderHead(SentencePairHead):
    """ALBERT's sentence-order prediction: label 0 = original order, 1 = the two segments swapped.

    Args: those of `SentencePairHead`.
    """
