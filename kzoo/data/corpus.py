"""Streaming corpus reader: `.txt` files → documents (blank-line separated) → sentences.

Memory holds one document at a time, so a corpus larger than memory streams through. `check_corpus` reads it
through once before training, so that bad bytes or too little text fail at the start, not inside `tf.data`.
"""

import itertools
import os
import re

from kzoo.file_checks import not_utf8

# Sentence boundaries are written by hand: tensorflow-text's StateBasedSentenceBreaker splits after "Mr." and
# inside quotations ('"Well," said Emma, "you are late!' | '" She smiled.'), which wrecks NSP/SOP segments.
_BOUNDARY = re.compile(r"""(?<=[.!?])["'’”)\]]*\s+(?=["'‘“(\[]*[A-Z0-9])""")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "messrs", "col", "capt", "gen", "lt", "rev", "prof", "sir",
    "no", "vs", "etc", "e.g", "i.e", "mt", "ft", "vol", "ch", "fig", "p.m", "a.m", "u.s", "u.k",
}


def split_sentences(text):
    """Sentences of one paragraph: breaks after . ! ? (and closing quotes) before a capital or digit.

    Common abbreviations ("Mr.", "e.g.") and initials ("J. Smith") do not end a sentence.

    Args:
        text: a paragraph; runs of whitespace (newlines included) count as one space.

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
    """The sorted `.txt` files of a folder, a single file, or a list of either; a ValueError or
    FileNotFoundError names a folder without `.txt` files or a missing path.

    Args:
        corpus: a folder, a file, or a list of either.
    """
    items = [corpus] if isinstance(corpus, (str, os.PathLike)) else list(corpus)
    files = []
    for item in items:
        item = os.fspath(item)
        if os.path.isdir(item):
            names = sorted(os.listdir(item))
            found = [os.path.join(item, name) for name in names if name.endswith(".txt")]
            if not found:
                others = f" (it holds {', '.join(names[:3])}{', ...' if len(names) > 3 else ''})" if names else ""
                raise ValueError(f"Corpus folder {item} has no .txt files{others}.")
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise FileNotFoundError(f"Corpus path {item} does not exist.")
    if not files:
        raise ValueError("The corpus is empty: no files were given.")
    return files


_VALID_UTF8 = set()  # (path, size, mtime) of files check_utf8 has read through


def check_utf8(path, block_size=1 << 24):
    """Read `path` through in blocks: a ValueError names the line and byte offset of its first bytes that are
    not UTF-8. A file that passed is not read again until it changes.

    Args:
        path: the file.
        block_size: bytes read at a time.
    """
    status = os.stat(path)
    key = (os.path.abspath(path), status.st_size, status.st_mtime_ns)
    if key in _VALID_UTF8:
        return
    offset, lines, carry, start = 0, 0, b"", None  # `offset`, `lines`: bytes and newlines before `data`
    with open(path, "rb") as f:
        while True:
            block = f.read(block_size)
            start = block[:4] if start is None else start
            data = carry + block
            try:
                data.decode("utf-8")
                carry = b""
            except UnicodeDecodeError as error:
                if not (block and error.reason == "unexpected end of data"):
                    line = lines + data.count(b"\n", 0, error.start) + 1
                    raise ValueError(not_utf8(path, line, offset + error.start, error.reason, start)) from error
                data, carry = data[:error.start], data[error.start:]  # a character cut by the block's end
            if not block:
                break
            offset += len(data)
            lines += data.count(b"\n")
    _VALID_UTF8.add(key)


def _paragraphs(path):
    """Blank-line separated blocks of one file, read line by line; names the file and line of bad UTF-8."""
    block = []
    offset = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a byte-order mark is no text
            except UnicodeDecodeError as error:
                raise ValueError(not_utf8(path, number, offset + error.start, error.reason,
                                         raw if number == 1 else b"")) from error
            offset += len(raw)
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

    Raises a ValueError naming the corpus when it holds no text at all.

    Args:
        corpus: a folder (its `.txt` files, sorted), a file, or a list of either. UTF-8 text; documents are
            separated by blank lines.
        holdout_every: k > 0 sends every k-th document to `split="eval"` and the rest to `split="train"` (a
            deterministic split that needs no second pass); 0 holds out nothing.
        split: "train", "eval" or "all".
        cycle_length: how many files are read in turn.

    Example:
    >>> import os, tempfile
    >>> corpus = tempfile.mkdtemp()
    >>> with open(os.path.join(corpus, "a.txt"), "w") as f:
    ...     _ = f.write("Emma came in. She sat down.\\n\\nIt rained.\\n")
    >>> list(iter_documents(corpus))
    [['Emma came in.', 'She sat down.'], ['It rained.']]
    >>> list(iter_documents(corpus, holdout_every=2, split="eval"))
    [['It rained.']]
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
        raise ValueError(f"The corpus {_name(files)} is empty: no text in it.")


def _name(files):
    return files[0] if len(files) == 1 else f"of {len(files)} files ({files[0]}, ...)"


# What each pretraining task needs of the documents in its training split: how many, and whether one must have
# two words (a sentence pair needs a token on each side; NSP also needs a second document for its random B).
_NEEDS = {"mlm": (1, False), "sop": (1, True), "nsp": (2, True)}


def check_corpus(corpus, task="mlm", holdout_every=0):
    """Read the whole corpus once, before training: a ValueError names the file and line of the first bytes that
    are not UTF-8, or what `task` lacks ("mlm": one document; "sop": one of two words or more; "nsp": two
    documents, one of two words or more, in the training split). Returns the corpus files.

    Args:
        corpus: a folder of `.txt` files, one file, or a list of them.
        task: "mlm", "sop" or "nsp".
        holdout_every: as in `iter_documents`: the documents held out do not count.

    Example:
    >>> import os, tempfile
    >>> corpus = tempfile.mkdtemp()
    >>> with open(os.path.join(corpus, "a.txt"), "w") as f:
    ...     _ = f.write("One document only.\\n")
    >>> check_corpus(corpus, "nsp")
    Traceback (most recent call last):
    ...
    ValueError: NSP pretraining needs 2 or more documents (paragraphs separated by a blank line) to train on; ...
    """
    if task not in _NEEDS:
        raise ValueError(f"task must be one of {sorted(_NEEDS)}; got {task!r}.")
    files = corpus_files(corpus)
    for path in files:
        check_utf8(path)
    documents, pair_needed = _NEEDS[task]
    count, has_pair = 0, not pair_needed
    for sentences in iter_documents(files, holdout_every, "train"):
        count += 1
        has_pair = has_pair or sum(len(s.split()) for s in sentences) >= 2
        if count >= documents and has_pair:
            return files
    if count < documents:
        held_out = f" (holdout_every={holdout_every} holds out 1 document in {holdout_every})" if holdout_every else ""
        raise ValueError(f"{task.upper()} pretraining needs {documents} or more documents (paragraphs separated by a "
                         f"blank line) to train on; the corpus {_name(files)} gives {count}{held_out}.")
    raise ValueError(f"{task.upper()} pretraining makes sentence pairs, which need a document of two words or more; "
                     f"every document of the corpus {_name(files)} has one word.")
