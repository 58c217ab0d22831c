"""Loading and saving tokenizers with keras-hub (no hand-written tokenizer)."""

import dataclasses
import io
import json
import os

import keras
import keras_hub

from kzoo.architectures import is_keras_hub_record
from kzoo.file_checks import describe, present, read_bytes, read_json, read_text


@keras.saving.register_keras_serializable(package="kzoo")
class BertWordPieceTokenizer(keras_hub.tokenizers.WordPieceTokenizer):
    """keras-hub's WordPiece tokenizer with Hugging Face's lower-casing.

    keras-hub lower-cases with Unicode case folding (NFKC casefold: "ß" → "ss", "ﬁ" → "fi"); HF's BertTokenizer
    uses `str.lower()`, which keeps them. `hf_lowercase=True` lower-cases with `tf.strings.lower` (ICU
    lower-casing, as `str.lower`) before keras-hub's own accent stripping and splitting, so ids match HF's.
    `load_wordpiece` builds one from a `vocab.txt`.

    Args:
        hf_lowercase: lower-case as Hugging Face's `BertTokenizer` does (keras-hub's `lowercase` is turned off);
            False leaves keras-hub's `lowercase` as given (a keras-hub preset's tokenizer).
        **kwargs: `keras_hub.tokenizers.WordPieceTokenizer` arguments: `vocabulary` (a list of tokens or a
            file), `sequence_length`, `strip_accents`, `oov_token`, ...

    Example:
    >>> import numpy as np
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[UNK]", "the", "play", "##ing", "straße"])
    >>> np.asarray(tokenizer("The PLAYING straße")).tolist()   # keras-hub's casefold would give "strasse"
    [1, 2, 3, 4]
    """

    def __init__(self, hf_lowercase=True, **kwargs):
        if hf_lowercase:
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

    `normalizers` are the steps of a Hugging Face `tokenizer.json`'s normalizer that SentencePiece does not do
    itself (ALBERT's: quotes rewritten, NFKD, accents stripped, lower-casing), applied first, in order; the
    tokenizer `load_hf_tokenizer` builds from such a file has them. Without them (a bare `spiece.model`), ids
    can differ from Hugging Face's `AlbertTokenizer` on accented or quoted text. `train_sentencepiece` and
    `load_hf_tokenizer` return one.

    Args:
        lowercase: lower-case the text first (after `normalizers`).
        proto: a `spiece.model` path (checked, so an error names it) or its bytes.
        normalizers: a list of steps, each a list: `["replace", old, new]`, `["unicode", "NFKD"]` (or NFD, NFC,
            NFKC), `["strip_accents"]` (drop combining marks), `["lowercase"]`, `["whitespace"]` (every Unicode
            white space becomes a space, as Hugging Face's WhitespaceSplit sees it).
        **kwargs: `keras_hub.tokenizers.SentencePieceTokenizer` arguments (`sequence_length`, ...).

    Example:
    >>> proto = sentencepiece_proto([("<unk>", 0.0), ("▁", -1.0), ("e", -2.0)], unk_id=0)
    >>> tokenizer = LowercaseSentencePieceTokenizer(lowercase=False, proto=proto,
    ...     normalizers=[["replace", "``", '"'], ["unicode", "NFKD"], ["strip_accents"], ["lowercase"]])
    >>> tokenizer.normalize("``Café`` ÉTÉ").numpy().decode()
    '"cafe" ete'
    """

    def __init__(self, lowercase=True, proto=None, normalizers=None, **kwargs):
        if isinstance(proto, str):  # a file: check it here, so the error names it
            check_sentencepiece(proto)
        super().__init__(proto=proto, **kwargs)
        self.lowercase = lowercase
        self.normalizers = [list(step) for step in normalizers or []]
        for step in self.normalizers:
            check_normalizer_step(step)
        self.source_file = proto if isinstance(proto, str) else None

    def normalize(self, inputs):
        """The text as SentencePiece receives it: `normalizers` applied, then lower-cased when `lowercase`."""
        for step in self.normalizers:
            inputs = _NORMALIZER_STEPS[step[0]](inputs, *step[1:])
        return _lowercase(inputs) if self.lowercase else inputs

    def tokenize(self, inputs):
        return super().tokenize(self.normalize(inputs) if self.lowercase or self.normalizers else inputs)

    def get_config(self):
        config = super().get_config()
        config["lowercase"] = self.lowercase
        config["normalizers"] = self.normalizers
        return config


def _replace(inputs, old, new):
    import tensorflow as tf

    # A literal string: each character as an RE2 \x{code}; in `new` (a rewrite string) backslashes escape.
    pattern = "".join(f"\\x{{{ord(char):x}}}" for char in old)
    return tf.strings.regex_replace(inputs, pattern, new.replace("\\", "\\\\"))


def _unicode_form(inputs, form):
    import tensorflow_text

    return tensorflow_text.normalize_utf8(inputs, form)


def _strip_accents(inputs):
    import tensorflow as tf

    # tokenizers' StripAccents drops every combining mark (General_Category M: Mn, Mc and Me), not Mn alone.
    return tf.strings.regex_replace(inputs, r"\p{M}", "")


def _whitespace(inputs):
    import tensorflow as tf

    # Unicode's White_Space (Rust's char::is_whitespace, what WhitespaceSplit splits on) as one space, the only
    # white space SentencePiece's remove_extra_whitespaces knows without a normalization charsmap.
    return tf.strings.regex_replace(inputs, r"[\t\n\v\f\r\x{85}\p{Z}]", " ")


_NORMALIZER_STEPS = {"replace": _replace, "unicode": _unicode_form, "strip_accents": _strip_accents,
                     "lowercase": _lowercase, "whitespace": _whitespace}
_STEP_ARGUMENTS = {"replace": 2, "unicode": 1, "strip_accents": 0, "lowercase": 0, "whitespace": 0}


def check_normalizer_step(step, where="normalizers"):
    """Raise a ValueError starting with `where` unless `step` is one of `LowercaseSentencePieceTokenizer`'s
    normalizer steps."""
    valid = (isinstance(step, list) and step and step[0] in _NORMALIZER_STEPS
             and len(step) == 1 + _STEP_ARGUMENTS[step[0]] and all(isinstance(part, str) for part in step)
             and (step[0] != "unicode" or step[1] in ("NFC", "NFD", "NFKC", "NFKD")))
    if not valid:
        raise ValueError(f"{where}: {json.dumps(step)[:80]} is not a normalizer step; steps are "
                         "[\"replace\", old, new], [\"unicode\", \"NFKD\"], [\"strip_accents\"], [\"lowercase\"], "
                         "[\"whitespace\"].")


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


def _tokenizer_json_wordpiece(path, spec, do_lower_case=True):
    """(vocabulary list, lowercase, strip_accents, unk token) of a `tokenizers` WordPiece `tokenizer.json` (its
    parsed `spec`), or None. Case and accents come from its `BertNormalizer`, else from `do_lower_case`."""
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


def sentencepiece_proto(pieces, unk_id, precompiled_charsmap=b"", add_dummy_prefix=True, control=(),
                        user_defined=()):
    """The bytes of a SentencePiece unigram model (a `ModelProto`, what a `spiece.model` holds) with these
    pieces: what `load_hf_tokenizer` makes of a Unigram `tokenizer.json` (ALBERT's), whose vocabulary and scores
    are the model's.

    Args:
        pieces: (piece, score) pairs, in id order.
        unk_id: the id of the unknown piece.
        precompiled_charsmap: SentencePiece's normalization table (a `Precompiled` normalizer's, decoded from
            base64); empty: no normalization besides white space.
        add_dummy_prefix: a "▁" before the text (Metaspace's prepend_scheme).
        control: pieces never produced from text (special tokens: [CLS], <pad>).
        user_defined: pieces matched in text as a whole (added, non-special tokens).

    Example:
    >>> import sentencepiece
    >>> proto = sentencepiece_proto([("<unk>", 0.0), ("[CLS]", 0.0), ("▁the", -1.0), ("▁", -2.0), ("t", -3.0)],
    ...                             unk_id=0, control=["[CLS]"])
    >>> sentencepiece.SentencePieceProcessor(model_proto=proto).encode("the tt", out_type=str)
    ['▁the', '▁', 't', 't']
    """
    from sentencepiece import sentencepiece_model_pb2

    model = sentencepiece_model_pb2.ModelProto()
    types = model.SentencePiece.Type
    control, user_defined = set(control), set(user_defined)
    for index, (piece, score) in enumerate(pieces):
        kind = types.UNKNOWN if index == unk_id else types.CONTROL if piece in control else \
            types.USER_DEFINED if piece in user_defined else types.NORMAL
        model.pieces.add(piece=piece, score=float(score), type=kind)
    spec = model.trainer_spec
    spec.model_type = spec.UNIGRAM
    spec.vocab_size = len(pieces)
    spec.unk_id, spec.unk_piece = unk_id, pieces[unk_id][0]
    spec.bos_id = spec.eos_id = spec.pad_id = -1  # not added by the tokenizer; kzoo packs [CLS]/[SEP] itself
    normalizer = model.normalizer_spec
    normalizer.name = "precompiled" if precompiled_charsmap else "identity"
    normalizer.precompiled_charsmap = precompiled_charsmap
    normalizer.add_dummy_prefix = add_dummy_prefix
    normalizer.remove_extra_whitespaces = True
    normalizer.escape_whitespaces = True
    return model.SerializeToString()


# A Unigram tokenizer.json's normalizers (tokenizers' names) -> LowercaseSentencePieceTokenizer's steps.
_SIMPLE_NORMALIZERS = {"NFKD": ["unicode", "NFKD"], "NFD": ["unicode", "NFD"], "NFKC": ["unicode", "NFKC"],
                       "NFC": ["unicode", "NFC"], "StripAccents": ["strip_accents"], "Lowercase": ["lowercase"]}


def _flatten(spec, key):
    """A `Sequence` of normalizers or pre-tokenizers as a flat list (a single one as a list of one)."""
    if not spec:
        return []
    if spec.get("type") == "Sequence":
        return [item for inner in spec.get(key) or [] for item in _flatten(inner, key)]
    return [spec]


def _unigram_normalizers(path, spec):
    """(normalizer steps, precompiled charsmap bytes) of a Unigram tokenizer.json; one SentencePiece cannot
    mirror raises naming `path`."""
    import base64

    steps, charsmap = [], b""
    for normalizer in _flatten(spec.get("normalizer"), "normalizers"):
        kind, pattern = normalizer.get("type"), normalizer.get("pattern") or {}
        if kind == "Replace" and pattern.get("Regex") == " {2,}" and normalizer.get("content") == " ":
            continue  # SentencePiece's remove_extra_whitespaces does this
        if charsmap:
            raise ValueError(f"{path}: normalizer {kind!r} comes after the Precompiled one, which kzoo applies last "
                             "(inside SentencePiece).")
        if kind == "Precompiled":
            charsmap = base64.b64decode(normalizer.get("precompiled_charsmap") or "")
        elif kind == "Replace" and isinstance(pattern.get("String"), str):
            steps.append(["replace", pattern["String"], str(normalizer.get("content", ""))])
        elif kind in _SIMPLE_NORMALIZERS:
            steps.append(list(_SIMPLE_NORMALIZERS[kind]))
        else:
            raise ValueError(f"{path}: normalizer {json.dumps(normalizer)[:80]} is not one kzoo reproduces (it "
                             f"reads Replace of a string, {', '.join(_SIMPLE_NORMALIZERS)}, Precompiled).")
    return steps, charsmap


def _metaspace(path, spec):
    """(add_dummy_prefix, split on Unicode white space) of a Unigram tokenizer.json's pre-tokenizer: a
    Metaspace, optionally after a WhitespaceSplit; another raises naming `path`."""
    pre_tokenizers = _flatten(spec.get("pre_tokenizer"), "pretokenizers")
    kinds = [item.get("type") for item in pre_tokenizers]
    if kinds not in (["Metaspace"], ["WhitespaceSplit", "Metaspace"]) or \
            pre_tokenizers[-1].get("replacement", "▁") != "▁":
        raise ValueError(f"{path}: pre_tokenizer {' + '.join(map(str, kinds)) or 'none'} is not SentencePiece's; "
                         "kzoo reads a Metaspace with replacement '▁' (after a WhitespaceSplit or alone).")
    metaspace = pre_tokenizers[-1]
    prefix = metaspace.get("prepend_scheme", "always" if metaspace.get("add_prefix_space", True) else "never")
    return prefix != "never", kinds[0] == "WhitespaceSplit"


def _tokenizer_json_unigram(path, spec, sequence_length=None):
    """A `LowercaseSentencePieceTokenizer` on the SentencePiece model rebuilt from a Unigram tokenizer.json
    (ALBERT's), its normalizers applied before SentencePiece; None for another model type."""
    model = spec.get("model") or {}
    if not isinstance(model, dict) or model.get("type") != "Unigram":
        return None
    vocab, unk_id = model.get("vocab"), model.get("unk_id")
    if not (isinstance(vocab, list) and vocab and all(
            isinstance(row, list) and len(row) == 2 and isinstance(row[0], str) and
            isinstance(row[1], (int, float)) for row in vocab)):
        raise ValueError(f"{path}: model.vocab must be a non-empty list of [piece, score]; got "
                         f"{json.dumps(vocab)[:80]}.")
    if not (isinstance(unk_id, int) and 0 <= unk_id < len(vocab)):
        raise ValueError(f"{path}: model.unk_id is {unk_id!r}; it must be the id of the unknown piece.")
    if model.get("byte_fallback"):
        raise ValueError(f"{path}: byte_fallback is true; kzoo reads Unigram models without it (ALBERT's).")
    steps, charsmap = _unigram_normalizers(path, spec)
    add_dummy_prefix, split_whitespace = _metaspace(path, spec)
    added = [token for token in spec.get("added_tokens") or [] if isinstance(token, dict)]
    proto = sentencepiece_proto(
        [tuple(row) for row in vocab], unk_id, charsmap, add_dummy_prefix,
        control=[token.get("content") for token in added if token.get("special")],
        user_defined=[token.get("content") for token in added if not token.get("special")])
    tokenizer = LowercaseSentencePieceTokenizer(
        lowercase=False, proto=proto, sequence_length=sequence_length,
        # With a charsmap, SentencePiece maps white space itself, after the charsmap has dropped control characters
        # (U+000B among them) as Hugging Face's Precompiled does before WhitespaceSplit: mapping it first differs.
        normalizers=steps + ([["whitespace"]] if split_whitespace and not charsmap else []))
    tokenizer.source_file = path
    return tokenizer


def _keras_hub_tokenizer(directory, record, sequence_length=None):
    """The tokenizer of a keras-hub preset folder (`tokenizer.json` in keras-hub's format, the vocabulary in
    `assets/tokenizer/`): kzoo's WordPiece with keras-hub's settings, or SentencePiece without lower-casing, as
    keras-hub's ALBERT."""
    path = os.path.join(directory, "tokenizer.json")
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    assets = os.path.join(directory, "assets", "tokenizer")
    wordpiece, sentencepiece = os.path.join(assets, "vocabulary.txt"), os.path.join(assets, "vocabulary.spm")
    if present(wordpiece):
        oov_token = config.get("oov_token", "[UNK]")
        settings = {key: config[key] for key in ("lowercase", "strip_accents", "split", "split_on_cjk",
                                                 "suffix_indicator") if key in config}
        tokenizer = BertWordPieceTokenizer(hf_lowercase=False, vocabulary=check_wordpiece(wordpiece, oov_token),
                                           oov_token=oov_token, sequence_length=sequence_length, **settings)
        tokenizer.source_file = wordpiece
        return tokenizer
    if present(sentencepiece):
        return LowercaseSentencePieceTokenizer(lowercase=False, proto=sentencepiece, sequence_length=sequence_length)
    raise FileNotFoundError(f"{wordpiece} (or vocabulary.spm) is missing: {path} is a keras-hub tokenizer "
                            f"({record['registered_name']}) whose vocabulary is kept there.")


def _check_settings(config_path, settings):
    for key, allowed in (("do_lower_case", (True, False)), ("strip_accents", (True, False, None))):
        if key in settings and not any(settings[key] is value for value in allowed):
            raise ValueError(f"{config_path}: {key} is {settings[key]!r}; it must be one of "
                             f"{', '.join(json.dumps(value) for value in allowed)}.")
    steps = settings.get(_NORMALIZERS_KEY, [])
    if not isinstance(steps, list):
        raise ValueError(f"{config_path}: {_NORMALIZERS_KEY} must be a list of normalizer steps.")
    for step in steps:
        check_normalizer_step(step, f"{config_path}: {_NORMALIZERS_KEY}")


_NORMALIZERS_KEY = "kzoo_normalizers"  # tokenizer_config.json: a SentencePiece tokenizer's normalizer steps


def load_hf_tokenizer(directory, sequence_length=None):
    """The tokenizer of a Hugging Face directory or keras-hub preset folder, or None if it has none kzoo reads.

    `vocab.txt` (WordPiece, settings from `tokenizer_config.json`), else a keras-hub `tokenizer.json` (its
    `assets/tokenizer/` vocabulary), else a WordPiece `tokenizer.json`, else `spiece.model` (SentencePiece,
    lower-cased first when `do_lower_case`, ALBERT's default), else a Unigram `tokenizer.json` (ALBERT's fast
    tokenizer: its SentencePiece model is rebuilt from it, its normalizers applied as Hugging Face does).

    Args:
        directory: a Hugging Face model folder, a keras-hub preset folder, or a kzoo preset folder holding a
            tokenizer.
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
        _check_settings(config_path, settings)
    vocabulary = os.path.join(directory, "vocab.txt")
    if present(vocabulary):
        return load_wordpiece(vocabulary, lowercase=settings.get("do_lower_case", True),
                              strip_accents=settings.get("strip_accents"), sequence_length=sequence_length)
    tokenizer_json = os.path.join(directory, "tokenizer.json")
    spec = read_json(tokenizer_json, "tokenizer.json") if present(tokenizer_json) else {}
    if is_keras_hub_record(spec):
        return _keras_hub_tokenizer(directory, spec, sequence_length)
    found = _tokenizer_json_wordpiece(tokenizer_json, spec, settings.get("do_lower_case", True)) if spec else None
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
                                               sequence_length=sequence_length,
                                               normalizers=settings.get(_NORMALIZERS_KEY))
    return _tokenizer_json_unigram(tokenizer_json, spec, sequence_length) if spec else None


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
    or `spiece.model` (SentencePiece), plus `tokenizer_config.json` with its case setting (and a SentencePiece
    tokenizer's normalizer steps) (example in `load_hf_tokenizer`).

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
        if getattr(tokenizer, "normalizers", None):
            settings[_NORMALIZERS_KEY] = tokenizer.normalizers
    elif isinstance(tokenizer, keras_hub.tokenizers.WordPieceTokenizer):
        path = os.path.join(directory, "vocab.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(tokenizer.get_vocabulary()) + "\n")
        # keras-hub's own lower-casing (a keras-hub preset's tokenizer) is written as Hugging Face's.
        settings = {"do_lower_case": bool(getattr(tokenizer, "hf_lowercase", False) or tokenizer.lowercase),
                    "strip_accents": bool(tokenizer.strip_accents)}
    else:
        raise TypeError(f"Cannot save a {type(tokenizer).__name__}; kzoo saves WordPiece and SentencePiece "
                        "tokenizers.")
    config_path = os.path.join(directory, "tokenizer_config.json")
    with open(config_path, "w") as f:
        json.dump(settings, f, indent=2)
    return [path, config_path]
