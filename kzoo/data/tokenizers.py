"""Loading and saving tokenizers with keras-hub (no hand-written tokenizer)."""

import dataclasses
import io
import json
import os

import keras
import keras_hub

from kzoo.file_checks import describe, present, read_bytes, read_json, read_text


@keras.saving.register_keras_serializable(package="kzoo")
class BertWordPieceTokenizer(keras_hub.tokenizers.WordPieceTokenizer):
    """keras-hub's WordPiece tokenizer with Hugging Face's lower-casing.

    keras-hub lower-cases with Unicode case folding (NFKC casefold: "ß" → "ss", "ﬁ" → "fi"); HF's BertTokenizer
    uses `str.lower()`, which keeps them. `hf_lowercase=True` lower-cases with `tf.strings.lower` (ICU
    lower-casing, as `str.lower`) before keras-hub's own accent stripping and splitting, so ids match HF's.
    `load_wordpiece` builds one from a `vocab.txt`.

    Args:
        hf_lowercase: lower-case as Hugging Face's `BertTokenizer` does (keras-hub's `lowercase` is turned off).
        **kwargs: `keras_hub.tokenizers.WordPieceTokenizer` arguments: `vocabulary` (a list of tokens or a
            file), `sequence_length`, `strip_accents`, `oov_token`, ...

    Example:
    >>> import numpy as np
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[UNK]", "the", "play", "##ing", "straße"])
    >>> np.asarray(tokenizer("The PLAYING straße")).tolist()   # keras-hub's casefold would give "strasse"
    [1, 2, 3, 4]
    """

    def __init__(self, hf_lowercase=True, **kwargs):
        kwargs["lowercase"] = False
        super().__init__(**kwargs)
        self.hf_lowercase = hf_lowercase

    def tokenize(self, inputs):
        return super().tokenize(_lowercase(inputs) if self.hf_lowercase else inputs)

    def get_config(self):
        config = super().get_config()
        config["hf_lowercase"] = self.hf_lowercase
        return config


def _lowercase(inputs):
    import tensorflow as tf

    return tf.strings.lower(tf.convert_to_tensor(inputs), encoding="utf-8")


@keras.saving.register_keras_serializable(package="kzoo")
class LowercaseSentencePieceTokenizer(keras_hub.tokenizers.SentencePieceTokenizer):
    """keras-hub's SentencePiece tokenizer, lower-casing first when `lowercase` (ALBERT's `do_lower_case`).

    Hugging Face's `AlbertTokenizer` also strips accents and rewrites quotes before SentencePiece; that
    preprocessing is not reproduced here yet, so ids can differ from HF's on accented or quoted text.
    `train_sentencepiece` and `load_hf_tokenizer` return one.

    Args:
        lowercase: lower-case the text first.
        proto: a `spiece.model` path (checked, so an error names it) or its bytes.
        **kwargs: `keras_hub.tokenizers.SentencePieceTokenizer` arguments (`sequence_length`, ...).
    """

    def __init__(self, lowercase=True, proto=None, **kwargs):
        if isinstance(proto, str):  # a file: check it here, so the error names it
            check_sentencepiece(proto)
        super().__init__(proto=proto, **kwargs)
        self.lowercase = lowercase
        self.source_file = proto if isinstance(proto, str) else None

    def tokenize(self, inputs):
        return super().tokenize(_lowercase(inputs) if self.lowercase else inputs)

    def get_config(self):
        config = super().get_config()
        config["lowercase"] = self.lowercase
        return config


def load_wordpiece(vocabulary, lowercase=True, strip_accents=None, sequence_length=None):
    """A `BertWordPieceTokenizer` (keras-hub WordPiece) on a `vocab.txt`, configured like HF's `BertTokenizer`.

    Args:
        vocabulary: path of a `vocab.txt`: UTF-8, one token a line, with an `[UNK]` token.
        lowercase: lower-case the text first (uncased models).
        strip_accents: strip accents; None follows `lowercase`, as in bert-base-uncased (HF's rule).
        sequence_length: pad or cut the tokenizer's output to this length; None: ragged output.

    Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> with open(vocab, "w") as f:
    ...     _ = f.write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe", "au", "lait", "!"]))
    >>> tokenizer = load_wordpiece(vocab)
    >>> np.asarray(tokenizer("Café au lait!")).tolist()
    [5, 6, 7, 8]
    """
    if not present(vocabulary):
        raise FileNotFoundError(f"WordPiece vocabulary {vocabulary} does not exist.")
    tokenizer = BertWordPieceTokenizer(
        hf_lowercase=lowercase, vocabulary=check_wordpiece(vocabulary),
        strip_accents=lowercase if strip_accents is None else strip_accents,
        sequence_length=sequence_length, oov_token="[UNK]",
    )
    tokenizer.source_file = vocabulary
    return tokenizer


def check_wordpiece(path, oov_token="[UNK]"):
    """The tokens of the WordPiece vocabulary `path` (UTF-8, one token a line, a byte-order mark dropped), or a
    ValueError naming it when it is no such file or lacks `oov_token`."""
    what = "WordPiece vocabulary (vocab.txt: UTF-8 text, one token a line)"
    text = read_text(path, what)
    tokens = [line.rstrip() for line in io.StringIO(text, newline=None)]  # the lines keras-hub's open() gives
    if not any(tokens):
        raise ValueError(f"{path} is empty; a {what} holds at least the special tokens.")
    if oov_token not in tokens:
        raise ValueError(f"{path} has no {oov_token} token, which a WordPiece tokenizer needs for unknown words; "
                         f"is it a {what}?")
    return tokens


def check_sentencepiece(path):
    """Raise naming `path` unless it is a SentencePiece model (e.g. ALBERT's spiece.model)."""
    import sentencepiece

    data = read_bytes(path, "SentencePiece model")
    if not data:
        raise ValueError(f"{path} is empty, not a SentencePiece model.")
    try:
        sentencepiece.SentencePieceProcessor(model_proto=data)
    except RuntimeError as error:  # sentencepiece: "INTERNAL: ... ParseFromArray ..."
        raise ValueError(f"{path} is not a SentencePiece model (spiece.model), or it is corrupt: its protobuf "
                         "does not parse.") from error


def _tokenizer_json_wordpiece(path, do_lower_case=True):
    """(vocabulary list, lowercase, strip_accents, unk token) of a `tokenizers` WordPiece `tokenizer.json`, or
    None. Case and accents come from its `BertNormalizer`, else from `do_lower_case`."""
    spec = read_json(path, "tokenizer.json")
    model = spec.get("model") or {}
    if not isinstance(model, dict) or model.get("type") != "WordPiece" or \
            model.get("continuing_subword_prefix", "##") != "##":
        return None
    vocab = model.get("vocab")
    if not (isinstance(vocab, dict) and vocab and all(isinstance(i, int) for i in vocab.values())):
        got = describe(vocab, as_json=True) if "vocab" in model else "none"
        raise ValueError(f"{path}: model.vocab must be a non-empty object of token: id; got {got}.")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ValueError(f"{path}: model.vocab's ids are not 0 to {len(vocab) - 1}, each once.")
    vocabulary = sorted(vocab, key=vocab.get)
    normalizer = spec.get("normalizer") or {}
    if normalizer.get("type") == "BertNormalizer":
        return vocabulary, normalizer.get("lowercase", True), normalizer.get("strip_accents"), model.get("unk_token")
    return vocabulary, do_lower_case, None, model.get("unk_token", "[UNK]")


def load_hf_tokenizer(directory, sequence_length=None):
    """The tokenizer of a Hugging Face directory, or None if it has none kzoo reads.

    `vocab.txt` (WordPiece, settings from `tokenizer_config.json`), else a WordPiece `tokenizer.json`, else
    `spiece.model` (SentencePiece, lower-cased first when `do_lower_case`, ALBERT's default).

    Args:
        directory: a Hugging Face model folder, or a kzoo preset folder holding a tokenizer.
        sequence_length: pad or cut the tokenizer's output to this length; None: ragged output.

    Returns:
        A `BertWordPieceTokenizer` or `LowercaseSentencePieceTokenizer`, or None.

    Example:
    >>> import os, tempfile
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"],
    ...                                    strip_accents=True)
    >>> folder = tempfile.mkdtemp()
    >>> [os.path.basename(path) for path in save_tokenizer(tokenizer, folder)]
    ['vocab.txt', 'tokenizer_config.json']
    >>> load_hf_tokenizer(folder).get_vocabulary() == tokenizer.get_vocabulary()
    True
    """
    settings = {}
    config_path = os.path.join(directory, "tokenizer_config.json")
    if present(config_path):
        settings = read_json(config_path, "tokenizer config")
        for key, allowed in (("do_lower_case", (True, False)), ("strip_accents", (True, False, None))):
            if key in settings and not any(settings[key] is value for value in allowed):
                raise ValueError(f"{config_path}: {key} is {settings[key]!r}; it must be one of "
                                 f"{', '.join(json.dumps(value) for value in allowed)}.")
    vocabulary = os.path.join(directory, "vocab.txt")
    if present(vocabulary):
        return load_wordpiece(vocabulary, lowercase=settings.get("do_lower_case", True),
                              strip_accents=settings.get("strip_accents"), sequence_length=sequence_length)
    tokenizer_json = os.path.join(directory, "tokenizer.json")
    if present(tokenizer_json):
        found = _tokenizer_json_wordpiece(tokenizer_json, settings.get("do_lower_case", True))
        if found is not None:
            words, lowercase, strip_accents, unk = found
            if (unk or "[UNK]") not in words:
                raise ValueError(f"{tokenizer_json}: its vocabulary has no {unk or '[UNK]'} (the unknown-word token).")
            tokenizer = BertWordPieceTokenizer(
                hf_lowercase=lowercase, vocabulary=words, sequence_length=sequence_length, oov_token=unk or "[UNK]",
                strip_accents=lowercase if strip_accents is None else strip_accents)
            tokenizer.source_file = tokenizer_json
            return tokenizer
    spiece = os.path.join(directory, "spiece.model")
    if present(spiece):
        return LowercaseSentencePieceTokenizer(lowercase=settings.get("do_lower_case", True), proto=spiece,
                                               sequence_length=sequence_length)
    return None


def ragged_to_lists(ids):
    """A keras-hub tokenizer's ragged output (tf.RaggedTensor, or nested lists off TF) as int32 arrays."""
    import numpy as np

    if hasattr(ids, "row_splits"):
        values, splits = ids.flat_values.numpy(), ids.row_splits.numpy()
        return np.split(values.astype("int32"), splits[1:-1])
    return [np.asarray(row, "int32") for row in ids]


@dataclasses.dataclass(frozen=True)
class SpecialIds:
    cls: int
    sep: int
    pad: int
    mask: int | None
    unk: int | None = None


def special_ids(tokenizer, require_mask=True):
    """[CLS], [SEP], padding ([PAD] or SentencePiece's <pad>) and [MASK] ids, or a ValueError naming the
    missing token. The unknown token ([UNK] / <unk>) is None when the vocabulary has none. A tokenizer loaded
    from a file names it.

    Args:
        tokenizer: a keras-hub tokenizer.
        require_mask: raise when there is no [MASK]; False (fine-tuning needs none) gives None instead.

    Returns:
        A `SpecialIds` with fields `cls`, `sep`, `pad`, `mask`, `unk`.

    Example:
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hi"])
    >>> special_ids(tokenizer)
    SpecialIds(cls=2, sep=3, pad=0, mask=4, unk=1)
    """
    vocabulary = set(tokenizer.get_vocabulary())
    owner = getattr(tokenizer, "source_file", None) or "The tokenizer's vocabulary"
    found = {}
    for field, names in (("cls", ["[CLS]"]), ("sep", ["[SEP]"]), ("pad", ["[PAD]", "<pad>"]), ("mask", ["[MASK]"]),
                         ("unk", ["[UNK]", "<unk>"])):
        name = next((n for n in names if n in vocabulary), None)
        if name is None and (field == "unk" or (field == "mask" and not require_mask)):
            found[field] = None
            continue
        if name is None:
            raise ValueError(f"{owner} has no {' or '.join(names)} token; kzoo's sequences need it.")
        found[field] = int(tokenizer.token_to_id(name))
    return SpecialIds(**found)


def save_tokenizer(tokenizer, directory):
    """Write `tokenizer` as Hugging Face-style files that `load_hf_tokenizer` reads back: `vocab.txt` (WordPiece)
    or `spiece.model` (SentencePiece), plus `tokenizer_config.json` with its case setting (example in
    `load_hf_tokenizer`).

    Args:
        tokenizer: a keras-hub WordPiece or SentencePiece tokenizer.
        directory: an existing folder; files of the same names are overwritten.

    Returns:
        The paths written.
    """
    if isinstance(tokenizer, keras_hub.tokenizers.SentencePieceTokenizer):
        path = os.path.join(directory, "spiece.model")
        with open(path, "wb") as f:
            f.write(tokenizer.proto)
        settings = {"do_lower_case": bool(getattr(tokenizer, "lowercase", False))}
    elif isinstance(tokenizer, keras_hub.tokenizers.WordPieceTokenizer):
        path = os.path.join(directory, "vocab.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(tokenizer.get_vocabulary()) + "\n")
        settings = {"do_lower_case": bool(getattr(tokenizer, "hf_lowercase", tokenizer.lowercase)),
                    "strip_accents": bool(tokenizer.strip_accents)}
    else:
        raise TypeError(f"Cannot save a {type(tokenizer).__name__}; kzoo saves WordPiece and SentencePiece "
                        "tokenizers.")
    config_path = os.path.join(directory, "tokenizer_config.json")
    with open(config_path, "w") as f:
        json.dump(settings, f, indent=2)
    return [path, config_path]
