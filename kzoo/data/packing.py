"""Strings → backbone inputs with keras-hub's packer ([CLS] text [SEP], truncated and padded)."""

from kzoo.data.task_inputs import TextPreprocessor


def encode_texts(tokenizer, texts, sequence_length=128):
    """`{"token_ids", "segment_ids", "padding_mask"}` numpy arrays for single-segment `texts`: `[CLS] text [SEP]`.

    The batch is padded to its longest member (capped at `sequence_length`), not to `sequence_length`.

    Args:
        tokenizer: a keras-hub tokenizer with [CLS], [SEP] and padding tokens (e.g. `conversion.tokenizer`).
        texts: a list of strings.
        sequence_length: the most tokens per text, specials included; longer texts are cut.

    Example:
    >>> from kzoo.data import BertWordPieceTokenizer
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "sentence", "."])
    >>> inputs = encode_texts(tokenizer, ["A sentence.", "A"])
    >>> inputs["token_ids"].tolist(), inputs["padding_mask"].tolist()
    ([[2, 4, 5, 6, 3], [2, 4, 3, 0, 0]], [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    """
    # One packer for every string input: a single-segment `TextPreprocessor` batch is exactly this.
    return TextPreprocessor(tokenizer, sequence_length)(texts)
