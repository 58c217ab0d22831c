"""Text to model inputs: tokenizers (more pipelines arrive with the pretraining issue)."""

from kzoo.data.tokenizers import load_hf_tokenizer, load_wordpiece

__all__ = ["load_hf_tokenizer", "load_wordpiece"]
