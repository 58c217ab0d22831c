"""Checkpoints in and out: Hugging Face directories (safetensors, no pickles by default)."""

from kzoo.convert.huggingface import Conversion, from_huggingface, to_huggingface

__all__ = ["Conversion", "from_huggingface", "to_huggingface"]
