"""Checkpoints in and out: Hugging Face directories (safetensors, no pickles by default) and keras-hub."""

from kzoo.convert.huggingface import Conversion, from_huggingface, to_huggingface
from kzoo.convert.keras_hub_io import from_keras_hub, to_keras_hub

__all__ = ["Conversion", "from_huggingface", "from_keras_hub", "to_huggingface", "to_keras_hub"]
