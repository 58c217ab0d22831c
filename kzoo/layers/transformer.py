"""The post-LN Transformer block and the two ways of stacking it: unshared (BERT) and shared (ALBERT)."""

import keras

from kzoo.layers.activations import get_activation
from kzoo.layers.attention import MultiHeadSelfAttention
from kzoo.layers.initializers import truncated_normal
from kzoo.layers.validation import gather_positions


@keras.saving.register_keras_serializable(package="kzoo")
class TransformerBlock(keras.layers.Layer):
    """Post-LN block: `x = LN(x + Attn(x)); x = LN(x + FFN(x))`, FFN = Dense(I, activation) → Dense(H).

    Call it as `block(inputs, padding_mask)`: (batch, sequence, H) and (batch, sequence) → (batch, sequence, H).

    Args:
        num_heads: the number of attention heads; must divide `hidden_dim`.
        hidden_dim: the width of the inputs and outputs (H).
        intermediate_dim: the width of the feed-forward layer (I).
        activation: the feed-forward activation: "gelu" (erf), "gelu_approximate" (tanh) or a Keras name.
        dropout: dropout rate after attention and after the feed-forward layer.
        attention_dropout: dropout rate on the attention probabilities; None: `dropout`.
        layer_norm_epsilon: the LayerNorms' epsilon.
        initializer_range: standard deviation of the truncated-normal initial kernels.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> block = TransformerBlock(num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> tuple(block(np.ones((1, 3, 8), "float32"), np.array([[1, 1, 0]])).shape)
    (1, 3, 8)
    """

    def __init__(
        self,
        num_heads,
        hidden_dim,
        intermediate_dim,
        activation="gelu",
        dropout=0.0,
        attention_dropout=None,
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.intermediate_dim = int(intermediate_dim)
        self.activation = activation
        get_activation(activation)  # fail at construction on an unknown name
        self.dropout = float(dropout)
        self.attention_dropout = self.dropout if attention_dropout is None else float(attention_dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.initializer_range = float(initializer_range)
        policy = self.dtype_policy
        init = truncated_normal(self.initializer_range)
        self.attention = MultiHeadSelfAttention(
            self.num_heads, self.hidden_dim, dropout=self.attention_dropout,
            initializer_range=self.initializer_range, dtype=policy, name="attention",
        )
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="attention_layer_norm"
        )
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_dim, activation=get_activation(activation), kernel_initializer=init,
            dtype=policy, name="intermediate",
        )
        self.output_dense = keras.layers.Dense(
            self.hidden_dim, kernel_initializer=init, dtype=policy, name="output"
        )
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="output_layer_norm"
        )
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy)

    def build(self, inputs_shape, padding_mask_shape=None):
        self.attention.build(inputs_shape)
        self.attention_layer_norm.build(inputs_shape)
        self.intermediate_dense.build(inputs_shape)
        self.output_dense.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
        self.output_layer_norm.build(inputs_shape)
        self.built = True

    def call(self, inputs, padding_mask=None, training=None, query_positions=None):
        """With `query_positions` (batch, Q), the block's output at those rows only, (batch, Q, H): every
        step after attention is per position, so the other rows need not be computed."""
        x = inputs if query_positions is None else gather_positions(inputs, query_positions)
        attended = self.attention(inputs, padding_mask, training=training, query_inputs=x)
        x = self.attention_layer_norm(x + self.dropout_layer(attended, training=training))
        transformed = self.output_dense(self.intermediate_dense(x))
        return self.output_layer_norm(x + self.dropout_layer(transformed, training=training))

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads, hidden_dim=self.hidden_dim, intermediate_dim=self.intermediate_dim,
            activation=self.activation, dropout=self.dropout, attention_dropout=self.attention_dropout,
            layer_norm_epsilon=self.layer_norm_epsilon, initializer_range=self.initializer_range,
        )
        return config


class _BlockStack(keras.layers.Layer):
    """Runs `num_layers` layers, each a list of blocks given by `blocks_for_layer(i)`.

    `call(..., return_hidden_states=True)` returns all L + 1 hidden states (the input first), as Hugging Face's
    `output_hidden_states` does; otherwise the last one.
    """

    def __init__(self, num_layers, block_kwargs, **kwargs):
        super().__init__(**kwargs)
        if int(num_layers) < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}.")
        self.num_layers = int(num_layers)
        self.block_kwargs = dict(block_kwargs)

    def _make_block(self, name):
        return TransformerBlock(**self.block_kwargs, dtype=self.dtype_policy, name=name)

    def blocks_for_layer(self, index):
        raise NotImplementedError

    @property
    def unique_blocks(self):
        raise NotImplementedError

    def build(self, inputs_shape, padding_mask_shape=None):
        for block in self.unique_blocks:
            block.build(inputs_shape)
        self.built = True

    def call(self, inputs, padding_mask=None, training=None, return_hidden_states=False, query_positions=None):
        """With `query_positions` (batch, Q), the very last block runs at those rows only and the last hidden
        state is (batch, Q, H): all a pretraining loss reads (the masked tokens and [CLS]), for less work."""
        x = inputs
        hidden_states = [x]
        for index in range(self.num_layers):
            blocks = self.blocks_for_layer(index)
            for inner, block in enumerate(blocks):
                last = index == self.num_layers - 1 and inner == len(blocks) - 1
                x = block(x, padding_mask, training=training, query_positions=query_positions if last else None)
            hidden_states.append(x)
        return hidden_states if return_hidden_states else x

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, **self.block_kwargs)
        return config


def _block_kwargs(num_heads, hidden_dim, intermediate_dim, activation, dropout, attention_dropout,
                  layer_norm_epsilon, initializer_range):
    return dict(
        num_heads=num_heads, hidden_dim=hidden_dim, intermediate_dim=intermediate_dim, activation=activation,
        dropout=dropout, attention_dropout=attention_dropout, layer_norm_epsilon=layer_norm_epsilon,
        initializer_range=initializer_range,
    )


@keras.saving.register_keras_serializable(package="kzoo")
class TransformerStack(_BlockStack):
    """`num_layers` independent post-LN blocks (BERT, DistilBERT).

    Call it as `stack(inputs, padding_mask)`; with `return_hidden_states=True` it returns the L + 1 hidden
    states (its input first) instead of the last one.

    Args:
        num_layers: the number of blocks (L).
        num_heads, hidden_dim, intermediate_dim, activation, dropout, attention_dropout, layer_norm_epsilon,
            initializer_range: every block's, as in `TransformerBlock`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> stack = TransformerStack(num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> len(stack(np.ones((1, 3, 8), "float32"), return_hidden_states=True))
    3
    """

    def __init__(self, num_layers, num_heads, hidden_dim, intermediate_dim, activation="gelu", dropout=0.0,
                 attention_dropout=None, layer_norm_epsilon=1e-12, initializer_range=0.02, **kwargs):
        block_kwargs = _block_kwargs(num_heads, hidden_dim, intermediate_dim, activation, dropout,
                                     attention_dropout, layer_norm_epsilon, initializer_range)
        super().__init__(num_layers, block_kwargs, **kwargs)
        self.blocks = [self._make_block(f"transformer_layer_{i}") for i in range(self.num_layers)]

    def blocks_for_layer(self, index):
        return [self.blocks[index]]

    @property
    def unique_blocks(self):
        return list(self.blocks)


@keras.saving.register_keras_serializable(package="kzoo")
class SharedTransformerStack(_BlockStack):
    """ALBERT's cross-layer sharing: `num_groups` G groups of `num_inner_repetitions` K blocks.

    Layer i runs group `i // (L // G)`, which runs its K blocks in order; there are G×K blocks whatever L is.
    Called as `TransformerStack` is.

    Args:
        num_layers: the number of layers (L); must divide by `num_groups`.
        num_heads, hidden_dim, intermediate_dim: every block's, as in `TransformerBlock`.
        num_groups: the number of groups of blocks (G).
        num_inner_repetitions: the number of blocks in each group (K).
        activation: every block's; ALBERT's tanh GELU by default.
        dropout, attention_dropout, layer_norm_epsilon, initializer_range: every block's.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> stack = SharedTransformerStack(num_layers=12, num_heads=2, hidden_dim=8, intermediate_dim=16)
    >>> y = stack(np.ones((1, 3, 8), "float32"))
    >>> len(stack.unique_blocks), stack.count_params() == stack.unique_blocks[0].count_params()
    (1, True)
    """

    def __init__(self, num_layers, num_heads, hidden_dim, intermediate_dim, num_groups=1, num_inner_repetitions=1,
                 activation="gelu_approximate", dropout=0.0, attention_dropout=None, layer_norm_epsilon=1e-12,
                 initializer_range=0.02, **kwargs):
        block_kwargs = _block_kwargs(num_heads, hidden_dim, intermediate_dim, activation, dropout,
                                     attention_dropout, layer_norm_epsilon, initializer_range)
        super().__init__(num_layers, block_kwargs, **kwargs)
        if int(num_groups) < 1 or self.num_layers % int(num_groups) != 0:
            raise ValueError(
                f"num_layers={self.num_layers} is not divisible by num_groups={num_groups}; "
                "ALBERT assigns each group num_layers / num_groups consecutive layers."
            )
        if int(num_inner_repetitions) < 1:
            raise ValueError(f"num_inner_repetitions must be at least 1, got {num_inner_repetitions}.")
        self.num_groups = int(num_groups)
        self.num_inner_repetitions = int(num_inner_repetitions)
        # One flat list (group-major) so Keras tracks every block; group g is blocks[g*K:(g+1)*K].
        self.shared_blocks = [
            self._make_block(f"group_{g}_inner_{k}")
            for g in range(self.num_groups)
            for k in range(self.num_inner_repetitions)
        ]

    def group_for_layer(self, index):
        return index // (self.num_layers // self.num_groups)

    def blocks_for_layer(self, index):
        start = self.group_for_layer(index) * self.num_inner_repetitions
        return self.shared_blocks[start : start + self.num_inner_repetitions]

    @property
    def unique_blocks(self):
        return list(self.shared_blocks)

    def get_config(self):
        config = super().get_config()
        config.update(num_groups=self.num_groups, num_inner_repetitions=self.num_inner_repetitions)
        return config
