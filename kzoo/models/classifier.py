"""Sequence classification on any backbone, with each reference's head (DESIGN.md §4)."""

import keras

from kzoo.layers.embeddings import truncated_normal
from kzoo.models.task import Task


@keras.saving.register_keras_serializable(package="kzoo")
class TextClassifier(Task):
    """Class logits from a backbone: BERT/ALBERT pooled output → dropout → Dense(C); DistilBERT (no pooler)
    [CLS] → Dense(H, relu) → dropout → Dense(C), as Hugging Face's `*ForSequenceClassification`.

    Takes the backbone's token-id inputs and returns logits (batch, num_classes); compile with any Keras loss,
    e.g. `SparseCategoricalCrossentropy(from_logits=True)`.

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
    """

    def __init__(self, backbone, num_classes, dropout=None, **kwargs):
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
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
        self.pre_classifier = pre_classifier
        self.classifier = classifier
        self.num_classes = int(num_classes)
        self.dropout = dropout

    def _task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout}
