"""Sentence embeddings from token states."""

from keras import ops


def mean_pool(sequence_output, padding_mask, normalize=True):
    """Mask-weighted mean of the token states, L2-normalised: the sentence-transformers embedding.

    Args:
        sequence_output: (batch, sequence, hidden) token states.
        padding_mask: (batch, sequence), 1 for real tokens, 0 for padding (left out of the mean).
        normalize: divide each embedding by its L2 norm.

    Returns:
        (batch, hidden) embeddings.

    Example:
    >>> import numpy as np
    >>> x = np.array([[[3.0, 4.0], [100.0, 100.0]]]); m = np.array([[1, 0]])
    >>> bool(np.allclose(np.asarray(mean_pool(x, m)), [[0.6, 0.8]]))
    True
    """
    mask = ops.cast(padding_mask, sequence_output.dtype)[..., None]
    pooled = ops.sum(sequence_output * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1e-9)
    if normalize:
        pooled = pooled / ops.maximum(ops.norm(pooled, axis=-1, keepdims=True), 1e-12)
    return pooled
