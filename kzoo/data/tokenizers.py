"""Loading tokenizers with keras-hub (no hand-written tokenizer)."""

import json
import os

import keras
import keras_hub


@keras.saving.register_keras_serializable(package="kzoo")
class BertWordPieceTokenizer(keras_hub.tokenizers.WordPieceTokenizer):
    """keras-hub's WordPiece tokenizer with Hugging Face's lower-casing.

    keras-hub lower-cases with Unicode case folding (NFKC casefold: "ß" → "ss", "ﬁ" → "fi"); HF's BertTokenizer
    uses `str.lower()`, which keeps them. `hf_lowercase=True` lower-cases with `tf.strings.lower` (ICU
    lower-casing, as `str.lower`) before keras-hub's own accent stripping and splitting, so ids match HF's.
    """

    def __init__(self, hf_lowercase=True, **kwargs):
        kwargs["lowercase"] = False
        super().__init__(**kwargs)
        self.hf_lowercase = hf_lowercase

    def tokenize(self, inputs):
        if self.hf_lowercase:
            import tensorflow as tf

            inputs = tf.strings.lower(tf.convert_to_tensor(inputs), encoding="utf-8")
        return super().tokenize(inputs)

    def get_config(self):
        config = super().get_config()
        config["hf_lowercase"] = self.hf_lowercase
        return config


def load_wordpiece(vocabulary, lowercase=True, strip_accents=None, sequence_length=None):
    """A `BertWordPieceTokenizer` (keras-hub WordPiece) on a `vocab.txt`, configured like HF's `BertTokenizer`.

    `strip_accents=None` follows `lowercase`, as in bert-base-uncased (HF's rule).

    Example:
        tokenizer = load_wordpiece("vocab.txt"); tokenizer(["Café au lait!"])
    """
    if not os.path.isfile(vocabulary):
        raise FileNotFoundError(f"WordPiece vocabulary {vocabulary} does not exist.")
    return BertWordPieceTokenizer(
        hf_lowercase=lowercase, vocabulary=vocabulary,
        strip_accents=lowercase if strip_accents is None else strip_accents,
        sequence_length=sequence_length, oov_token="[UNK]",
    )


def load_hf_tokenizer(directory, sequence_length=None):
    """The tokenizer of a Hugging Face directory (`vocab.txt` + `tokenizer_config.json`), or None if absent."""
    vocabulary = os.path.join(directory, "vocab.txt")
    if not os.path.isfile(vocabulary):
        return None
    settings = {}
    config_path = os.path.join(directory, "tokenizer_config.json")
    if os.path.isfile(config_path):
        with open(config_path) as f:
            settings = json.load(f)
    return load_wordpiece(vocabulary, lowercase=settings.get("do_lower_case", True),
                          strip_accents=settings.get("strip_accents"), sequence_length=sequence_length)
