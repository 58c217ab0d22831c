"""`fit`, `evaluate` and `predict` on raw strings for task models that carry a `TextPreprocessor`.

A task turns its raw examples into full-length arrays once (`encode_examples`); `BucketedBatches` then serves
batches padded only to their longest member. Token ids still go straight to Keras, untouched.
"""

import dataclasses
import logging
import warnings

import numpy as np

from kzoo.data.task_inputs import BucketedBatches


class _OneTracePerWidth(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning: batches padded to their longest member come in
    a few widths, and Keras' predict function is traced once per width, by design (docs/design.md §10)."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def _expect_one_trace_per_width():
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _OneTracePerWidth) for f in logger.filters):
        logger.addFilter(_OneTracePerWidth())


@dataclasses.dataclass
class EncodedExamples:
    inputs: dict  # (N, S) arrays
    lengths: np.ndarray  # (N,)
    y: object = None
    sample_weight: object = None
    per_token: tuple = ()  # which of "y" / "sample_weight" are (N, S) and trimmed with the inputs


def looks_like_text(x):
    """True for raw text: a list/tuple/array of strings, or a pair (list of strings, list of strings)."""
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "USO" and x.size > 0 and isinstance(x.flat[0], (str, bytes))
    if isinstance(x, (list, tuple)) and x:
        first = x[0]
        if isinstance(first, (str, bytes)):
            return True
        return isinstance(first, (list, tuple, np.ndarray)) and looks_like_text(first)
    return False


def _meant_as_text(x):
    """A string, or a list/tuple that is empty or holds a string anywhere: text, even if not well-formed."""
    if isinstance(x, (str, bytes)):
        return True
    return isinstance(x, (list, tuple)) and (not x or any(isinstance(item, (str, bytes)) for item in x))


class StringInputsMixin:
    """Mixed into `Task`: raw-text `fit`/`evaluate`/`predict` when `self.preprocessor` is set."""

    preprocessor = None
    round_to = 16

    def encode_examples(self, x, y=None, sample_weight=None):
        raise NotImplementedError(f"{type(self).__name__} takes token ids only (it has no raw-text encoding).")

    def _takes_text(self, x):
        if self.preprocessor is not None and _meant_as_text(x):
            return True  # the encoding names what is wrong: a plain string, an empty list, texts[3] is None, ...
        if not looks_like_text(x):
            return False
        if self.preprocessor is None:
            raise ValueError(f"{type(self).__name__} got raw text but has no preprocessor; build it with "
                             "`preprocessor=TextPreprocessor(tokenizer)` or load it `from_preset` of a folder "
                             "that holds a tokenizer.")
        return True

    def text_batches(self, x, y=None, sample_weight=None, batch_size=32, shuffle=False, seed=0, multiple=None,
                     epoch=0):
        """A `BucketedBatches` dataset of raw examples, for `fit`/`evaluate`/`predict` or your own loop. Under a
        JAX `keras.distribution` every batch has a multiple of its batch shards (`multiple=None`), as JAX needs:
        `fit` and `evaluate` then leave out N mod devices examples, drawn at random (see `BucketedBatches`)."""
        from kzoo.replicas import batch_shards

        encoded = self.encode_examples(x, y, sample_weight)
        return BucketedBatches(encoded.inputs, encoded.lengths, encoded.y, encoded.sample_weight,
                               batch_size=batch_size, shuffle=shuffle, seed=seed, round_to=self.round_to,
                               per_token=encoded.per_token, keys=self.input_keys,
                               multiple=batch_shards() if multiple is None else multiple, epoch=epoch)

    def _as_dataset(self, data, batch_size, shuffle):
        x, y, sample_weight = (tuple(data) + (None, None))[:3]
        return self._for_keras(self.text_batches(x, y, sample_weight, batch_size=batch_size or 32, shuffle=shuffle))

    @staticmethod
    def _for_keras(batches):
        """What `fit`/`evaluate` get: on TensorFlow a tf.data pipeline with free batch widths (see
        `BucketedBatches.as_tf_dataset`); elsewhere the PyDataset itself."""
        import keras

        return batches.as_tf_dataset() if keras.backend.backend() == "tensorflow" else batches

    def fit(self, x=None, y=None, batch_size=None, epochs=1, validation_data=None, shuffle=True,
            sample_weight=None, **kwargs):
        if self._takes_text(x):
            from kzoo.models.batch_checks import with_callback

            batches = self.text_batches(x, y, sample_weight, batch_size=batch_size or 32, shuffle=shuffle,
                                        seed=kwargs.pop("seed", 0), epoch=kwargs.get("initial_epoch", 0))
            kwargs["callbacks"] = with_callback(kwargs.get("callbacks"), batches.epoch_callback())
            x = self._for_keras(batches)
            y = sample_weight = batch_size = None
            shuffle = False  # the batches shuffle themselves (similar lengths together), new every epoch
        if isinstance(validation_data, (list, tuple)) and validation_data and self._takes_text(validation_data[0]):
            validation_data = self._as_dataset(validation_data, batch_size or 32, shuffle=False)
        with warnings.catch_warnings():
            # A task that reads no pooled output (tags, spans, embeddings) leaves the pooler without gradients,
            # which Keras warns about at the first step: expected, so not shown.
            warnings.filterwarnings("ignore", message="Gradients do not exist for variables .*pooler")
            return super().fit(x, y, batch_size=batch_size, epochs=epochs, validation_data=validation_data,
                               shuffle=shuffle, sample_weight=sample_weight, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        if self._takes_text(x):
            x = self._for_keras(self.text_batches(x, y, sample_weight, batch_size=batch_size or 32))
            y = sample_weight = batch_size = None
        return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def predict(self, x, batch_size=None, verbose="auto", **kwargs):
        """Raw text → outputs in the caller's order (per-token outputs padded to the longest example)."""
        if not self._takes_text(x):
            return super().predict(x, batch_size=batch_size, verbose=verbose, **kwargs)
        batches = self.text_batches(x, batch_size=batch_size or 32, multiple=1)
        return self._predict_batches(batches)

    def _predict_encoded(self, inputs, lengths, batch_size):
        """Outputs for already-encoded examples, in their order, from length-sorted batches."""
        return self._predict_batches(BucketedBatches(inputs, lengths, batch_size=batch_size, round_to=self.round_to,
                                                     keys=self.input_keys))

    def _predict_batches(self, batches):
        import keras

        _expect_one_trace_per_width()
        pieces = [keras.tree.map_structure(keras.ops.convert_to_numpy, self.predict_on_batch(batches[index][0]))
                  for index in range(len(batches))]
        width = max(batches.width(b) for b in batches.batches)
        inverse = np.argsort(batches.order, kind="stable")

        def gather(*arrays):
            if arrays[0].ndim >= 2 and (self._per_token_outputs or len({a.shape[1] for a in arrays}) > 1):
                arrays = [np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2),
                                 constant_values=self._output_pad_value) for a in arrays]
            return np.concatenate(arrays)[inverse]

        return keras.tree.map_structure(gather, *pieces)

    def predict_on_batch(self, x):
        """Keras' `predict_on_batch`, right under `tf.distribute` too: there Keras hands every replica the whole
        batch and returns each replica's copy of the outputs (8 rows in, 16 out on 2 devices), so the batch goes
        through `predict`, which splits it over the replicas. (On JAX Keras does not shard this call's input.)"""
        import keras

        if getattr(getattr(self, "distribute_strategy", None), "num_replicas_in_sync", 1) > 1:
            return self.predict(x, batch_size=len(keras.tree.flatten(x)[0]), verbose=0)
        return super().predict_on_batch(x)

    _per_token_outputs = False  # True for (batch, seq, ...) outputs: padded to the widest batch
    _output_pad_value = 0.0
