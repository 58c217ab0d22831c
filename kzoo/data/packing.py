"""Strings → backbone inputs with keras-hub's packer ([CLS] text [SEP], truncated and padded)."""

import numpy as np
from keras import ops

from kzoo.data.task_inputs import as_text_list


def encode_texts(tokenizer, texts, sequence_length=128):
    """`{"token_ids", "segment_ids", "padding_mask"}` numpy arrays for single-segment `texts`.

    The batch is padded to its longest member (capped at `sequence_length`), not to `sequence_length`.

    Example:
        inputs = encode_texts(conversion.tokenizer, ["A sentence.", "Another one."])
    """
    import keras_hub

    tokens = tokenizer(as_text_list(texts))  # a ValueError names an entry that is no text
    lengths = [len(p) for p in (tokens.to_list() if hasattr(tokens, "to_list") else tokens)]
    longest = min(max(lengths) + 2, sequence_length)
    packer = keras_hub.layers.StartEndPacker(
        sequence_length=longest, start_value=tokenizer.token_to_id("[CLS]"),
        end_value=tokenizer.token_to_id("[SEP]"), pad_value=tokenizer.token_to_id("[PAD]"),
        return_padding_mask=True)
    token_ids, padding_mask = packer(tokens)
    token_ids = np.asarray(ops.convert_to_numpy(token_ids), dtype="int32")
    padding_mask = np.asarray(ops.convert_to_numpy(padding_mask), dtype="int32")
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": padding_mask}
