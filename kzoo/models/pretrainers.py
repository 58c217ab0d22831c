"""Pretraining models: MLM (+ NSP for BERT, + SOP for ALBERT), logits only at the masked positions."""

import keras
from keras import ops, tree

from kzoo.layers import MaskedLMHead, NextSentenceHead, SentenceOrderHead
from kzoo.models.albert import AlbertBackbone
from kzoo.models.bert import BertBackbone
from kzoo.models.distil_bert import DistilBertBackbone
from kzoo.models.task import Task
from kzoo.replicas import replica_count, weighted_mean


def weighted_cross_entropy(labels, logits, weights=None):
    """Mean cross-entropy, weighted: Σ w·CE / Σ w, as BERT's reference code computes the MLM loss.

    (Keras' `sum_over_batch_size` would divide by every slot, padded predictions included.) Under
    `tf.distribute` each replica returns its share: its Σ w·CE over the Σ w of the global batch, so the summed
    gradients of the replicas are those of the global mean, as on one device.
    """
    losses = keras.losses.sparse_categorical_crossentropy(labels, ops.cast(logits, "float32"), from_logits=True)
    return weighted_mean(losses, weights)


class Pretrainer(Task):
    """A backbone with a tied MLM head and, for BERT and ALBERT, a sentence-pair head.

    Inputs: the backbone's inputs plus `mask_positions` (batch, P). Outputs: `{"mlm": (batch, P, V)}` plus
    `{"nsp": (batch, 2)}` or `{"sop": (batch, 2)}`. Targets for `fit`: `y = {"mlm": mask_ids, "nsp": labels}`
    (a bare `mask_ids` array also works for MLM-only models) and
    `sample_weight = {"mlm": mask_weights (batch, P), "nsp": None or (batch,)}` (Keras wants one entry per
    output); a `tf.data` pipeline may also yield the bare `mask_weights` array.
    The loss is built in: MLM (weighted mean over real predictions) + the sentence-pair loss, unweighted
    (docs/design.md §4), so `compile()` needs only an optimizer. Logged: loss, mlm_loss, mlm_accuracy and the
    pair task's loss and accuracy.

    Args:
        backbone: a backbone of the subclass's `backbone_class` (exactly: a DistilBERT is no BERT here).
        **kwargs: `preprocessor` and `keras.Model` arguments (`name`).
    """

    pair_task = None  # "nsp" | "sop" | None
    pair_head_class = None

    def __init__(self, backbone, **kwargs):
        self.check_backbone(backbone)
        inputs = dict(backbone.input)
        inputs["mask_positions"] = keras.Input(shape=(None,), dtype="int32", name="mask_positions")
        features = backbone({key: inputs[key] for key in backbone.input_keys})
        mlm_head = MaskedLMHead(
            backbone.vocabulary_size, backbone.token_embedding.output_dim, token_embedding=backbone.token_embedding,
            activation=backbone.activation, layer_norm_epsilon=backbone.layer_norm_epsilon,
            initializer_range=backbone.initializer_range, dtype=backbone.dtype_policy, name="mlm_head",
        )
        outputs = {"mlm": mlm_head(features["sequence_output"], inputs["mask_positions"])}
        pair_head = None
        if self.pair_task is not None:
            pair_head = self.pair_head_class(
                initializer_range=backbone.initializer_range, dtype=backbone.dtype_policy,
                name=f"{self.pair_task}_head",
            )
            outputs[self.pair_task] = pair_head(features["pooled_output"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone = backbone
        self._backbone_features = features
        self.mlm_head = mlm_head
        self.pair_head = pair_head
        self.mlm_loss_tracker = keras.metrics.Mean(name="mlm_loss")
        self.mlm_accuracy = keras.metrics.SparseCategoricalAccuracy(name="mlm_accuracy")
        if self.pair_task is not None:
            self.pair_loss_tracker = keras.metrics.Mean(name=f"{self.pair_task}_loss")
            self.pair_accuracy = keras.metrics.SparseCategoricalAccuracy(name=f"{self.pair_task}_accuracy")

    @property
    def input_keys(self):
        return tuple(self.backbone.input_keys) + ("mask_positions",)

    def call(self, inputs, training=None, mask=None):
        """The functional graph's outputs, with the last encoder layer computed only where the heads read
        it: the masked positions and, for the pair head, [CLS] (`Backbone.last_hidden_state_at`). The lower
        layers are unchanged. This is kzoo's lead over keras-hub in bench/train.py (4 layers: 1.2x on JAX)."""
        if not isinstance(inputs, dict) or any(m is not None for m in tree.flatten(mask)):
            return super().call(inputs, training=training, mask=mask)
        inputs = tree.pack_sequence_as(self._inputs_struct, self._standardize_inputs(inputs))
        positions = inputs["mask_positions"]
        if self.pair_task is not None:  # row 0 is [CLS], for the pooler
            positions = ops.concatenate([ops.zeros_like(positions[:, :1]), positions], axis=1)
        states = self.backbone.last_hidden_state_at(inputs, positions, training=training)
        if self.pair_task is None:
            return {"mlm": self.mlm_head(states)}
        pooled = self.backbone.pooler(states[:, :1])
        return {"mlm": self.mlm_head(states[:, 1:]), self.pair_task: self.pair_head(pooled)}

    def compile(self, optimizer="adamw", loss=None, **kwargs):
        """Keras' `compile` without `loss` (the MLM + sentence-pair loss is built in): an `optimizer` (or its
        name) and other `keras.Model.compile` arguments (`jit_compile`, `steps_per_execution`)."""
        if loss is not None:
            raise ValueError(
                f"{type(self).__name__} computes its own loss (MLM + {self.pair_task or 'nothing'}); "
                "call compile() without `loss`."
            )
        super().compile(optimizer=optimizer, **kwargs)

    def _targets(self, y):
        if isinstance(y, dict):
            missing = [key for key in ("mlm", self.pair_task) if key is not None and key not in y]
            if missing:
                raise ValueError(f"{type(self).__name__} targets are missing key(s) {missing}; got {sorted(y)}.")
            return y["mlm"], (y[self.pair_task] if self.pair_task else None)
        if self.pair_task is not None:
            raise ValueError(
                f"{type(self).__name__} needs y = {{'mlm': mask_ids, '{self.pair_task}': labels}}."
            )
        return y, None

    def _weights(self, sample_weight):
        """(mask_weights, pair_weights) from `{"mlm": w, "nsp": w_or_None}` or a bare mask-weights array."""
        if isinstance(sample_weight, dict):
            return sample_weight.get("mlm"), sample_weight.get(self.pair_task) if self.pair_task else None
        return sample_weight, None

    def pretraining_losses(self, y, y_pred, sample_weight=None):
        """`{"mlm": loss}` plus `{pair_task: loss}`: the terms of the pretraining loss, without side effects."""
        mask_ids, pair_labels = self._targets(y)
        mask_weights, pair_weights = self._weights(sample_weight)
        losses = {"mlm": weighted_cross_entropy(mask_ids, y_pred["mlm"], mask_weights)}
        if self.pair_task is not None:
            losses[self.pair_task] = weighted_cross_entropy(pair_labels, y_pred[self.pair_task], pair_weights)
        return losses

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        replicas = replica_count()  # trackers average over replicas: log replicas × share = the global value
        losses = self.pretraining_losses(y, y_pred, sample_weight)
        self.mlm_loss_tracker.update_state(losses["mlm"] * replicas)
        if self.pair_task is not None:
            self.pair_loss_tracker.update_state(losses[self.pair_task] * replicas)
        loss = sum(losses.values())
        for extra in self.losses:  # regularizers, if a user adds any
            loss = loss + ops.cast(extra, loss.dtype) / replicas
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        mask_ids, pair_labels = self._targets(y)
        mask_weights, pair_weights = self._weights(sample_weight)
        self.mlm_accuracy.update_state(mask_ids, ops.cast(y_pred["mlm"], "float32"), sample_weight=mask_weights)
        if self.pair_task is not None:
            self.pair_accuracy.update_state(
                pair_labels, ops.cast(y_pred[self.pair_task], "float32"), sample_weight=pair_weights
            )
        return self.get_metrics_result()


@keras.saving.register_keras_serializable(package="kzoo")
class BertPretrainer(Pretrainer):
    """BERT pretraining: MLM + next-sentence prediction.

    Args: those of `Pretrainer`, on a `BertBackbone`.

    Example:
    >>> import numpy as np
    >>> backbone = BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                         intermediate_dim=32, max_sequence_length=32)
    >>> model = BertPretrainer(backbone)
    >>> x = {"token_ids": np.array([[2, 4, 3, 7, 3]]), "segment_ids": np.array([[0, 0, 0, 1, 1]]),
    ...      "padding_mask": np.ones((1, 5), "int32"), "mask_positions": np.array([[1, 3]])}
    >>> {k: tuple(v.shape) for k, v in model(x).items()}
    {'mlm': (1, 2, 100), 'nsp': (1, 2)}
    """

    backbone_class = BertBackbone
    pair_task = "nsp"
    pair_head_class = NextSentenceHead


@keras.saving.register_keras_serializable(package="kzoo")
class DistilBertMaskedLM(Pretrainer):
    """DistilBERT pretraining: MLM only (y may be the bare `mask_ids`).

    Args: those of `Pretrainer`, on a `DistilBertBackbone`.

    Example:
    >>> import numpy as np
    >>> backbone = DistilBertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                               intermediate_dim=32, max_sequence_length=32)
    >>> x = {"token_ids": np.array([[2, 4, 3]]), "padding_mask": np.ones((1, 3), "int32"),
    ...      "mask_positions": np.array([[1]])}
    >>> tuple(DistilBertMaskedLM(backbone)(x)["mlm"].shape)
    (1, 1, 100)
    """

    backbone_class = DistilBertBackbone


@keras.saving.register_keras_serializable(package="kzoo")
class AlbertPretrainer(Pretrainer):
    """ALBERT pretraining: MLM (H → E → V, decoder tied to the E-wide embeddings) + sentence-order prediction.

    Args: those of `Pretrainer`, on an `AlbertBackbone`.

    Example:
    >>> import numpy as np
    >>> backbone = AlbertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, embedding_dim=8,
    ...                           hidden_dim=16, intermediate_dim=32, max_sequence_length=32)
    >>> x = {"token_ids": np.array([[2, 4, 3, 7, 3]]), "segment_ids": np.array([[0, 0, 0, 1, 1]]),
    ...      "padding_mask": np.ones((1, 5), "int32"), "mask_positions": np.array([[1, 3]])}
    >>> tuple(AlbertPretrainer(backbone)(x)["sop"].shape)
    (1, 2)
    """

    backbone_class = AlbertBackbone
    pair_task = "sop"
    pair_head_class = SentenceOrderHead


@keras.saving.register_keras_serializable(package="kzoo")
class BertMaskedLM(Pretrainer):
    """BERT with the MLM head only (Hugging Face's `BertForMaskedLM`); the backbone's pooler is unused.

    Args: those of `Pretrainer`, on a `BertBackbone`.

    Example:
    >>> backbone = BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                         intermediate_dim=32, max_sequence_length=32)
    >>> model = BertMaskedLM(backbone)
    >>> {name: tuple(output.shape) for name, output in model.output.items()}
    {'mlm': (None, None, 100)}
    """

    backbone_class = BertBackbone


@keras.saving.register_keras_serializable(package="kzoo")
class AlbertMaskedLM(Pretrainer):
    """ALBERT with the MLM head only (Hugging Face's `AlbertForMaskedLM`).

    Args: those of `Pretrainer`, on an `AlbertBackbone`.

    Example:
    >>> backbone = AlbertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, embedding_dim=8,
    ...                           hidden_dim=16, intermediate_dim=32, max_sequence_length=32)
    >>> model = AlbertMaskedLM(backbone)
    >>> {name: tuple(output.shape) for name, output in model.output.items()}
    {'mlm': (None, None, 100)}
    """

    backbone_class = AlbertBackbone
