"""Corpus → pretraining batches: a `tf.data.Dataset` that feeds `Pretrainer.fit` on TensorFlow and JAX.

documents (streamed) → tokenized 256 documents per tokenizer call → NSP / SOP / MLM instances (`PairBuilder`,
new pairs every pass over the corpus) → packed and padded → shuffled, batched → masked in `tf.data`
(`MaskedLMMasker`, new masks every epoch) → `(x, y, mask_weights)`.
"""

import numpy as np

from kzoo.data.corpus import check_corpus, iter_documents
from kzoo.data.masking import MaskedLMMasker, word_start_table
from kzoo.data.pairs import PairBuilder, pack_instance
from kzoo.data.tokenizers import ragged_to_lists, special_ids

# The sentence-pair task of each architecture's pretrainer (docs/design.md §1): BERT NSP, ALBERT SOP, DistilBERT none.
ARCH_TASKS = {"bert": "nsp", "albert": "sop", "distil_bert": "mlm"}


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
    """The pretraining `tf.data.Dataset` of a corpus: `(x, y, mask_weights)` batches.

    x = {"token_ids", "segment_ids" (when `segments`), "padding_mask", "mask_positions"},
    y = {"mlm": mask_ids, task: labels} (no pair entry for task "mlm").
    `holdout_every=k` holds out every k-th document: `split="train"` skips them, `split="eval"` reads only them.
    With `repeat=True` (training) the data repeats forever, each pass over the corpus with new pairs and each
    batch with new masks, all derived from `seed` (and TF's global seed, which tf.data pairs with it: call
    `keras.utils.set_random_seed` first for the same batches in every process); with `repeat=False` (evaluation)
    every pass yields the same batches.

    Example:
        data = pretraining_dataset("corpus/", tokenizer, "nsp", sequence_length=128, batch_size=32)
        BertPretrainer(backbone).fit(data, steps_per_epoch=100)
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
