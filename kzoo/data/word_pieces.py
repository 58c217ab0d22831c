"""Words ↔ word pieces, for tasks whose labels live on words or character spans (token tagging, span QA).

Each word is tokenized on its own (all words of a batch in one tokenizer call), so every piece knows its word:
the alignment Hugging Face's fast tokenizers give as `word_ids()`, here for keras-hub's WordPiece and
SentencePiece tokenizers, which report no offsets. Text given as a string is pre-split like BERT's basic
tokenizer: runs of word characters, and each punctuation mark on its own, with their character spans.

Example:
>>> split_words("Ada met Bob.")
(['Ada', 'met', 'Bob', '.'], [(0, 3), (4, 7), (8, 11), (11, 12)])

and `tokenize_words(preprocessor, [words])` gives each example's pieces and the word of each piece.
"""

import dataclasses
import re

import numpy as np

from kzoo.data.task_inputs import check_text
from kzoo.file_checks import describe

WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


def split_words(text):
    """Words and punctuation marks of `text`, and their (start, end) character spans (example above).

    Args:
        text: a string.

    Returns:
        (list of words, list of (start, end) spans).
    """
    matches = list(WORD_PATTERN.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]


def as_word_lists(examples, name="texts"):
    """Each example as a list of words: strings (or UTF-8 bytes) are split with `split_words`, lists of words kept;
    a ValueError names an example without words, or the example or word that is no text (see `check_text`).

    Args:
        examples: a non-empty list of strings or of word lists.
        name: how errors name the list ("texts[3] has no words").
    """
    if examples is None or isinstance(examples, (str, bytes)) or not len(examples):
        raise ValueError(f"{name} must be a non-empty list of strings or of word lists.")
    word_lists = []
    for index, example in enumerate(examples):
        where = f"{name}[{index}]"
        if isinstance(example, (str, bytes)):
            words = split_words(check_text(example, where))[0] if example.strip() else []
        elif isinstance(example, (list, tuple, np.ndarray)):
            words = [check_text(word, f"{where}[{position}]") for position, word in enumerate(example)]
        else:
            raise ValueError(f"{where} is {describe(example)}, not a string or a list of words.")
        if not words:
            raise ValueError(f"{where} has no words.")
        word_lists.append(words)
    return word_lists


@dataclasses.dataclass
class PiecedWords:
    """What `tokenize_words` gives: each example's pieces and the word of each piece."""

    pieces: list  # per example: int32 piece ids, all words concatenated
    word_of_piece: list  # per example: int32 index of the word each piece belongs to

    def first_pieces(self, index):
        """Positions (in the example's pieces) where each word starts."""
        word_of_piece = self.word_of_piece[index]
        return np.flatnonzero(np.diff(word_of_piece, prepend=-1) != 0)


def tokenize_words(preprocessor, word_lists):
    """Tokenize every word of every example in one call; a word that yields no piece (e.g. a lone control
    character) becomes the unknown token, so no word loses its place.

    Args:
        preprocessor: a `TextPreprocessor` (its tokenizer and special ids).
        word_lists: a list of examples, each a list of words (see `as_word_lists`).

    Returns:
        A `PiecedWords`: per example, `pieces` (int32 ids) and `word_of_piece` (the word index of each piece).

    Example:
    >>> from kzoo.data import BertWordPieceTokenizer
    >>> from kzoo.data.task_inputs import TextPreprocessor
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "ada", "play", "##s"])
    >>> pieced = tokenize_words(TextPreprocessor(tokenizer), [["Ada", "plays"]])
    >>> pieced.pieces[0].tolist(), pieced.word_of_piece[0].tolist(), pieced.first_pieces(0).tolist()
    ([4, 5, 6], [0, 1, 1], [0, 1])
    """
    flat = [word for words in word_lists for word in words]
    piece_lists = preprocessor.tokenize(flat)
    unknown = preprocessor.special.unk
    for index, pieces in enumerate(piece_lists):
        if not len(pieces):
            if unknown is None:
                raise ValueError(f"word {flat[index]!r} yields no token and the vocabulary has no unknown token.")
            piece_lists[index] = np.array([unknown], "int32")
    counts = np.array([len(p) for p in piece_lists])
    pieces, word_of_piece, start = [], [], 0
    for words in word_lists:
        stop = start + len(words)
        pieces.append(np.concatenate(piece_lists[start:stop]).astype("int32"))
        word_of_piece.append(np.repeat(np.arange(len(words), dtype="int32"), counts[start:stop]))
        start = stop
    return PiecedWords(pieces, word_of_piece)
