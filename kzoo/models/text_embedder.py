"""Sentence embeddings on any backbone: pooled token states (L2-normalised), trained on pairs of texts with
in-batch negatives (sentence-transformers' MultipleNegativesRankingLoss)."""

import keras
import numpy as np
from keras import ops

from kzoo.data.task_inputs import PairedBatches, as_text_list
from kzoo.models.pooling import POOLING_MODES, l2_normalize, pool
from kzoo.models.string_inputs import EncodedExamples, looks_like_text
from kzoo.models.task import Task


@keras.saving.register_keras_serializable(package="kzoo")
class MultipleNegativesRankingLoss(keras.losses.Loss):
    """sentence-transformers' MultipleNegativesRankingLoss: for each anchor, cross-entropy over `scale` × the
    cosine similarity to every positive of the batch, its own positive the right class (the other pairs'
    positives are its negatives). `y_pred` is the embeddings of interleaved pairs (anchor 0, positive 0,
    anchor 1, ...), as `PairedBatches` serves them; `y_true` is not read.

    Args:
        scale: the similarities' multiplier (sentence-transformers' default 20: a temperature of 0.05).
        name: the loss's name.

    Example:
    >>> import numpy as np
    >>> pairs = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])  # two pairs, each close together
    >>> float(MultipleNegativesRankingLoss()(np.zeros(4), pairs)) < 1e-6
    True
    """

    def __init__(self, scale=20.0, name="multiple_negatives_ranking_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = float(scale)

    def call(self, y_true, y_pred):
        rows = y_pred.shape[0]
        if rows is not None and rows % 2:
            raise ValueError(f"MultipleNegativesRankingLoss takes interleaved pairs (anchor, positive, ...): an even "
                             f"number of rows; got {rows}.")
        pairs = ops.reshape(ops.cast(y_pred, "float32"), (-1, 2, ops.shape(y_pred)[-1]))
        anchors, positives = l2_normalize(pairs[:, 0]), l2_normalize(pairs[:, 1])
        scores = self.scale * ops.matmul(anchors, ops.transpose(positives))
        return keras.losses.sparse_categorical_crossentropy(ops.arange(ops.shape(scores)[0]), scores,
                                                            from_logits=True)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _is_pair(x):
    return isinstance(x, tuple) and len(x) == 2 and looks_like_text(x[0]) and looks_like_text(x[1])


@keras.saving.register_keras_serializable(package="kzoo")
class TextEmbedder(Task):
    """Sentence embeddings: the backbone's token states pooled (mean, [CLS], max or mean over √length, padding
    left out) and L2-normalised, as sentence-transformers models and keras-hub's `TextEmbedder`. Outputs
    (batch, hidden) float32.

    `from_preset` of a sentence-transformers folder (e.g. all-MiniLM-L6-v2's) takes its pooling, normalisation
    and sequence length from the folder (`modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`).
    `encode(texts)` gives the embeddings in the caller's order (batches of similar lengths, as the classifier
    predicts), `similarity(a, b)` their cosine similarities. `fit((anchors, positives))` (or
    `fit(anchors, positives)`) trains on pairs of texts that belong together with `compile()`'s default loss,
    `MultipleNegativesRankingLoss`: each anchor against every positive of its batch.

    Args:
        backbone: a kzoo backbone.
        pooling_mode: "mean", "cls", "max" or "mean_sqrt_len" (`kzoo.models.pooling.pool`).
        normalize: divide each embedding by its L2 norm.
        **kwargs: `preprocessor` (a `TextPreprocessor`, for raw strings) and `keras.Model` arguments (`name`).

    Example:
    >>> from kzoo.data import BertWordPieceTokenizer
    >>> from kzoo.data.task_inputs import TextPreprocessor
    >>> from kzoo.models import BertBackbone
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "red", "blue", "car"])
    >>> backbone = BertBackbone(vocabulary_size=7, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
    ...                         max_sequence_length=32)
    >>> embedder = TextEmbedder(backbone, preprocessor=TextPreprocessor(tokenizer, sequence_length=16))
    >>> embedder.encode(["a red car", "blue"]).shape
    (2, 16)
    >>> embedder.similarity(["a red car"], ["a red car", "blue"]).round(4)[0, 0]
    np.float32(1.0)
    >>> embedder.compile(optimizer="adam")   # MultipleNegativesRankingLoss(scale=20)
    >>> history = embedder.fit((["red car", "blue car"], ["a red car", "a blue car"]), batch_size=2, verbose=0)

    From a sentence-transformers folder: `TextEmbedder.from_preset("path/to/all-MiniLM-L6-v2")`.
    """

    def __init__(self, backbone, pooling_mode="mean", normalize=True, **kwargs):
        if pooling_mode not in POOLING_MODES:
            raise ValueError(f"pooling_mode {pooling_mode!r} is not one of {', '.join(POOLING_MODES)}.")
        inputs = dict(backbone.input)
        features = backbone(inputs)
        embeddings = pool(ops.cast(features["sequence_output"], "float32"), inputs["padding_mask"], pooling_mode)
        if normalize:
            embeddings = l2_normalize(embeddings)
        super().__init__(inputs=inputs, outputs=embeddings, **kwargs)
        self.backbone = backbone
        self._backbone_features = features
        self.pooling_mode = pooling_mode
        self.normalize = bool(normalize)

    def _task_config(self):
        return {"pooling_mode": self.pooling_mode, "normalize": self.normalize}

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """`Task.from_preset`; a sentence-transformers folder's pooling, normalisation and sequence length
        (`modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`) are the defaults of
        `pooling_mode`, `normalize` and `sequence_length`.

        Args:
            preset: a preset name, a kzoo preset folder, or a Hugging Face / sentence-transformers folder.
            load_weights: see `Task.from_preset`.
            **kwargs: `pooling_mode`, `normalize`, `sequence_length`, `preprocessor` and backbone overrides.
        """
        from kzoo.convert.sentence_transformers import embedding_settings, is_sentence_transformers_folder
        from kzoo.models.preset_io import resolve_preset

        preset = resolve_preset(preset)
        if is_sentence_transformers_folder(preset):
            settings = embedding_settings(preset)
            if settings["sequence_length"] is None:
                del settings["sequence_length"]
            kwargs = {**settings, **kwargs}
        return super().from_preset(preset, load_weights=load_weights, **kwargs)

    def compile(self, optimizer="adamw", loss="auto", metrics=None, **kwargs):
        """Keras' `compile`; `loss="auto"`: `MultipleNegativesRankingLoss(scale=20)` on pairs."""
        if loss == "auto":
            loss = MultipleNegativesRankingLoss()
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        """Keras' `fit`: on raw text pairs (see the class), or on token ids whose rows are interleaved pairs in
        batches of whole pairs, with `shuffle=False` (Keras' shuffling would part each anchor from its positive)."""
        if isinstance(x, dict) and kwargs.get("shuffle", True):
            raise ValueError("TextEmbedder.fit on token ids takes rows of interleaved pairs (anchor, positive, "
                             "anchor, ...): pass shuffle=False, or fit on the texts (anchors, positives).")
        return super().fit(x, y, *args, **kwargs)

    def predict(self, x, batch_size=None, verbose="auto", **kwargs):
        """Embeddings of texts (or of token-id rows); `encode` is the usual call."""
        if _is_pair(x):
            raise ValueError("TextEmbedder.predict takes a list of texts; pairs (anchors, positives) are for fit and "
                             "evaluate: encode each list on its own.")
        return super().predict(x, batch_size=batch_size, verbose=verbose, **kwargs)

    def encode_examples(self, x, y=None, sample_weight=None):
        if y is not None or sample_weight is not None:
            raise ValueError("TextEmbedder takes texts, or pairs of texts to train on (anchors, positives): no "
                             "labels or sample weights.")
        inputs, lengths = self.preprocessor.encode(x)
        return EncodedExamples(inputs, lengths)

    def text_batches(self, x, y=None, sample_weight=None, batch_size=32, shuffle=False, seed=0, multiple=None,
                     epoch=0):
        """Texts → `BucketedBatches`; pairs `(anchors, positives)` (or anchors as `x`, positives as `y`) →
        `PairedBatches`, for the contrastive loss."""
        if y is not None and looks_like_text(y):
            x, y = (x, y), None
        if not _is_pair(x):
            return super().text_batches(x, y, sample_weight, batch_size, shuffle, seed, multiple, epoch)
        anchors, positives = as_text_list(x[0], "anchors"), as_text_list(x[1], "positives")
        if len(anchors) != len(positives):
            raise ValueError(f"{len(anchors)} anchors but {len(positives)} positives: pairs need one of each.")
        if len(anchors) < 2:
            raise ValueError("contrastive training needs at least 2 pairs: each anchor's negatives are the other "
                             "pairs' positives.")
        if y is not None or sample_weight is not None:
            raise ValueError("TextEmbedder trains on pairs alone (anchors, positives): no labels or sample weights.")
        from kzoo.replicas import batch_shards

        if multiple is None:  # JAX shards and tf.distribute replicas (which must each get whole pairs)
            multiple = max(batch_shards(), getattr(getattr(self, "distribute_strategy", None), "num_replicas_in_sync", 1))
        (anchor_inputs, anchor_lengths), (positive_inputs, positive_lengths) = (
            self.preprocessor.encode(texts) for texts in (anchors, positives))
        return PairedBatches(anchor_inputs, anchor_lengths, positive_inputs, positive_lengths,
                             batch_size=batch_size, shuffle=shuffle, seed=seed, round_to=self.round_to,
                             keys=self.input_keys, multiple=multiple, epoch=epoch)

    def encode(self, texts, batch_size=32):
        """Embeddings of `texts` (a string or a list of strings): a float32 array (len(texts), hidden), in their
        order, computed in batches of similar lengths.

        Args:
            texts: a string or a list of strings.
            batch_size: texts per forward pass.
        """
        if self.preprocessor is None:
            raise ValueError("TextEmbedder.encode needs a preprocessor (tokenizer); for token ids call predict.")
        texts = [texts] if isinstance(texts, (str, bytes)) else texts
        return np.asarray(self.predict(as_text_list(texts), batch_size=batch_size), "float32")

    encode_text = encode  # keras-hub's TextEmbedder's name for it

    def similarity(self, a, b, batch_size=32):
        """Cosine similarities (len(a), len(b)) between two lists of texts or two arrays of embeddings.

        Args:
            a, b: lists of strings (encoded first) or (n, hidden) embedding arrays.
            batch_size: texts per forward pass when encoding.
        """
        a, b = (self.encode(v, batch_size) if isinstance(v, (str, bytes)) or looks_like_text(v) else
                np.asarray(v, "float32") for v in (a, b))
        a, b = (ops.convert_to_numpy(l2_normalize(v)) for v in (a, b))
        return a @ b.T
