"""Training a tokenizer from a corpus: WordPiece (tensorflow-text's learner) and SentencePiece.

Both read the corpus through `iter_documents`, so a corpus larger than memory streams through them.
A corpus with fewer distinct pieces than asked for gives a smaller vocabulary (never an error): the model is
then built with `tokenizer.vocabulary_size()`; `VocabularyReport.shortfall` says so.
"""

import dataclasses
import os

from kzoo.atomic import atomic_file
from kzoo.data.corpus import iter_documents

WORDPIECE_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# ALBERT's spiece.model layout: <pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4.
SENTENCEPIECE_SPECIALS = ("[CLS]", "[SEP]", "[MASK]")


@dataclasses.dataclass
class VocabularyReport:
    """What a tokenizer training wrote; `str(report)` says it in one line.

    Attributes:
        path: the vocabulary file written.
        requested: the vocabulary size asked for.
        size: the size reached.
    """

    path: str
    requested: int
    size: int

    @property
    def shortfall(self):
        """True when the corpus supported fewer pieces than requested (the learner aims near, not at, the size)."""
        return self.size < 0.95 * self.requested

    def __str__(self):
        note = f" (the corpus supports no more than this; {self.requested:,} asked)" if self.shortfall else ""
        return f"{os.path.basename(self.path)}: {self.size:,} pieces{note}"


def _sentences(corpus, lowercase):
    for document in iter_documents(corpus, split="all"):
        for sentence in document:
            yield sentence.lower() if lowercase else sentence


def train_wordpiece(corpus, vocabulary_size, output_file, lowercase=True):
    """Learn a BERT WordPiece `vocab.txt` with tensorflow-text's `bert_vocab_from_dataset`; returns
    (tokenizer, VocabularyReport).

    tensorflow-text's learner is called rather than keras-hub's `compute_word_piece_vocabulary` (the same
    learner) because keras-hub fixes its search bounds (words seen fewer than 10 times are dropped, four
    refinement passes): a small corpus could not reach the requested size, and Austen's six novels took a
    minute. Lower-casing is `str.lower` as in the tokenizer kzoo loads, accents stripped when lower-casing
    (bert-base-uncased's rule). Specials first: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4.

    Args:
        corpus: a folder of `.txt` files, one file, or a list of them (see `iter_documents`).
        vocabulary_size: the number of tokens wanted, specials included; a small corpus may give fewer.
        output_file: the `vocab.txt` to write (atomically).
        lowercase: lower-case the text (an uncased vocabulary).

    Returns:
        (`BertWordPieceTokenizer` on the new file, `VocabularyReport`).

    Example:
    >>> import os, tempfile
    >>> corpus = tempfile.mkdtemp()
    >>> with open(os.path.join(corpus, "a.txt"), "w") as f:
    ...     _ = f.write("The cat sat on the mat. The dog sat on the log.\\n\\nA cat and a dog played all day.\\n")
    >>> tokenizer, report = train_wordpiece(corpus, 40, os.path.join(tempfile.mkdtemp(), "vocab.txt"))
    >>> tokenizer.get_vocabulary()[:6], report.size <= 40
    (['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '.'], True)
    """
    import tensorflow as tf
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset

    from kzoo.data.tokenizers import load_wordpiece

    _check_size(vocabulary_size, len(WORDPIECE_SPECIALS))
    sentences = tf.data.Dataset.from_generator(
        lambda: _sentences(corpus, lowercase), output_signature=tf.TensorSpec((), tf.string)).batch(1024)
    vocabulary = bert_vocab_from_dataset.bert_vocab_from_dataset(
        sentences, vocabulary_size, list(WORDPIECE_SPECIALS), bert_tokenizer_params={"lower_case": lowercase},
        learn_params={"lower_thresh": 2, "num_iterations": 2})[:vocabulary_size]
    with atomic_file(output_file, "w") as f:
        f.write("".join(token + "\n" for token in vocabulary))
    return load_wordpiece(output_file, lowercase=lowercase), VocabularyReport(output_file, vocabulary_size,
                                                                              len(vocabulary))


def train_sentencepiece(corpus, vocabulary_size, output_file, lowercase=True, model_type="unigram"):
    """Learn an ALBERT-style `spiece.model` (unigram): <pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4;
    returns (tokenizer, VocabularyReport).

    sentencepiece is called directly because keras-hub's `compute_sentence_piece_proto` fixes bos/eos ids and
    cannot add the [CLS]/[SEP]/[MASK] pieces. Text is lower-cased first when `lowercase` (ALBERT's
    `do_lower_case`), as the returned tokenizer does.

    Args:
        corpus: a folder of `.txt` files, one file, or a list of them (see `iter_documents`).
        vocabulary_size: the number of pieces wanted, specials included; a small corpus may give fewer.
        output_file: the `spiece.model` to write (atomically).
        lowercase: lower-case the text first.
        model_type: sentencepiece's model type: "unigram" (ALBERT's) or "bpe".

    Returns:
        (`LowercaseSentencePieceTokenizer` on the new file, `VocabularyReport`).

    Example:
    >>> import os, tempfile
    >>> corpus = tempfile.mkdtemp()
    >>> with open(os.path.join(corpus, "a.txt"), "w") as f:
    ...     _ = f.write("The cat sat on the mat. The dog sat on the log.\\n\\nA cat and a dog played all day.\\n")
    >>> tokenizer, report = train_sentencepiece(corpus, 40, os.path.join(tempfile.mkdtemp(), "spiece.model"))
    >>> tokenizer.get_vocabulary()[:5], report.shortfall     # a corpus this small supports fewer pieces
    (['<pad>', '<unk>', '[CLS]', '[SEP]', '[MASK]'], True)
    """
    import sentencepiece

    from kzoo.data.tokenizers import LowercaseSentencePieceTokenizer

    _check_size(vocabulary_size, 2 + len(SENTENCEPIECE_SPECIALS))
    with atomic_file(output_file, "wb") as f:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=_sentences(corpus, lowercase), model_writer=f, vocab_size=vocabulary_size,
            model_type=model_type, pad_id=0, pad_piece="<pad>", unk_id=1, unk_piece="<unk>", bos_id=-1,
            eos_id=-1, control_symbols=list(SENTENCEPIECE_SPECIALS), hard_vocab_limit=False,
            input_sentence_size=2_000_000, shuffle_input_sentence=True, minloglevel=2,
        )
    tokenizer = LowercaseSentencePieceTokenizer(lowercase=lowercase, proto=output_file)
    return tokenizer, VocabularyReport(output_file, vocabulary_size, tokenizer.vocabulary_size())


def _check_size(vocabulary_size, specials):
    if not isinstance(vocabulary_size, int) or vocabulary_size <= specials:
        raise ValueError(f"vocabulary_size must be an integer above the {specials} special tokens; "
                         f"got {vocabulary_size!r}.")
