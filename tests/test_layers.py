"""Layers against numpy references and their config round trips."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from kzoo import layers
from kzoo.layers import activations


def np_attention(x, wq, bq, wk, bk, wv, bv, wo, bo, mask, heads):
    b, s, h = x.shape
    d = h // heads

    def split(t):
        return t.reshape(b, s, heads, d).transpose(0, 2, 1, 3)

    q, k, v = split(x @ wq + bq), split(x @ wk + bk), split(x @ wv + bv)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)
    scores = np.where(mask[:, None, None, :] > 0, scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
    return context @ wo + bo


def test_attention_matches_numpy_reference():
    rng = np.random.default_rng(0)
    layer = layers.MultiHeadSelfAttention(num_heads=4, hidden_dim=16)
    x = rng.normal(size=(2, 5, 16)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], "int32")
    out = ops.convert_to_numpy(layer(x, mask))
    weights = [ops.convert_to_numpy(w) for d in (layer.query_dense, layer.key_dense, layer.value_dense,
                                                  layer.output_dense) for w in (d.kernel, d.bias)]
    expected = np_attention(x, *weights, mask=mask, heads=4)
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


def test_attention_training_path_equals_fused_path_without_dropout():
    rng = np.random.default_rng(1)
    layer = layers.MultiHeadSelfAttention(num_heads=2, hidden_dim=8, dropout=0.5)
    x = rng.normal(size=(2, 4, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], "int32")
    fused = ops.convert_to_numpy(layer(x, mask, training=False))
    dropped = ops.convert_to_numpy(layer(x, mask, training=True))
    assert np.abs(dropped - fused).max() > 1e-3  # training really takes the dropout path
    layer.probs_dropout.rate = 0.0  # same path (training and dropout > 0 in config), no units dropped
    explicit = ops.convert_to_numpy(layer(x, mask, training=True))
    np.testing.assert_allclose(explicit, fused, atol=1e-5)


def test_hidden_dim_not_divisible_by_heads_is_rejected():
    with pytest.raises(ValueError, match="hidden_dim=10 is not divisible by num_heads=4"):
        layers.MultiHeadSelfAttention(num_heads=4, hidden_dim=10)


def test_gelu_variants_match_their_formulas():
    x = np.linspace(-5, 5, 101).astype("float32")
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    tanh = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(ops.convert_to_numpy(activations.get_activation("gelu")(x)), exact, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(activations.get_activation("gelu_new")(x)), tanh, atol=1e-6)
    assert np.abs(exact - tanh).max() > 1e-4  # the two references really differ
    with pytest.raises(ValueError, match="Unknown activation 'swishy'"):
        activations.get_activation("swishy")


def test_embedding_is_sum_then_layer_norm():
    layer = layers.TokenAndPositionEmbedding(vocabulary_size=20, embedding_dim=6, max_sequence_length=8)
    ids, seg = np.array([[3, 4, 5]]), np.array([[0, 1, 1]])
    out = ops.convert_to_numpy(layer(ids, seg))
    word = ops.convert_to_numpy(layer.token_embedding.embeddings)
    pos = ops.convert_to_numpy(layer.position_embedding.embeddings)
    segment = ops.convert_to_numpy(layer.segment_embedding.embeddings)
    total = word[ids[0]] + pos[:3] + segment[seg[0]]
    normed = (total - total.mean(-1, keepdims=True)) / np.sqrt(total.var(-1, keepdims=True) + 1e-12)
    np.testing.assert_allclose(out[0], normed, atol=1e-5)


def test_factorized_embedding_projects_e_to_h():
    layer = layers.FactorizedEmbedding(vocabulary_size=20, embedding_dim=4, hidden_dim=12)
    out = layer(np.array([[3, 4]]), np.array([[0, 0]]))
    assert tuple(out.shape) == (1, 2, 12)
    assert tuple(layer.token_embedding.embeddings.shape) == (20, 4)
    assert tuple(layer.projection.kernel.shape) == (4, 12)


def test_block_is_post_layer_norm():
    block = layers.TransformerBlock(num_heads=2, hidden_dim=8, intermediate_dim=16, activation="gelu")
    x = np.random.default_rng(2).normal(size=(1, 3, 8)).astype("float32") * 5
    out = ops.convert_to_numpy(block(x))
    # Post-LN: the output itself is layer-normalised (gamma=1, beta=0 at init).
    np.testing.assert_allclose(out.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(-1), 1, atol=1e-3)


def test_mlm_head_gathers_masked_positions_and_ties_decoder():
    embedding = keras.layers.Embedding(30, 8)
    embedding.build((None,))
    head = layers.MaskedLMHead(30, 8, token_embedding=embedding)
    seq = np.random.default_rng(3).normal(size=(2, 6, 8)).astype("float32")
    positions = np.array([[1, 4], [0, 5]])
    at_positions = ops.convert_to_numpy(head(seq, positions))
    everywhere = ops.convert_to_numpy(head(seq))
    np.testing.assert_allclose(at_positions[0], everywhere[0, [1, 4]], atol=1e-5)
    np.testing.assert_allclose(at_positions[1], everywhere[1, [0, 5]], atol=1e-5)
    # Tied: the decoder is the embedding variable itself, and the head owns no (V, E) kernel of its own.
    assert not hasattr(head, "decoder_kernel")
    assert sum(w is embedding.embeddings for w in head.trainable_weights) == 1
    assert sum(int(np.prod(w.shape)) for w in head.trainable_weights) == 30 * 8 + (8 * 8 + 8) + 2 * 8 + 30
    with pytest.raises(ValueError, match="mask_positions has value 6"):
        head(seq, np.array([[1, 6], [0, 1]]))


LAYER_CASES = [
    (layers.TokenAndPositionEmbedding, dict(vocabulary_size=20, embedding_dim=6, num_segments=0)),
    (layers.FactorizedEmbedding, dict(vocabulary_size=20, embedding_dim=4, hidden_dim=8)),
    (layers.MultiHeadSelfAttention, dict(num_heads=2, hidden_dim=8, dropout=0.1)),
    (layers.TransformerBlock, dict(num_heads=2, hidden_dim=8, intermediate_dim=16, activation="gelu_new")),
    (layers.TransformerStack, dict(num_layers=3, num_heads=2, hidden_dim=8, intermediate_dim=16)),
    (layers.SharedTransformerStack, dict(num_layers=4, num_heads=2, hidden_dim=8, intermediate_dim=16,
                                         num_groups=2, num_inner_repetitions=3)),
    (layers.Pooler, dict(hidden_dim=8)),
    (layers.MaskedLMHead, dict(vocabulary_size=20, embedding_dim=8, activation="gelu_new")),
    (layers.NextSentenceHead, dict()),
    (layers.SentenceOrderHead, dict(num_classes=2)),
]


@pytest.mark.parametrize("cls,kwargs", LAYER_CASES, ids=[c.__name__ for c, _ in LAYER_CASES])
def test_layer_config_round_trip(cls, kwargs):
    layer = cls(**kwargs)
    clone = cls.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is cls and restored.get_config() == layer.get_config()
