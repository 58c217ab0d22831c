"""Raw strings → the id inputs of an exported file (ONNX, TFLite), on the host, fast.

kzoo's tokenizers are keras-hub's, TensorFlow ops: for one tweet they cost about 0.65 ms traced (1.1 ms op by op),
more than an int8 3-layer model takes to answer (about 1.2 ms in ONNX Runtime). Hugging Face's Rust `tokenizers`
does the same WordPiece in about 0.04 ms. `HostTokenizer` builds one from the keras-hub tokenizer's vocabulary and
settings (lower-casing, accent stripping, Chinese characters and punctuation split apart; no "clean text" step,
which keras-hub does not have: with it, U+FFFD would be dropped where keras-hub gives [UNK]); tests/test_host_text.py
checks it against the preprocessor on 4,000 tweets, hard cases and random Unicode. Texts with characters outside
the ranges where they were seen to agree, SentencePiece tokenizers and sentence pairs go through the
preprocessor.
"""

import re

import numpy as np

from kzoo.data.task_inputs import as_text_list

# The characters the Rust path takes: ASCII, Latin (U+00A1-U+024F but the soft hyphen; keras-hub does not split
# on a no-break space), punctuation, currency, letterlike symbols and arrows, dingbats, emoji, CJK ideographs. On
# random text from every Unicode plane the two tokenizers differ in places (Arabic and Hebrew marks, control and
# format characters, capital sigma's lower case); a batch with any other character goes through the preprocessor.
_RUST_SAFE = re.compile("[\t\n\r\x20-\x7e\u00a1-\u00ac\u00ae-\u024f\u2010-\u2027\u2030-\u205e\u20a0-\u20bf"
                        "\u2100-\u214f\u2190-\u21ff\u2600-\u27bf\u4e00-\u9fff\U0001f000-\U0001faff]*")


# keras-hub sends a word of more than 100 UTF-8 bytes to [UNK], Hugging Face one of more than 100 characters.
MAX_WORD_BYTES = 100


def _rust_gives_the_same(text):
    """True when `text` holds only characters where the two tokenizers were seen to agree, and no word whose
    length in bytes and in characters fall on either side of the limit."""
    if not _RUST_SAFE.fullmatch(text):
        return False
    return text.isascii() or all(len(word.encode()) <= MAX_WORD_BYTES for word in text.split())


class HostTokenizer:
    """Strings → `{"token_ids", "segment_ids", "padding_mask"}` (int32, padded to the longest), exactly as
    `preprocessor(texts)` gives them, with Hugging Face's Rust `tokenizers` where it can (a WordPiece vocabulary,
    single texts) and the preprocessor elsewhere.

    Args:
        preprocessor: the model's `TextPreprocessor`.

    Example:
    >>> from kzoo.data import BertWordPieceTokenizer
    >>> from kzoo.data.task_inputs import TextPreprocessor
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "i", "love", "it"])
    >>> host = HostTokenizer(TextPreprocessor(tokenizer, sequence_length=64))
    >>> host.fast     # False where `tokenizers` is not installed
    True
    >>> host(["I love it", "meh"])["token_ids"].tolist()
    [[2, 4, 5, 6, 3], [2, 1, 3, 0, 0]]
    """

    def __init__(self, preprocessor):
        self.preprocessor = preprocessor
        self._rust = _rust_wordpiece(preprocessor)
        self.fast = self._rust is not None

    def __call__(self, texts, pairs=None):
        if self._rust is None or pairs is not None:
            return self.preprocessor(texts, pairs)
        texts = as_text_list(texts)
        if not all(_rust_gives_the_same(text) for text in texts):
            return self.preprocessor(texts)
        encodings = self._rust.encode_batch(texts)
        token_ids = np.array([encoding.ids for encoding in encodings], "int32")
        padding_mask = np.array([encoding.attention_mask for encoding in encodings], "int32")
        return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": padding_mask}


def _rust_wordpiece(preprocessor):
    """A `tokenizers.Tokenizer` giving the preprocessor's ids, or None: no `tokenizers`, or a tokenizer whose
    settings it does not mirror (only kzoo's `BertWordPieceTokenizer` with "##" pieces, splitting on whitespace,
    punctuation and CJK characters, and special-token strings in the text split like any other text).

    Built by hand rather than with `tokenizers.BertWordPieceTokenizer`, which registers [CLS], [SEP], [MASK], ...
    as special tokens matched in the raw text: "[MASK]" typed by a user would become one id, where keras-hub
    splits it into "[", "mask", "]"."""
    import importlib.util

    from kzoo.data.tokenizers import BertWordPieceTokenizer

    tokenizer = preprocessor.tokenizer
    mirrored = (isinstance(tokenizer, BertWordPieceTokenizer) and tokenizer.suffix_indicator == "##"
                and tokenizer.split and tokenizer.split_on_cjk and not tokenizer.special_tokens_in_strings
                and not tokenizer.lowercase)  # kzoo lower-cases as Hugging Face does (hf_lowercase), not keras-hub
    if importlib.util.find_spec("tokenizers") is None or not mirrored:
        return None
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocabulary = tokenizer.get_vocabulary()
    special = preprocessor.special
    rust = Tokenizer(models.WordPiece({token: index for index, token in enumerate(vocabulary)},
                                      unk_token=tokenizer.oov_token, max_input_chars_per_word=MAX_WORD_BYTES))
    rust.normalizer = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True,
                                                 strip_accents=bool(tokenizer.strip_accents),
                                                 lowercase=tokenizer.hf_lowercase)
    rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    rust.post_processor = processors.BertProcessing((vocabulary[special.sep], special.sep),
                                                    (vocabulary[special.cls], special.cls))
    rust.enable_truncation(preprocessor.sequence_length)
    rust.enable_padding(pad_id=special.pad, pad_token=vocabulary[special.pad])
    return rust
