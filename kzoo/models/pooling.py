"""Sentence embeddings from token states: the pooling modes of sentence-transformers' `Pooling` module."""

from keras import ops

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")


def l2_normalize(embeddings):
    """Each row divided by its L2 norm (at least 1e-12, as torch's `F.normalize`)."""
    norm = ops.sqrt(ops.sum(ops.square(embeddings), axis=-1, keepdims=True))  # ops.norm fails in a JAX graph
    return embeddings / ops.maximum(norm, 1e-12)


def pool(sequence_output, padding_mask, mode="mean"):
    """One vector per sequence from its token states, padding left out, as sentence-transformers' `Pooling`:

    - "mean": the mean of the real tokens' states (the sum over max(count, 1e-9));
    - "cls": the first token's state;
    - "max": the largest value of each feature over the real tokens;
    - "mean_sqrt_len": the sum over the square root of the count.

    Args:
        sequence_output: (batch, sequence, hidden) token states.
        padding_mask: (batch, sequence), 1 for real tokens, 0 for padding.
        mode: one of `POOLING_MODES`.

    Returns:
        (batch, hidden) vectors.

    Example:
    >>> import numpy as np
    >>> x = np.array([[[1.0, 4.0], [3.0, 2.0], [100.0, 100.0]]]); m = np.array([[1, 1, 0]])
    >>> [np.asarray(pool(x, m, mode)).tolist() for mode in ("mean", "cls", "max")]
    [[[2.0, 3.0]], [[1.0, 4.0]], [[3.0, 4.0]]]
    """
    if mode == "cls":
        return sequence_output[:, 0, :]
    if mode == "max":
        real = ops.cast(padding_mask, "bool")[..., None]
        return ops.max(ops.where(real, sequence_output, ops.cast(-1e9, sequence_output.dtype)), axis=1)
    mask = ops.cast(padding_mask, sequence_output.dtype)[..., None]
    total, count = ops.sum(sequence_output * mask, axis=1), ops.maximum(ops.sum(mask, axis=1), 1e-9)
    if mode == "mean":
        return total / count
    if mode == "mean_sqrt_len":
        return total / ops.sqrt(count)
    raise ValueError(f"pooling mode {mode!r} is not one of {', '.join(POOLING_MODES)}.")


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
    pooled = pool(sequence_output, padding_mask, "mean")
    return l2_normalize(pooled) if normalize else pooled
