"""Dynamic 80/10/10 masking for MLM in TensorFlow ops, for use inside `tf.data` (new masks every epoch).

Written here rather than reusing keras-hub's `MaskedLMMaskGenerator`: that layer selects with
tensorflow-text's `RandomItemSelector`, which draws unseeded shuffles (no reproducible runs), has no
whole-word or n-gram mode, and counts selected *items* against its cap, so with words as items it cannot keep
`max_predictions_per_seq` in tokens. One vectorised selection serves the three modes here:

- "token": every non-special token is a unit;
- "whole_word": a word (a piece that starts a word and its continuation pieces) is a unit;
- "ngram" (ALBERT): runs of n whole words are units, n ≤ `max_ngram` drawn with p ∝ 1/n.

Per sequence the budget is `min(max_predictions, max(1, round(rate · eligible tokens)))` tokens, and units are
taken in random order while they fit (two passes), as in BERT's and ALBERT's reference code. Each chosen token
becomes [MASK] with probability 0.8, a uniformly random ordinary (non-special) id with 0.1, and stays itself
with 0.1.
"""

import numpy as np

STRATEGIES = ("token", "whole_word", "ngram")


def word_start_table(vocabulary, sentencepiece=False):
    """A bool per id: True where the piece starts a word. WordPiece: every piece but "##" continuations;
    SentencePiece: pieces with the leading "▁" and the specials ("<unk>", "[CLS]", ...).

    Args:
        vocabulary: the tokens in id order (`tokenizer.get_vocabulary()`).
        sentencepiece: read SentencePiece's "▁" convention instead of WordPiece's "##".

    Example:
    >>> word_start_table(["[CLS]", "play", "##ing"]).tolist()
    [True, True, False]
    """
    if sentencepiece:
        return np.asarray([p.startswith("▁") or p.startswith("<") or p.startswith("[") for p in vocabulary])
    return np.asarray([not p.startswith("##") for p in vocabulary])


class MaskedLMMasker:
    """Choose MLM targets for a batch of packed sequences.

    Call with `token_ids` (batch, T) int32 and a `seed` (2,) int tensor (stateless random ops: the same seed
    gives the same masks; `tf.data.Dataset.random(..., rerandomize_each_iteration=True)` gives a new seed
    every epoch). Returns `{"token_ids", "mask_positions", "mask_ids", "mask_weights"}`; positions are sorted
    and padded with 0 (weight 0) up to `max_predictions`.

    Args:
        vocabulary_size: the number of token ids (random replacements are drawn from the non-special ones).
        mask_token_id: the id of [MASK].
        special_token_ids: ids never chosen ([CLS], [SEP], padding); [MASK] is added.
        max_predictions: the most targets per sequence (the width of the outputs).
        mask_rate: the share of eligible tokens chosen (at least one per sequence).
        mask_token_rate: the share of chosen tokens replaced by [MASK].
        random_token_rate: the share replaced by a random token; the rest stay themselves.
        strategy: "token", "whole_word" or "ngram" (see the module docstring).
        word_starts: for "whole_word" and "ngram": a bool per id, True where a piece starts a word
            (`word_start_table`).
        max_ngram: for "ngram": the longest run of words masked together.

    Example:
    >>> import tensorflow as tf
    >>> masker = MaskedLMMasker(vocabulary_size=50, mask_token_id=4, special_token_ids=[0, 2, 3],
    ...                         max_predictions=3)
    >>> out = masker(tf.constant([[2, 10, 11, 12, 13, 14, 15, 3, 0, 0]]), tf.constant([1, 2]))
    >>> out["mask_positions"].shape.as_list(), float(tf.reduce_sum(out["mask_weights"]))
    ([1, 3], 1.0)
    """

    def __init__(self, vocabulary_size, mask_token_id, special_token_ids, max_predictions, mask_rate=0.15,
                 mask_token_rate=0.8, random_token_rate=0.1, strategy="token", word_starts=None, max_ngram=3):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}.")
        if strategy != "token" and (word_starts is None or len(word_starts) != vocabulary_size):
            raise ValueError(f"strategy {strategy!r} needs `word_starts`: one bool per vocabulary id "
                             f"({vocabulary_size}); see word_start_table().")
        if not 0 < mask_rate < 1 or mask_token_rate + random_token_rate > 1:
            raise ValueError(f"Rates out of range: mask_rate={mask_rate}, mask_token_rate={mask_token_rate}, "
                             f"random_token_rate={random_token_rate}.")
        if max_predictions < 1:
            raise ValueError(f"max_predictions must be ≥ 1; got {max_predictions}.")
        self.vocabulary_size = vocabulary_size
        self.mask_token_id = mask_token_id
        self.special_token_ids = sorted(set(int(i) for i in special_token_ids) | {int(mask_token_id)})
        self.max_predictions = max_predictions
        self.mask_rate = mask_rate
        self.mask_token_rate = mask_token_rate
        self.random_token_rate = random_token_rate
        self.strategy = strategy
        self.word_starts = None if word_starts is None else np.asarray(word_starts, bool)
        self.max_ngram = max_ngram

    def _units(self, token_ids, eligible, seed):
        """Index of the unit (token, word or n-gram of words) of each eligible token; T for the others."""
        import tensorflow as tf

        length = tf.shape(token_ids)[1]
        if self.strategy == "token":
            starts = eligible
        else:
            starts_word = tf.gather(tf.constant(self.word_starts), token_ids)
            previous_eligible = tf.pad(eligible[:, :-1], [[0, 0], [1, 0]])
            starts = eligible & (starts_word | ~previous_eligible)
        unit = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1
        if self.strategy == "ngram":
            unit = self._group_ngrams(unit, seed)
        return tf.where(eligible, tf.maximum(unit, 0), length)

    def _group_ngrams(self, word_index, seed):
        """Cut the word sequence into consecutive n-grams with lengths drawn i.i.d., p(n) ∝ 1/n."""
        import tensorflow as tf

        batch, length = tf.shape(word_index)[0], tf.shape(word_index)[1]
        logits = tf.math.log(1.0 / tf.range(1, self.max_ngram + 1, dtype=tf.float32))
        draws = tf.random.stateless_categorical(tf.tile(logits[None], [batch, 1]), length, seed)
        ngram_ends = tf.cumsum(tf.cast(draws, tf.int32) + 1, axis=1)  # exclusive end word of each n-gram
        return tf.searchsorted(ngram_ends, word_index, side="right", out_type=tf.int32)

    def _choose(self, token_ids, eligible, budget, seeds):
        """Which tokens become targets: whole units in random order while they fit the budget (two passes)."""
        import tensorflow as tf

        batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
        unit = self._units(token_ids, eligible, seeds[0])  # (batch, T), T = "no unit"
        slots = length + 1
        flat_unit = unit + tf.range(batch)[:, None] * slots
        size = tf.reshape(tf.math.unsorted_segment_sum(
            tf.cast(eligible, tf.int32), flat_unit, batch * slots), [batch, slots])
        priority = tf.where(size > 0, tf.random.stateless_uniform([batch, slots], seeds[1]), 2.0)
        order = tf.argsort(priority, axis=1)
        size_in_order = tf.gather(size, order, batch_dims=1)
        taken = (tf.cumsum(size_in_order, axis=1) <= budget[:, None]) & (size_in_order > 0)
        # Second pass: units skipped for being too long may leave room that smaller ones fill.
        room = budget - tf.reduce_sum(tf.where(taken, size_in_order, 0), axis=1)
        fits = ~taken & (size_in_order > 0) & (size_in_order <= room[:, None])
        taken |= fits & (tf.cumsum(tf.where(fits, size_in_order, 0), axis=1) <= room[:, None])
        taken_unit = tf.gather(taken, tf.argsort(order, axis=1), batch_dims=1)
        return tf.gather(taken_unit, unit, batch_dims=1) & eligible

    def __call__(self, token_ids, seed):
        import tensorflow as tf

        token_ids = tf.convert_to_tensor(token_ids, tf.int32)
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
        length = tf.shape(token_ids)[1]
        eligible = tf.reduce_all(token_ids[..., None] != tf.constant(self.special_token_ids, tf.int32), axis=-1)
        eligible_count = tf.reduce_sum(tf.cast(eligible, tf.int32), axis=1)
        budget = tf.minimum(self.max_predictions, tf.maximum(
            1, tf.cast(tf.round(tf.cast(eligible_count, tf.float32) * self.mask_rate), tf.int32)))
        budget = tf.where(eligible_count > 0, budget, 0)
        chosen = self._choose(token_ids, eligible, budget, seeds)

        draw = tf.random.stateless_uniform(tf.shape(token_ids), seeds[2])
        # Random replacements are drawn from the ordinary pieces: never [PAD], [CLS], [SEP] or [MASK].
        ordinary = tf.constant(np.setdiff1d(np.arange(self.vocabulary_size), self.special_token_ids), tf.int32)
        random_ids = tf.gather(ordinary, tf.random.stateless_uniform(
            tf.shape(token_ids), seeds[3], 0, ordinary.shape[0], tf.int32))
        masked = tf.where(chosen & (draw < self.mask_token_rate), self.mask_token_id, token_ids)
        masked = tf.where(chosen & (draw >= self.mask_token_rate)
                          & (draw < self.mask_token_rate + self.random_token_rate), random_ids, masked)

        # Targets in position order, padded with position 0 (weight 0) up to max_predictions.
        positions = tf.range(length)[None]
        by_position = tf.argsort(tf.where(chosen, positions, positions + length), axis=1, stable=True)
        width = tf.maximum(length, self.max_predictions)  # sequences shorter than max_predictions
        by_position = tf.pad(by_position, [[0, 0], [0, width - length]])[:, :self.max_predictions]
        is_target = (tf.range(self.max_predictions)[None] < length) & tf.gather(chosen, by_position, batch_dims=1)
        mask_positions = tf.where(is_target, by_position, 0)
        mask_ids = tf.where(is_target, tf.gather(token_ids, mask_positions, batch_dims=1), 0)
        return {
            "token_ids": masked,
            "mask_positions": mask_positions,
            "mask_ids": mask_ids,
            "mask_weights": tf.cast(is_target, tf.float32),
        }
