"""Token classification (tagging) on any backbone: a label per word, learnt and predicted on its first piece."""

import keras
import numpy as np

from kzoo.data.word_pieces import as_word_lists, tokenize_words
from kzoo.layers.initializers import truncated_normal
from kzoo.models.labels import label_ids, label_names_of, resolve_label_set
from kzoo.models.string_inputs import EncodedExamples
from kzoo.models.task import Task


@keras.saving.register_keras_serializable(package="kzoo")
class TokenClassifier(Task):
    """Per-token class logits: sequence output → dropout → Dense(C), as Hugging Face's
    `*ForTokenClassification`. Returns logits (batch, sequence, num_classes).

    With a `preprocessor`, `fit`/`evaluate`/`predict` take words: each example a list of words (labels: a list
    of the same length) or a string, split into words and punctuation marks (`kzoo.data.word_pieces`). Each
    word's label sits on its first word piece; the other pieces, [CLS], [SEP] and padding get sample weight 0,
    and the default loss averages over the weighted tokens only. Words cut off by `sequence_length` get no
    label in training and `None` from `predict_labels`. With token ids, pass per-token labels and a per-token
    `sample_weight` (0 where there is no label).

    Args:
        backbone: a kzoo backbone.
        num_classes: the number of tags; may be left out when `label_names` is given.
        dropout: dropout rate before the classifier; None: the backbone's `dropout`.
        label_names: tag names, in class-id order (e.g. ["O", "B-PER", "I-PER"]).
        **kwargs: `preprocessor` (a `TextPreprocessor`, for words and raw strings) and `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from kzoo.models import BertBackbone
    >>> backbone = BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                         intermediate_dim=32, max_sequence_length=32)
    >>> model = TokenClassifier(backbone, label_names=["O", "NAME"])
    >>> logits = model({"token_ids": np.array([[2, 5, 6, 3]]), "segment_ids": np.zeros((1, 4), "int32"),
    ...                 "padding_mask": np.ones((1, 4), "int32")})
    >>> tuple(logits.shape)
    (1, 4, 2)
    """

    _per_token_outputs = True

    def __init__(self, backbone, num_classes=None, dropout=None, label_names=None, **kwargs):
        num_classes, label_names = resolve_label_set("TokenClassifier", num_classes, label_names)
        rate = backbone.dropout if dropout is None else dropout
        inputs = dict(backbone.input)
        features = backbone(inputs)
        x = keras.layers.Dropout(rate, dtype=backbone.dtype_policy, name="classifier_dropout")(
            features["sequence_output"])
        classifier = keras.layers.Dense(num_classes, kernel_initializer=truncated_normal(backbone.initializer_range),
                                        dtype=backbone.dtype_policy, name="classifier")
        super().__init__(inputs=inputs, outputs=classifier(x), **kwargs)
        self.backbone = backbone
        self._backbone_features = features
        self.classifier = classifier
        self.num_classes = num_classes
        self.dropout = dropout
        self.label_names = label_names

    def _task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout, "label_names": self.label_names}

    @staticmethod
    def default_loss():
        """Sparse categorical cross-entropy on the logits: `compile()`'s default and `Distiller`'s hard-label loss."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")

    def compile(self, optimizer="adamw", loss="auto", weighted_metrics="auto", **kwargs):
        """Defaults: cross-entropy averaged over tokens with nonzero sample weight; token accuracy over them."""
        if loss == "auto":
            loss = self.default_loss()
        if weighted_metrics == "auto":
            weighted_metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, weighted_metrics=weighted_metrics, **kwargs)

    def _align(self, x):
        """Words → pieces (with each piece's word) → packed full-length inputs."""
        word_lists = as_word_lists(x)
        pieced = tokenize_words(self.preprocessor, word_lists)
        inputs, lengths = self.preprocessor.encode_pieces([pieced.pieces])
        return word_lists, pieced, inputs, lengths

    def first_piece_positions(self, pieced, index):
        """Sequence positions of each word's first piece ([CLS] comes first); -1 for words truncated away."""
        starts = pieced.first_pieces(index) + 1
        return np.where(starts < self.preprocessor.sequence_length - 1, starts, -1)

    def encode_examples(self, x, y=None, sample_weight=None):
        word_lists, pieced, inputs, lengths = self._align(x)
        if y is None:
            return EncodedExamples(inputs, lengths)
        if len(y) != len(word_lists):
            raise ValueError(f"{len(word_lists)} examples but {len(y)} label lists.")
        labels = np.zeros(inputs["token_ids"].shape, "int32")
        weights = np.zeros(inputs["token_ids"].shape, "float32")
        for index, (words, tags) in enumerate(zip(word_lists, y)):
            if isinstance(tags, str) or len(tags) != len(words):
                raise ValueError(f"example {index} has {len(words)} words but "
                                 f"{'a string' if isinstance(tags, str) else len(tags)} labels; give one label "
                                 "per word.")
            ids = label_ids(tags, self.num_classes, self.label_names, where=f" in example {index}")
            positions = self.first_piece_positions(pieced, index)
            kept = positions >= 0
            labels[index, positions[kept]] = ids[kept]
            weights[index, positions[kept]] = 1.0
        if sample_weight is not None:
            weights *= np.asarray(sample_weight, "float32").reshape(-1, 1)
        return EncodedExamples(inputs, lengths, labels, weights, per_token=("y", "sample_weight"))

    def predict_labels(self, x, batch_size=32):
        """Words (or strings) → a label per word, read at its first piece (None where truncated away).

        Args:
            x: a list of examples, each a list of words or a string (split into words and punctuation marks).
            batch_size: examples per forward pass.

        Returns:
            One list of labels (names with `label_names`, else ids) per example, one label per word.
        """
        word_lists, pieced, inputs, lengths = self._align(x)
        predicted = np.asarray(self._predict_encoded(inputs, lengths, batch_size)).argmax(-1)
        results = []
        for index in range(len(word_lists)):
            positions = self.first_piece_positions(pieced, index)
            names = label_names_of(predicted[index, np.maximum(positions, 0)], self.label_names)
            results.append([name if position >= 0 else None for name, position in zip(names, positions)])
        return results
