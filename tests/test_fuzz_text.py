"""Raw text fuzzing: 1,000 seeded random Unicode strings (every plane, lone surrogates, combining marks, emoji,
right-to-left scripts, zero-width and control characters, 100,000-character strings) through
`TextClassifier.predict_labels` and an exported SavedModel's `serve_text`: every accepted string gets a finite
answer of the right shape, every refused one is named by its index (found by kzoo's text check, without the model:
the model itself refuses the whole list once). Also `serve_text` on chosen bad strings."""

import re

import numpy as np
import pytest
from conftest import BACKEND, make_backbone, word_preprocessor

from kzoo.data.task_inputs import as_text_list

SEQUENCE_LENGTH = 32
LABELS = ["a", "b", "c"]
# Code point ranges a string draws from (one to three of them), and the spaces mixed in.
RANGES = [(0x20, 0x7E), (0x00, 0x1F), (0x7F, 0x9F), (0x0300, 0x036F), (0x0590, 0x06FF), (0x4E00, 0x9FFF),
          (0x1F300, 0x1FAFF), (0xD800, 0xDFFF), (0x0000, 0xFFFF), (0x10000, 0x10FFFF), (0x200B, 0x200F),
          (0x2028, 0x202E), (0xFE00, 0xFEFF)]
SPACES = [0x20, 0x09, 0x0A, 0x0D, 0xA0, 0x3000, 0x2028, 0x85]
SURROGATE = re.compile("[\ud800-\udfff]")

tf_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="the SavedModel is backend-independent: TensorFlow only")


def random_texts(count=1000, seed=0):
    """`count` random strings: lengths 0 to 300, and every 250th 100,000 characters long."""
    rng = np.random.default_rng(seed)
    texts = []
    for index in range(count):
        length = 100_000 if index % 250 == 7 else int(rng.choice([0, 1, 2, 3, 8, 20, 60, 300]))
        pools = rng.choice(len(RANGES), size=int(rng.integers(1, 4)), replace=False)
        low, high = np.array([RANGES[p] for p in pools]).T
        which = rng.integers(0, len(pools), length)
        points = rng.integers(low[which], high[which] + 1)
        spaces = rng.random(length) < 0.15
        points[spaces] = rng.choice(SPACES, int(spaces.sum()))
        texts.append("".join(map(chr, points.tolist())))
    return texts


def refused_by_python(text):
    """What kzoo's Python API refuses: a lone surrogate (no UTF-8 encoding) or nothing but whitespace."""
    return bool(SURROGATE.search(text)) or not text.strip()


def without_refused(call, texts, indices_of):
    """Call `call(batch)`, and while it fails, take out the strings its error names (`indices_of(error)` gives
    their positions in the batch) and call again. Returns (output, original indices named, in order)."""
    batch, original, named = list(texts), list(range(len(texts))), []
    while True:
        try:
            return call(batch), named
        except Exception as error:
            positions = indices_of(error)
            assert positions, f"an error that names no text: {error}"
            named += [original[p] for p in positions]
            batch = [t for p, t in enumerate(batch) if p not in set(positions)]
            original = [o for p, o in enumerate(original) if p not in set(positions)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from kzoo.models import TextClassifier

    words = ["good", "bad", "day", "的", "😀", "שלום", "é", "x"]
    preprocessor = word_preprocessor(tmp_path_factory.mktemp("vocab") / "vocab.txt", words, SEQUENCE_LENGTH)
    backbone = make_backbone("bert", vocabulary_size=preprocessor.tokenizer.vocabulary_size())
    return TextClassifier(backbone, label_names=LABELS, preprocessor=preprocessor)


def refused_by_kzoo(text):
    """True when kzoo's text check refuses `text` on its own (no model)."""
    try:
        as_text_list([text])
    except ValueError:
        return True
    return False


def test_random_unicode_through_predict_labels(model):
    """Which strings are refused, and that each is named by its index, is checked without the model; the model
    refuses the whole list once, naming the first, and answers the accepted strings in one call."""
    texts = random_texts()
    expected = [index for index, text in enumerate(texts) if refused_by_python(text)]
    assert 100 < len(expected) < 500 and sum(len(t) == 100_000 and i not in expected for i, t in enumerate(texts)) >= 2
    assert [index for index, text in enumerate(texts) if refused_by_kzoo(text)] == expected

    def named(error):
        assert isinstance(error, ValueError) and "\n" not in str(error), error
        return [int(re.match(r"texts\[(\d+)\] ", str(error)).group(1))]

    accepted, refused = without_refused(as_text_list, texts, named)
    assert refused == expected  # each refused string named by its index, in order
    assert accepted == [text for index, text in enumerate(texts) if index not in set(expected)]
    with pytest.raises(ValueError) as error:
        model.predict_labels(texts)
    assert named(error.value) == expected[:1]
    logits = model.predict(accepted, verbose=0)
    assert logits.shape == (len(accepted), len(LABELS)) and np.isfinite(logits).all()
    assert model.preprocessor.encode(accepted)[1].max() == SEQUENCE_LENGTH


# The exported SavedModel -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(model, tmp_path_factory):
    import tensorflow as tf

    from kzoo import export

    directory = str(tmp_path_factory.mktemp("export") / "sm")
    export.saved_model(model, directory)
    return tf.saved_model.load(directory).signatures


def serve(signatures, name="serve_text", **strings):
    import tensorflow as tf

    outputs = signatures[name](**{k: tf.constant(v, tf.string, shape=[len(v)]) for k, v in strings.items()})
    return {key: value.numpy() for key, value in outputs.items()}


def not_utf8_indices(error):
    """The indices an `InvalidArgumentError` of `serve_text` names: "text[i] is not valid UTF-8 at indices i =] [3 7]"."""
    import tensorflow as tf

    assert isinstance(error, tf.errors.InvalidArgumentError), error
    found = re.search(r"is not valid UTF-8 at indices i =\] \[([\d ]+)", str(error))
    return [int(i) for i in found.group(1).split()] if found else []


@tf_only
def test_serve_text_answers_every_utf8_string_and_names_the_others(model, served):
    import tensorflow as tf

    special = model.preprocessor.special
    ids = {"token_ids": [[special.cls, special.sep]], "segment_ids": [[0, 0]], "padding_mask": [[1, 1]]}
    cls_sep = served["serve_ids"](**{k: tf.constant(v, tf.int32) for k, v in ids.items()})["probabilities"].numpy()
    no_tokens = [b"", b"  \t\n", b"\x00", b"\x01\x02\x7f", "\u200b\ufeff".encode()]
    outputs = serve(served, text=no_tokens + [b"good\x00day", ("good " * 20_000).encode(), b"[MASK] good"])
    assert outputs["probabilities"].shape == (8, 3) and np.isfinite(outputs["probabilities"]).all()
    np.testing.assert_allclose(outputs["probabilities"][:5], np.repeat(cls_sep, 5, axis=0), atol=1e-6)
    assert set(outputs["label"].astype(str)) <= set(LABELS)
    assert serve(served, text=[])["probabilities"].shape == (0, 3)
    assert serve(served, "serve_text_pair", text=[], text_pair=[])["probabilities"].shape == (0, 3)
    not_utf8 = {"latin-1": "café".encode("latin-1"), "cut": "é".encode()[:1], "surrogate": b"\xed\xa0\x80",
                "overlong": b"\xc0\xaf", "beyond U+10FFFF": b"\xf4\x90\x80\x80"}
    for name, bad in not_utf8.items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"text\[i\] is not valid UTF-8 at indices i =\] "
                                                                 r"\[1\]"):
            serve(served, text=[b"good", bad, b"bad"])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"text_pair\[i\] is not valid UTF-8 at indices i =\] "
                                                             r"\[0 2\]"):
        serve(served, "serve_text_pair", text=[b"a", b"b", b"c"], text_pair=[b"\xff", b"ok", b"\xfe"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="text and text_pair must hold as many strings"):
        serve(served, "serve_text_pair", text=[b"a", b"b"], text_pair=[b"c"])


@tf_only
def test_random_unicode_through_serve_text(model, served):
    """The same strings as UTF-8 bytes (a lone surrogate written as its 3 bytes, which are not UTF-8), plus 50
    strings of random bytes: every valid one served, equal to `predict`; the others named by their indices."""
    rng = np.random.default_rng(1)
    strings = [text.encode("utf-8", "surrogatepass") for text in random_texts()]
    for index in rng.choice(len(strings), 50, replace=False):
        strings[index] = rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes()

    def valid(data):
        try:
            data.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False

    expected = [index for index, data in enumerate(strings) if not valid(data)]
    outputs, refused = without_refused(lambda batch: serve(served, text=batch), strings, not_utf8_indices)
    assert refused == expected
    accepted = [data for data in strings if valid(data)]
    probabilities = outputs["probabilities"]
    assert probabilities.shape == (len(accepted), 3) and np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(-1), 1, atol=1e-5)
    both = [index for index, data in enumerate(accepted) if data.decode().strip()]  # what predict also takes
    logits = model.predict([accepted[i].decode() for i in both], verbose=0)
    expected_probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(probabilities[both], expected_probabilities, atol=1e-5)
