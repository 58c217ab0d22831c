"""The bricks every kzoo model is built from."""

from kzoo.layers.activations import gelu_approximate, gelu_exact, get_activation
from kzoo.layers.attention import MultiHeadSelfAttention
from kzoo.layers.embeddings import FactorizedEmbedding, TokenAndPositionEmbedding
from kzoo.layers.heads import MaskedLMHead, NextSentenceHead, Pooler, SentenceOrderHead, SentencePairHead
from kzoo.layers.transformer import SharedTransformerStack, TransformerBlock, TransformerStack

__all__ = [
    "FactorizedEmbedding", "MaskedLMHead", "MultiHeadSelfAttention", "NextSentenceHead", "Pooler",
    "SentenceOrderHead", "SentencePairHead", "SharedTransformerStack", "TokenAndPositionEmbedding",
    "TransformerBlock", "TransformerStack", "gelu_approximate", "gelu_exact", "get_activation",
]
