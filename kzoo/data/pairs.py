"""Pretraining instances from tokenized documents: NSP and SOP sentence pairs, or MLM-only sequences.

The recipe of BERT's and ALBERT's `create_pretraining_data.py` (docs/design.md §5), streaming: documents pass
through a shuffle buffer, and NSP's "another document" is drawn from the last `document_pool` documents seen.
Deterministic for a given seed.
"""

import collections
import dataclasses
import random

import numpy as np

TASKS = ("nsp", "sop", "mlm")


@dataclasses.dataclass(frozen=True)
class Instance:
    """One training sequence before padding and masking. `label`: NSP 1 = B from another document,
    SOP 1 = segments swapped, 0 otherwise (Hugging Face's convention); None for MLM-only."""

    tokens_a: np.ndarray
    tokens_b: np.ndarray | None
    label: int | None


def _concat(segments):
    return np.concatenate(segments) if segments else np.zeros((0,), "int32")


def truncate_pair(tokens_a, tokens_b, max_tokens, rng):
    """Trim the longer side, one token at a time, from its front or back at random (BERT's rule)."""
    a_start, a_end = 0, len(tokens_a)
    b_start, b_end = 0, 0 if tokens_b is None else len(tokens_b)
    while (a_end - a_start) + (b_end - b_start) > max_tokens:
        if (a_end - a_start) >= (b_end - b_start):
            if rng.random() < 0.5:
                a_start += 1
            else:
                a_end -= 1
        elif rng.random() < 0.5:
            b_start += 1
        else:
            b_end -= 1
    return tokens_a[a_start:a_end], (None if tokens_b is None else tokens_b[b_start:b_end])


class PairBuilder:
    """Turns a stream of tokenized documents (each a list of int arrays, one per sentence) into `Instance`s.

    Args:
        task: "nsp" (50% of B from another document), "sop" (two consecutive segments, 50% swapped) or
            "mlm" (one segment of consecutive sentences).
        max_tokens: room for text: the sequence length minus 3 for pairs ([CLS] A [SEP] B [SEP]), minus 2 for
            single segments.
        short_seq_prob: probability of a shorter target length, drawn from [2, max_tokens].
        seed: the seed of every random choice: the same seed and documents give the same instances.
        document_pool: how many recent documents NSP may draw B from; also the shuffle buffer of documents.

    A chunk of one sentence (a one-sentence document, or one sentence that fills the target) is split at a
    random token into A and B, so every document of two or more tokens yields pairs and labels stay balanced.
    Calling the builder on an iterable of documents yields the instances; `documents_seen` and
    `documents_skipped` (too short) count them afterwards.

    Example:
    >>> import numpy as np
    >>> docs = [[np.arange(5), np.arange(5, 9)], [np.arange(100, 104), np.arange(104, 110)]]
    >>> instances = list(PairBuilder("sop", max_tokens=20, seed=0)(docs))
    >>> [(i.label, i.tokens_a.tolist(), i.tokens_b.tolist()) for i in instances][0]
    (1, [5, 6, 7, 8], [0, 1, 2, 3, 4])
    """

    def __init__(self, task, max_tokens, short_seq_prob=0.1, seed=0, document_pool=1000):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}; got {task!r}.")
        if max_tokens < 2:
            raise ValueError(f"max_tokens must leave room for two tokens; got {max_tokens}.")
        self.task = task
        self.max_tokens = max_tokens
        self.short_seq_prob = short_seq_prob
        self.seed = seed
        self.document_pool = max(2, document_pool)
        self.documents_seen = 0
        self.documents_skipped = 0

    def _target_length(self, rng):
        if rng.random() < self.short_seq_prob:
            return rng.randint(2, self.max_tokens)
        return self.max_tokens

    def __call__(self, documents):
        rng = random.Random(self.seed)
        buffer = []
        recent = collections.deque(maxlen=self.document_pool)  # (index, document) for NSP's random B
        self.documents_seen = self.documents_skipped = 0
        for document in documents:
            document = [np.asarray(s, "int32") for s in document if len(s)]
            entry = (self.documents_seen, document)
            self.documents_seen += 1
            buffer.append(entry)
            recent.append(entry)
            if len(buffer) >= self.document_pool:
                yield from self._document_instances(buffer.pop(rng.randrange(len(buffer))), recent, rng)
        rng.shuffle(buffer)
        for entry in buffer:
            yield from self._document_instances(entry, recent, rng)

    def _document_instances(self, entry, recent, rng):
        index, document = entry
        if sum(len(s) for s in document) < (1 if self.task == "mlm" else 2):
            self.documents_skipped += 1
            return
        target = self._target_length(rng)
        chunk, length, i = [], 0, 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            if i == len(document) - 1 or length >= target:
                instance, unused = self._chunk_instance(index, chunk, target, recent, rng)
                i -= unused  # NSP's random B leaves the chunk's tail for the next instance (as BERT)
                if instance is not None:
                    yield instance
                chunk, length = [], 0
                target = self._target_length(rng)
            i += 1

    def _chunk_instance(self, index, chunk, target, recent, rng):
        if self.task == "mlm":
            tokens, _ = truncate_pair(_concat(chunk), None, self.max_tokens, rng)
            return Instance(tokens, None, None), 0
        single_sentence = len(chunk) == 1
        if single_sentence:
            tokens = chunk[0]
            if len(tokens) < 2:
                return None, 0
            cut = rng.randint(1, len(tokens) - 1)
            chunk = [tokens[:cut], tokens[cut:]]
        a_end = rng.randint(1, len(chunk) - 1)
        tokens_a, tokens_b, unused, label = _concat(chunk[:a_end]), _concat(chunk[a_end:]), 0, 0
        if self.task == "nsp" and rng.random() < 0.5:
            other = self._other_document(index, recent, rng)
            if other is None:
                raise ValueError("NSP needs at least two documents with text; the corpus has one.")
            tokens_b = self._random_b(other, max(1, target - len(tokens_a)), rng)
            unused, label = (0 if single_sentence else len(chunk) - a_end), 1
        elif self.task == "sop" and rng.random() < 0.5:
            tokens_a, tokens_b, label = tokens_b, tokens_a, 1
        tokens_a, tokens_b = truncate_pair(tokens_a, tokens_b, self.max_tokens, rng)
        if not len(tokens_a) or not len(tokens_b):
            return None, unused
        return Instance(tokens_a, tokens_b, label), unused

    @staticmethod
    def _other_document(index, recent, rng):
        candidates = [entry for entry in recent if entry[0] != index and entry[1]]
        return rng.choice(candidates)[1] if candidates else None

    @staticmethod
    def _random_b(document, target_b, rng):
        start = rng.randrange(len(document))
        segments, length = [], 0
        for sentence in document[start:]:
            segments.append(sentence)
            length += len(sentence)
            if length >= target_b:
                break
        return _concat(segments)


def pack_instance(instance, cls_id, sep_id, pad_id, sequence_length):
    """`[CLS] A [SEP] B [SEP]` (or `[CLS] A [SEP]`), padded: (token_ids, segment_ids) int32 arrays."""
    pieces = [[cls_id], instance.tokens_a, [sep_id]]
    segments = [np.zeros(len(instance.tokens_a) + 2, "int32")]
    if instance.tokens_b is not None:
        pieces += [instance.tokens_b, [sep_id]]
        segments.append(np.ones(len(instance.tokens_b) + 1, "int32"))
    token_ids = np.concatenate([np.asarray(p, "int32") for p in pieces])
    segment_ids = np.concatenate(segments)
    if len(token_ids) > sequence_length:
        raise ValueError(f"Instance of {len(token_ids)} tokens exceeds sequence_length {sequence_length}.")
    padding = sequence_length - len(token_ids)
    return np.pad(token_ids, (0, padding), constant_values=pad_id), np.pad(segment_ids, (0, padding))
