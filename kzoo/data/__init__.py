"""Text to model inputs: tokenizers (more pipelines arrive with the pretraining issue)."""

from kzoo.data.packing import encode_texts
from kzoo.data.tokenizers import BertWordPieceTokenizer, load_hf_tokenizer, load_wordpiece

__all__ = ["BertWordPieceTokenizer", "encode_texts", "load_hf_tokenizer", "load_wordpiece"]
