"""Checkpoints in and out: Hugging Face directories (safetensors, no pickles by default) and keras-hub.

The names below are imported on first use, so `kzoo.convert.safetensors_io` can be imported without Keras.
"""

import importlib

_EXPORTS = {"Conversion": "huggingface", "from_huggingface": "huggingface", "to_huggingface": "huggingface",
            "from_keras_hub": "keras_hub_io", "to_keras_hub": "keras_hub_io"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
