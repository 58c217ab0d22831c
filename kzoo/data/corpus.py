"""Streaming corpus reader: `.txt` files → documents (blank-line separated) → sentences.

Memory holds one document at a time, so a corpus larger than memory streams through.
"""

import itertools
import os
import re

# Sentence boundaries are written by hand: tensorflow-text's StateBasedSentenceBreaker splits after "Mr." and
# inside quotations ('"Well," said Emma, "you are late!' | '" She smiled.'), which wrecks NSP/SOP segments.
_BOUNDARY = re.compile(r"""(?<=[.!?])["'’”)\]]*\s+(?=["'‘“(\[]*[A-Z0-9])""")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "messrs", "col", "capt", "gen", "lt", "rev", "prof", "sir",
    "no", "vs", "etc", "e.g", "i.e", "mt", "ft", "vol", "ch", "fig", "p.m", "a.m", "u.s", "u.k",
}


def split_sentences(text):
    """Sentences of one paragraph: breaks after . ! ? (and closing quotes) before a capital or digit.

    Example:
    >>> split_sentences('Mr. Knightley came in. "Well," said Emma, "you are late!" She smiled.')
    ['Mr. Knightley came in.', '"Well," said Emma, "you are late!"', 'She smiled.']
    """
    text = " ".join(text.split())
    if not text:
        return []
    pieces = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        last_word = text[start:match.start()].rsplit(" ", 1)[-1].lstrip("\"'‘“([").rstrip(".").lower()
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue  # "Mr. Knightley", "J. Smith": not a boundary
        end = match.start() + len(match.group().rstrip())  # keep the closing quotes with the sentence
        pieces.append(text[start:end])
        start = match.end()
    pieces.append(text[start:].strip())
    return [piece for piece in pieces if piece]


def corpus_files(corpus):
    """The sorted `.txt` files of a folder, a single file, or a list of either."""
    items = [corpus] if isinstance(corpus, (str, os.PathLike)) else list(corpus)
    files = []
    for item in items:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = sorted(os.path.join(item, name) for name in os.listdir(item) if name.endswith(".txt"))
            if not found:
                raise ValueError(f"Corpus folder {item} has no .txt files.")
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise FileNotFoundError(f"Corpus path {item} does not exist.")
    if not files:
        raise ValueError("The corpus is empty: no files were given.")
    return files


def _paragraphs(path):
    """Blank-line separated blocks of one file, read line by line; names the file and line of bad UTF-8."""
    block = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}, line {number}: not UTF-8 ({error.reason} at byte {error.start}); "
                    "re-encode the file, e.g. `iconv -f latin1 -t utf-8`."
                ) from None
            if line.strip():
                block.append(line.strip())
            elif block:
                yield " ".join(block)
                block = []
    if block:
        yield " ".join(block)


def iter_documents(corpus, holdout_every=0, split="train", cycle_length=16):
    """Yield each document as its list of sentences, streaming: up to `cycle_length` files are open at once
    and give a document each in turn (like `tf.data`'s interleave; BERT shuffles all its documents together),
    so that NSP's "other document" and the shuffle buffers span many files, not only the last one read.

    `holdout_every=k` sends every k-th document to `split="eval"` and the rest to `split="train"` (a
    deterministic split that needs no second pass). Raises a ValueError naming the corpus when it holds no
    text at all.

    Example:
        for sentences in iter_documents("../shared/data/corpora/austen"): ...
    """
    if split not in ("train", "eval", "all"):
        raise ValueError(f"split must be 'train', 'eval' or 'all'; got {split!r}.")
    files = corpus_files(corpus)
    waiting = iter(files)
    readers = [_paragraphs(path) for path in itertools.islice(waiting, cycle_length)]
    index = 0
    while readers:
        for reader in list(readers):
            paragraph = next(reader, None)
            if paragraph is None:  # file done: the next waiting file takes its place
                position = readers.index(reader)
                following = next(waiting, None)
                if following is None:
                    readers.pop(position)
                else:
                    readers[position] = _paragraphs(following)
                continue
            sentences = split_sentences(paragraph)
            if not sentences:
                continue
            held_out = holdout_every and index % holdout_every == holdout_every - 1
            index += 1
            if split == "all" or (split == "eval") == bool(held_out):
                yield sentences
    if index == 0:
        raise ValueError(f"The corpus {files if len(files) > 1 else files[0]} is empty: no text in it.")
