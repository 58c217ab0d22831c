"""Raw strings → task-model inputs, each batch padded only to its longest member (length bucketing).

`TextPreprocessor` tokenizes with the model's keras-hub tokenizer and packs one or two segments with keras-hub's
`MultiSegmentPacker` (`[CLS] A [SEP] (B [SEP])`, truncated round-robin or waterfall). `BucketedBatches` is a
`keras.utils.PyDataset` that feeds `fit` / `evaluate` / `predict` on every backend: it groups examples of
similar length and trims each batch to its longest member, rounded up to a multiple of `round_to` so JAX and
XLA compile a handful of shapes rather than one per length.
"""

import math
import re

import keras
import numpy as np
from keras import ops

from kzoo.data.tokenizers import load_hf_tokenizer, ragged_to_lists, save_tokenizer, special_ids
from kzoo.file_checks import describe


_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_surrogates(text):
    """`text` with each lone surrogate (a half of a UTF-16 pair, e.g. from JSON's "\\ud83d") as U+FFFD.

    Args:
        text: a string.

    Example:
    >>> replace_surrogates("ok \\ud83d") == "ok \\ufffd"
    True
    """
    return _SURROGATE.sub("\ufffd", text)




def check_text(text, name, surrogate_hint="replace it, e.g. with kzoo.data.task_inputs.replace_surrogates"):
    """`text` as a str (bytes are decoded as UTF-8), or a ValueError that starts with `name` ("texts[3]") and says
    why it is no text: not a string, bytes that are not UTF-8, a lone surrogate (not encodable as UTF-8), or
    nothing but whitespace. Other characters (control, format, any script) are the tokenizer's to handle."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{name} is bytes that are not UTF-8 ({error.reason} at byte {error.start}); decode "
                             "them to str first.") from error
    if not isinstance(text, str):
        raise ValueError(f"{name} is {describe(text)}, not a string.")
    surrogate = _SURROGATE.search(text)
    if surrogate:
        raise ValueError(f"{name} holds a lone surrogate (U+{ord(surrogate.group()):04X} at character "
                         f"{surrogate.start()}), which is not text and has no UTF-8 encoding; {surrogate_hint}.")
    if not text.strip():
        raise ValueError(f"{name} is empty text; remove it or give it words.")
    return text


def as_text_list(texts, name="texts"):
    """A list of non-empty strings (bytes decoded as UTF-8), or a ValueError naming the first bad entry
    (see `check_text`)."""
    if isinstance(texts, (str, bytes)) or texts is None:
        raise ValueError(f"{name} must be a list of strings, not {describe(texts)}.")
    texts = list(texts)
    if not texts:
        raise ValueError(f"{name} is empty.")
    return [check_text(text, f"{name}[{index}]") for index, text in enumerate(texts)]


class TextPreprocessor:
    """Tokenizer + packer: strings (one or two segments) → `{"token_ids", "segment_ids", "padding_mask"}`.

    Args:
        tokenizer: a keras-hub WordPiece or SentencePiece tokenizer (e.g. `load_hf_tokenizer(dir)`).
        sequence_length: the most tokens per example, specials included; longer text is truncated.
        truncate: "round_robin" (trim the longer segment first) or "waterfall" (trim the last segment).

    Example:
    >>> from kzoo.data import BertWordPieceTokenizer
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "i", "love", "it"])
    >>> preprocessor = TextPreprocessor(tokenizer, sequence_length=64)
    >>> inputs = preprocessor(["I love it", "meh"])      # padded to the longer of the two, not to 64
    >>> inputs["token_ids"].tolist()
    [[2, 4, 5, 6, 3], [2, 1, 3, 0, 0]]
    >>> preprocessor(["I love it"], ["it"])["segment_ids"].tolist()   # a pair: [CLS] A [SEP] B [SEP]
    [[0, 0, 0, 0, 0, 1, 1]]
    """

    def __init__(self, tokenizer, sequence_length=128, truncate="round_robin"):
        import keras_hub

        if int(sequence_length) < 3:
            raise ValueError(f"sequence_length must leave room for [CLS] text [SEP]; got {sequence_length}.")
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        self.truncate = truncate
        self.special = special_ids(tokenizer, require_mask=False)
        self.packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=self.sequence_length, start_value=self.special.cls, end_value=self.special.sep,
            pad_value=self.special.pad, truncate=truncate)

    def same_vocabulary(self, other):
        """True when `other` (a TextPreprocessor) maps every token to the same id: models fed by one can
        read the other's ids."""
        return self.tokenizer.get_vocabulary() == other.tokenizer.get_vocabulary()

    def tokenize(self, texts):
        """Token ids (without specials) of each string: a list of int32 arrays."""
        return ragged_to_lists(self.tokenizer(texts))

    def pack(self, segments):
        """Pack lists of token-id arrays (one list per segment) into (token_ids, segment_ids) arrays."""
        import tensorflow as tf

        ragged = tuple(tf.RaggedTensor.from_row_lengths(
            np.concatenate(rows).astype("int32") if rows else np.zeros((0,), "int32"), [len(r) for r in rows])
            for rows in segments)
        token_ids, segment_ids = self.packer(ragged if len(ragged) > 1 else ragged[0])
        token_ids = np.asarray(ops.convert_to_numpy(token_ids), "int32")
        segment_ids = np.asarray(ops.convert_to_numpy(segment_ids), "int32")
        return token_ids, segment_ids

    def encode(self, texts, pairs=None):
        """Full-length arrays for every example: `(inputs, lengths)`; batches trim them (see `BucketedBatches`)."""
        import tensorflow as tf

        segments = [as_text_list(texts)]
        if pairs is not None:
            pairs = as_text_list(pairs, "pairs")
            if len(pairs) != len(segments[0]):
                raise ValueError(f"texts and pairs differ in length: {len(segments[0])} vs {len(pairs)}.")
            segments.append(pairs)
        if self.__dict__.get("_traced", {}) is not None:
            try:
                token_ids, segment_ids = self._traced_encoder(len(segments))(
                    *[tf.constant(segment, dtype=tf.string) for segment in segments])
                return self._inputs(np.asarray(token_ids, "int32"), np.asarray(segment_ids, "int32"))
            except tf.errors.NotFoundError:
                # A SentencePiece model exported in a SavedModel no longer runs inside a new trace ("Resource
                # ... SentencepieceResource does not exist"); op by op it does.
                self._traced = None
        return self.encode_pieces([self.tokenize(segment) for segment in segments])

    def _traced_encoder(self, segments):
        """Tokenize and pack `segments` string batches in one traced TensorFlow function (one per segment count).
        Run op by op, the same work cost 1.1 ms for one tweet against 0.46 ms traced: the dispatch of each op,
        not the tokenizing, was the cost of a short batch."""
        traced = self.__dict__.setdefault("_traced", {})
        if segments not in traced:
            import tensorflow as tf

            def encode(*texts):
                pieces = tuple(self.tokenizer(text) for text in texts)
                return self.packer(pieces if len(pieces) > 1 else pieces[0])

            traced[segments] = tf.function(encode, input_signature=[tf.TensorSpec((None,), tf.string)] * segments)
        return traced[segments]

    def __getstate__(self):  # copies and pickles leave the traced functions behind
        return {key: value for key, value in self.__dict__.items() if key != "_traced"}

    def encode_pieces(self, segments):
        """`encode` for text already tokenized: one list of token-id arrays per segment."""
        return self._inputs(*self.pack(segments))

    def _inputs(self, token_ids, segment_ids):
        padding_mask = (token_ids != self.special.pad).astype("int32")
        inputs = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
        return inputs, padding_mask.sum(axis=1).astype("int32")

    def __call__(self, texts, pairs=None):
        """One batch, padded to its longest member."""
        inputs, lengths = self.encode(texts, pairs)
        return {key: value[:, :int(lengths.max())] for key, value in inputs.items()}

    # Saving: the tokenizer as files Hugging Face and kzoo both read, the settings in the task's preset.
    def get_config(self):
        return {"sequence_length": self.sequence_length, "truncate": self.truncate}

    def save_assets(self, directory):
        return save_tokenizer(self.tokenizer, directory)

    @classmethod
    def from_directory(cls, directory, **config):
        """The preprocessor of a preset or Hugging Face directory, or None when it holds no tokenizer."""
        tokenizer = load_hf_tokenizer(directory)
        return None if tokenizer is None else cls(tokenizer, **config)


def bucketed_order(lengths, batch_size, shuffle, rng, pool_batches=50):
    """Batches of example indices. Without `shuffle`: sorted by length (least padding, for inference). With:
    a random permutation cut into pools of `pool_batches` batches, each pool sorted by length and cut into
    batches, then the batches shuffled — random batches of similar lengths, new every epoch."""
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    permutation = rng.permutation(len(lengths))
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, len(permutation), pool):
        chunk = permutation[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class BucketedBatches(keras.utils.PyDataset):
    """Batches of encoded examples, each trimmed to its longest member (rounded up to `round_to`).

    A `keras.utils.PyDataset`: `fit`, `evaluate` and `predict` take it on every backend (on TensorFlow
    `as_tf_dataset()` with `epoch_callback()`, as task models do for raw text).

    Args:
        inputs: dict of (N, S) arrays from `TextPreprocessor.encode`; `lengths`: (N,) tokens per example.
        y, sample_weight: arrays (or dicts of arrays) with N rows, or None. Arrays listed in
            `per_token` (names "y" / "sample_weight") are (N, S) and trimmed like the inputs.
        batch_size: examples per batch (the last batch may be smaller).
        shuffle: new random similar-length batches every epoch (training); False keeps length order
            (`order` says which example each output row is, to restore the caller's order).
        seed, epoch: epoch e's batches are drawn from (seed, e) alone, so a run resumed at epoch e (start
            there with `epoch=e`) sees the batches the unbroken run saw.
        round_to: batch widths are rounded up to a multiple of this, so JAX and XLA compile few shapes.
        keys: the input keys to serve (e.g. the model's `input_keys`); None: all of `inputs`.
        multiple: every batch's rows a multiple of this (JAX's `keras.distribution` shards each batch evenly
            over its devices); `batch_size` must be one. N mod `multiple` examples, drawn at random (other ones
            each epoch with `shuffle`), sit out each pass, like the rows tf.data's `drop_remainder` skips.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`, ...).

    Example:
    >>> import numpy as np
    >>> inputs = {"token_ids": np.ones((3, 64), "int32"), "padding_mask": np.ones((3, 64), "int32")}
    >>> batches = BucketedBatches(inputs, lengths=np.array([5, 40, 7]), batch_size=2)
    >>> [batches[i][0]["token_ids"].shape for i in range(len(batches))], batches.order.tolist()
    ([(2, 16), (1, 48)], [0, 2, 1])
    """

    def __init__(self, inputs, lengths, y=None, sample_weight=None, batch_size=32, shuffle=False, seed=0,
                 round_to=16, per_token=(), keys=None, multiple=1, epoch=0, **kwargs):
        super().__init__(**kwargs)
        self.inputs = {k: v for k, v in inputs.items() if keys is None or k in keys}
        self.lengths = np.asarray(lengths)
        self.y, self.sample_weight = y, sample_weight
        self.batch_size, self.shuffle, self.round_to = int(batch_size), shuffle, int(round_to)
        self.per_token = set(per_token)
        self.full_length = next(iter(self.inputs.values())).shape[1]
        self.seed, self.epoch = seed, int(epoch)
        self.multiple = int(multiple)
        if len(self.lengths) < self.multiple:
            raise ValueError(f"{len(self.lengths)} examples cannot make one batch split over {self.multiple} "
                             "devices; give at least as many examples as devices.")
        if self.batch_size % self.multiple:
            raise ValueError(f"batch_size {self.batch_size} must divide evenly over {self.multiple} devices.")
        self.batches = self._order()

    def _order(self):
        """Batches of example indices; with `multiple`, all of them a multiple of it, the examples left over
        drawn at random (not the longest, which length-sorted batches would put last)."""
        rng = np.random.default_rng(None if self.seed is None else [self.seed, self.epoch])
        kept = np.arange(len(self.lengths))
        left_over = len(kept) % self.multiple
        if left_over:
            kept = np.sort(rng.choice(kept, len(kept) - left_over, replace=False))
        return [kept[b] for b in bucketed_order(self.lengths[kept], self.batch_size, self.shuffle, rng)]

    @property
    def order(self):
        return np.concatenate(self.batches)

    def __len__(self):
        return len(self.batches)

    def width(self, indices):
        longest = int(self.lengths[indices].max())
        return min(self.full_length, int(math.ceil(longest / self.round_to)) * self.round_to)

    @staticmethod
    def _take(value, indices, width=None):
        if value is None:
            return None
        if isinstance(value, dict):
            return {k: BucketedBatches._take(v, indices, width) for k, v in value.items()}
        rows = np.asarray(value)[indices]
        return rows[:, :width] if width is not None else rows

    def __getitem__(self, index):
        return self._batch(self.batches[index])

    def _batch(self, indices):
        width = self.width(indices)
        x = self._take(self.inputs, indices, width)
        y = self._take(self.y, indices, width if "y" in self.per_token else None)
        if self.sample_weight is None:
            return (x,) if y is None else (x, y)
        weights = self._take(self.sample_weight, indices, width if "sample_weight" in self.per_token else None)
        return x, y, weights

    def set_epoch(self, epoch):
        """Serve epoch `epoch`'s batches (drawn from (seed, epoch) alone)."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            if self.shuffle:
                self.batches = self._order()

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def epoch_callback(self):
        """A Keras callback that sets each epoch's batches as `fit` begins it: a `fit` on `as_tf_dataset()` needs
        it for new batches every epoch (and to resume at `initial_epoch` with the batches it had)."""
        batches = self

        class EpochBatches(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                batches.set_epoch(epoch)

        return EpochBatches()

    def as_tf_dataset(self):
        """The same batches as a `tf.data.Dataset` whose every dimension is unknown. Keras' own PyDataset adapter
        on TensorFlow fixes the shapes it sees in the first two batches, so a later, wider batch would fail.
        Each pass serves the batches of the current epoch: add `epoch_callback()` to `fit`'s callbacks. (The
        generator does not move on itself: whether it runs past its last batch depends on tf.data's threads.)"""
        import tensorflow as tf

        def spec(array):
            return tf.TensorSpec([None] * np.ndim(array), tf.as_dtype(np.asarray(array).dtype))

        def generate():
            batches = list(self.batches)  # this pass's order, whatever the callback sets meanwhile
            for indices in batches:
                yield self._batch(indices)

        signature = keras.tree.map_structure(spec, self[0])
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return dataset.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)


class PairedBatches(BucketedBatches):
    """`BucketedBatches` of text pairs for in-batch contrastive training: each batch holds `batch_size` pairs
    as 2 × `batch_size` rows, interleaved (anchor 0, positive 0, anchor 1, ...), so a loss reads the anchors at
    even rows and the positives at odd ones. Interleaved rather than stacked, a batch whose pairs are a
    multiple of the `tf.distribute` replicas (`multiple`, as `TextEmbedder` sets it) hands each replica whole
    pairs (each replica's in-batch negatives are its own pairs, as sentence-transformers'
    MultipleNegativesRankingLoss without gathering); a JAX `keras.distribution` computes the loss over the whole
    batch. A batch of one pair (the last of a pool) joins the batch before it: alone it has no negative.

    Args:
        anchors, positives: dicts of (N, S) arrays from `TextPreprocessor.encode`, pair i in row i of both.
        anchor_lengths, positive_lengths: (N,) tokens per text; a pair's batch is as wide as its longer text.
        **kwargs: `BucketedBatches` arguments (`batch_size` counts pairs).

    Example:
    >>> import numpy as np
    >>> anchors = {"token_ids": np.full((3, 32), 1, "int32")}; positives = {"token_ids": np.full((3, 32), 2, "int32")}
    >>> batches = PairedBatches(anchors, np.array([3, 20, 4]), positives, np.array([5, 6, 7]), batch_size=2)
    >>> [len(batch) for batch in batches.batches]   # the third pair, alone in a batch, joins the first two
    [3]
    >>> x, y = batches[0]
    >>> x["token_ids"][:, 0].tolist(), x["token_ids"].shape, y.shape
    ([1, 2, 1, 2, 1, 2], (6, 32), (6,))
    """

    def __init__(self, anchors, anchor_lengths, positives, positive_lengths, **kwargs):
        lengths = np.maximum(anchor_lengths, positive_lengths)
        stacked = {key: np.stack([anchors[key], positives[key]], axis=1) for key in anchors}
        super().__init__(stacked, lengths, **kwargs)
        self.full_length = next(iter(self.inputs.values())).shape[-1]

    def _order(self):
        """`BucketedBatches`' batches, a batch of one pair joined to the one before it: a pair alone has no
        negative, and its loss would be 0."""
        batches = []
        for batch in super()._order():
            if len(batch) < 2 and batches:
                batches[-1] = np.concatenate([batches[-1], batch])
            else:
                batches.append(batch)
        if len(batches) > 1 and len(batches[0]) < 2:
            batches[1] = np.concatenate([batches.pop(0), batches[0]])
        return batches

    def _batch(self, indices):
        width = self.width(indices)
        x = {key: value[indices, :, :width].reshape(-1, width) for key, value in self.inputs.items()}
        # Keras' fit needs targets; the contrastive loss reads only the rows' order (see the class docstring).
        return x, np.zeros(2 * len(indices), "int32")
