"""Sequence classification on any backbone, with each reference's head (docs/design.md §4)."""

import keras
import numpy as np

from kzoo.layers.initializers import truncated_normal
from kzoo.models.labels import label_ids, label_names_of, resolve_label_set
from kzoo.models.string_inputs import EncodedExamples
from kzoo.models.task import Task


@keras.saving.register_keras_serializable(package="kzoo")
class TextClassifier(Task):
    """Class logits from a backbone: BERT/ALBERT pooled output → dropout → Dense(C); DistilBERT (no pooler)
    [CLS] → Dense(H, relu) → dropout → Dense(C), as Hugging Face's `*ForSequenceClassification`.

    Takes the backbone's token-id inputs and returns logits (batch, num_classes). `compile()` defaults to
    sparse categorical cross-entropy on the logits and accuracy. With a `preprocessor`, `fit`/`evaluate`/
    `predict` also take raw strings (or a pair `(texts_a, texts_b)`), and labels may be class names when
    `label_names` is given (`num_classes` then follows from it).

    Args:
        backbone: a kzoo backbone (`BertBackbone`, `DistilBertBackbone`, `AlbertBackbone`).
        num_classes: the number of classes; may be left out when `label_names` is given.
        dropout: dropout rate before the classifier; None: the backbone's `dropout`.
        label_names: class names, in class-id order; `predict_labels` then returns names and `fit` takes them.
        **kwargs: `preprocessor` (a `TextPreprocessor`, for raw strings) and `keras.Model` arguments (`name`).

    Example:
    >>> import numpy as np
    >>> from kzoo.models import BertBackbone
    >>> backbone = BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                         intermediate_dim=32, max_sequence_length=32)
    >>> model = TextClassifier(backbone, num_classes=3)
    >>> logits = model({"token_ids": np.array([[2, 5, 3]]), "segment_ids": np.zeros((1, 3), "int32"),
    ...                 "padding_mask": np.ones((1, 3), "int32")})
    >>> tuple(logits.shape)
    (1, 3)

    Raw strings and class names, with a preprocessor (`fit(texts, labels)` and `evaluate` take them too):
    >>> from kzoo.data import BertWordPieceTokenizer
    >>> from kzoo.data.task_inputs import TextPreprocessor
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "day"])
    >>> model = TextClassifier(backbone, label_names=["negative", "positive"],
    ...                        preprocessor=TextPreprocessor(tokenizer, sequence_length=16))
    >>> [label in ("negative", "positive") for label in model.predict_labels(["a good day", "bad"])]
    [True, True]
    """

    def __init__(self, backbone, num_classes=None, dropout=None, label_names=None, **kwargs):
        num_classes, label_names = resolve_label_set("TextClassifier", num_classes, label_names)
        rate = backbone.dropout if dropout is None else dropout
        policy = backbone.dtype_policy
        init = truncated_normal(backbone.initializer_range)
        inputs = dict(backbone.input)
        features = backbone(inputs)
        pre_classifier = None
        if "pooled_output" in features:
            x = features["pooled_output"]
        else:
            pre_classifier = keras.layers.Dense(backbone.hidden_dim, activation="relu", kernel_initializer=init,
                                                dtype=policy, name="pre_classifier")
            x = pre_classifier(features["sequence_output"][:, 0, :])
        x = keras.layers.Dropout(rate, dtype=policy, name="classifier_dropout")(x)
        classifier = keras.layers.Dense(int(num_classes), kernel_initializer=init, dtype=policy, name="classifier")
        super().__init__(inputs=inputs, outputs=classifier(x), **kwargs)
        self.backbone = backbone
        self._backbone_features = features
        self.pre_classifier = pre_classifier
        self.classifier = classifier
        self.num_classes = int(num_classes)
        self.dropout = dropout
        self.label_names = label_names

    def _task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout, "label_names": self.label_names}

    @staticmethod
    def default_loss():
        """Sparse categorical cross-entropy on the logits: `compile()`'s default and `Distiller`'s hard-label loss."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compile(self, optimizer="adamw", loss="auto", metrics="auto", **kwargs):
        """Keras' `compile` with defaults: cross-entropy on the logits ("auto": `default_loss()`) and accuracy
        ("auto"); any other `loss`, `metrics` and `keras.Model.compile` arguments are passed on."""
        if loss == "auto":
            loss = self.default_loss()
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def label_ids(self, labels):
        """Class ids (int32 array) of `labels`: class names (with `label_names`) or ints in [0, num_classes);
        a `ValueError` names the first bad label."""
        return label_ids(labels, self.num_classes, self.label_names)

    def encode_examples(self, x, y=None, sample_weight=None):
        pair = isinstance(x, tuple) and len(x) == 2 and not isinstance(x[0], (str, bytes))
        inputs, lengths = self.preprocessor.encode(*(x if pair else (x,)))
        if y is not None:
            y = self.label_ids(y)
            if len(y) != len(lengths):
                raise ValueError(f"{len(lengths)} texts but {len(y)} labels.")
        return EncodedExamples(inputs, lengths, y, None if sample_weight is None else np.asarray(sample_weight))

    def predict_labels(self, x, batch_size=32):
        """Raw text (or token ids) → predicted class names (with `label_names`) or ids.

        Args:
            x: a list of strings, a pair `(texts_a, texts_b)` of lists, or a dict of token-id arrays.
            batch_size: examples per forward pass.

        Returns:
            A list with one label per example.
        """
        ids = np.asarray(self.predict(x, batch_size=batch_size, verbose=0)).argmax(-1)
        return label_names_of(ids, self.label_names)
