"""Corpus → pretraining batches: a `tf.data.Dataset` that feeds `Pretrainer.fit` on TensorFlow and JAX.

documents (streamed) → tokenized 256 documents per tokenizer call → NSP / SOP / MLM instances (`PairBuilder`,
new pairs every pass over the corpus) → packed and padded → shuffled, batched → masked in `tf.data`
(`MaskedLMMasker`, new masks every epoch) → `(x, y, mask_weights)`.
"""

import numpy as np

from kzoo.architectures import ARCHITECTURES
from kzoo.data.corpus import check_corpus, iter_documents
from kzoo.data.masking import MaskedLMMasker, word_start_table
from kzoo.data.pairs import PairBuilder, pack_instance
from kzoo.data.tokenizers import ragged_to_lists, special_ids

# The sentence-pair task of each architecture's pretrainer (docs/design.md §1): BERT NSP, ALBERT SOP, DistilBERT none.
ARCH_TASKS = {name: arch.pretraining_task for name, arch in ARCHITECTURES.items()}


def tokenize_documents(documents, tokenizer, chunk_size=256):
    """Yield each document as a list of int32 arrays, one per sentence; one tokenizer call per chunk of
    `chunk_size` documents keeps the per-call overhead small."""

    def flush(chunk):
        rows = ragged_to_lists(tokenizer([sentence for document in chunk for sentence in document]))
        start = 0
        for document in chunk:
            yield rows[start:start + len(document)]
            start += len(document)

    chunk = []
    for document in documents:
        chunk.append(document)
        if len(chunk) == chunk_size:
            yield from flush(chunk)
            chunk = []
    if chunk:
        yield from flush(chunk)


def default_max_predictions(sequence_length, mask_rate=0.15):
    """BERT's max_predictions_per_seq: 20 at 128, 76 at 512 (round(rate · length) + 1)."""
    return int(round(sequence_length * mask_rate)) + 1


def pretraining_dataset(corpus, tokenizer, task, sequence_length=128, batch_size=32, seed=0, masking="token",
                        mask_rate=0.15, max_predictions=None, short_seq_prob=0.1, holdout_every=0,
                        split="train", repeat=True, shuffle_buffer=2000, document_pool=1000, segments=True):
    """The pretraining `tf.data.Dataset` of a corpus: `(x, y, mask_weights)` batches, for `Pretrainer.fit`.

    x = {"token_ids", "segment_ids" (when `segments`), "padding_mask", "mask_positions"},
    y = {"mlm": mask_ids, task: labels} (no pair entry for task "mlm").
    With `repeat=True` (training) the data repeats forever, each pass over the corpus with new pairs and each
    batch with new masks, all derived from `seed` (and TF's global seed, which tf.data pairs with it: call
    `keras.utils.set_random_seed` first for the same batches in every process); with `repeat=False` (evaluation)
    every pass yields the same batches. The corpus is read through once first (`check_corpus`), so bad bytes or
    too little text fail here rather than inside `fit`.

    Args:
        corpus: a folder of `.txt` files, one file, or a list of them (see `iter_documents`).
        tokenizer: a keras-hub WordPiece or SentencePiece tokenizer with [CLS], [SEP], padding and [MASK].
        task: "nsp" (BERT), "sop" (ALBERT) or "mlm" (DistilBERT: single segments, no pair labels).
        sequence_length: the length of every sequence (≥ 8), specials included.
        batch_size: sequences per batch.
        seed: the seed of the pairs, shuffling and masks.
        masking: "token", "whole_word" or "ngram" (`MaskedLMMasker`).
        mask_rate: the share of tokens predicted.
        max_predictions: the most targets per sequence; None: BERT's round(`mask_rate` · length) + 1.
        short_seq_prob: probability of a shorter sequence (`PairBuilder`).
        holdout_every: k > 0 holds out every k-th document: `split="train"` skips them, `split="eval"` reads
            only them.
        split: "train", "eval" or "all".
        repeat: repeat forever with new pairs and masks each pass, shuffled (training); False: one pass, the
            same every time, unshuffled, the last batch kept (evaluation).
        shuffle_buffer: the shuffle buffer, in sequences.
        document_pool: `PairBuilder`'s document pool.
        segments: include `segment_ids` in x (False for DistilBERT).

    Example:
    >>> import os, tempfile
    >>> from kzoo.data import BertWordPieceTokenizer
    >>> corpus = tempfile.mkdtemp()
    >>> with open(os.path.join(corpus, "a.txt"), "w") as f:
    ...     _ = f.write("The cat sat. The dog ran.\\n\\nA bird sang. The sun set.\\n")
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=[
    ...     "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "the", "cat", "sat", "dog", "ran", "a", "bird"])
    >>> data = pretraining_dataset(corpus, tokenizer, "nsp", sequence_length=16, batch_size=2)
    >>> x, y, mask_weights = next(iter(data))
    >>> {key: tuple(value.shape) for key, value in sorted(x.items())}
    {'mask_positions': (2, 3), 'padding_mask': (2, 16), 'segment_ids': (2, 16), 'token_ids': (2, 16)}
    >>> {key: tuple(value.shape) for key, value in y.items()}, tuple(mask_weights.shape)
    ({'mlm': (2, 3), 'nsp': (2,)}, (2, 3))
    """
    import tensorflow as tf

    if task not in ("nsp", "sop", "mlm"):
        raise ValueError(f"task must be 'nsp', 'sop' or 'mlm'; got {task!r}.")
    if sequence_length < 8:
        raise ValueError(f"sequence_length {sequence_length} is too short for pretraining (need ≥ 8).")
    check_corpus(corpus, task, holdout_every)  # here, not as an error inside tf.data during fit
    ids = special_ids(tokenizer)
    vocabulary = tokenizer.get_vocabulary()
    max_predictions = max_predictions or default_max_predictions(sequence_length, mask_rate)
    is_sentencepiece = not any(piece.startswith("##") for piece in vocabulary)
    masker = MaskedLMMasker(
        len(vocabulary), ids.mask, [ids.cls, ids.sep, ids.pad], max_predictions, mask_rate=mask_rate,
        strategy=masking, word_starts=word_start_table(vocabulary, sentencepiece=is_sentencepiece))
    max_tokens = sequence_length - (2 if task == "mlm" else 3)
    passes = iter(range(1 << 62))  # each pass over the corpus draws new pairs, reproducibly

    def instances():
        pass_seed = seed if not repeat else seed * 1_000_003 + next(passes)
        builder = PairBuilder(task, max_tokens, short_seq_prob=short_seq_prob, seed=pass_seed,
                              document_pool=document_pool)
        documents = tokenize_documents(iter_documents(corpus, holdout_every, split), tokenizer)
        for instance in builder(documents):
            token_ids, segment_ids = pack_instance(instance, ids.cls, ids.sep, ids.pad, sequence_length)
            yield token_ids, segment_ids, np.int32(instance.label or 0)

    signature = (tf.TensorSpec((sequence_length,), tf.int32), tf.TensorSpec((sequence_length,), tf.int32),
                 tf.TensorSpec((), tf.int32))
    data = tf.data.Dataset.from_generator(instances, output_signature=signature)
    if repeat:
        data = data.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    data = data.batch(batch_size, drop_remainder=repeat)
    mask_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=repeat).batch(2)
    data = tf.data.Dataset.zip(data, mask_seeds)

    def to_model_inputs(batch, mask_seed):
        token_ids, segment_ids, labels = batch
        masked = masker(token_ids, mask_seed)
        x = {"token_ids": masked["token_ids"], "padding_mask": tf.cast(token_ids != ids.pad, tf.int32),
             "mask_positions": masked["mask_positions"]}
        if segments:
            x["segment_ids"] = segment_ids
        y = {"mlm": masked["mask_ids"]}
        if task != "mlm":
            y[task] = labels
        return x, y, masked["mask_weights"]

    return data.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
