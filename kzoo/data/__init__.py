"""Text to model inputs: corpus reading, tokenizer training and loading, NSP/SOP pairs, MLM masking, and the
pretraining `tf.data` pipeline."""

from kzoo.data.corpus import iter_documents, split_sentences
from kzoo.data.masking import MaskedLMMasker, word_start_table
from kzoo.data.packing import encode_texts
from kzoo.data.pairs import PairBuilder
from kzoo.data.pipeline import pretraining_dataset
from kzoo.data.tokenizers import BertWordPieceTokenizer, load_hf_tokenizer, load_wordpiece, save_tokenizer, special_ids
from kzoo.data.vocab import train_sentencepiece, train_wordpiece

__all__ = [
    "BertWordPieceTokenizer", "MaskedLMMasker", "PairBuilder", "encode_texts", "iter_documents", "load_hf_tokenizer",
    "load_wordpiece", "pretraining_dataset", "special_ids", "split_sentences", "train_sentencepiece",
    "train_wordpiece", "word_start_table",
]
