"""Shared fixtures: tiny configs for every architecture, random inputs with padding, subprocess helpers."""

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
