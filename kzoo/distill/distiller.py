"""`Distiller`: a student learns from a frozen teacher with `fit`, on TensorFlow, JAX and torch."""

import keras
import numpy as np
from keras import ops

from kzoo.distill.backend_steps import STEPS
from kzoo.distill.losses import cosine_loss, kd_loss
from kzoo.layers.validation import gather_positions
from kzoo.models.batch_checks import BatchChecksMixin
from kzoo.models.string_inputs import StringInputsMixin
from kzoo.replicas import replica_count

# A class label marking a transfer-set example (Hinton et al. 2015): it learns from the teacher's soft labels alone.
UNLABELLED = -1

# Sanh et al. 2019, DistilBERT's pretraining: L = 5·KD(T=2) + 2·MLM + 1·cosine.
DISTILBERT_LOSS_WEIGHTS = {"temperature": 2.0, "kd_weight": 5.0, "alpha": 2.0, "cosine_weight": 1.0}


class _Forwards:
    """Plain holder (Keras does not track into it) of how the student and the teacher run, each returning
    `{"outputs"(, "sequence_output"(, "hidden_states"))}`. With hidden states: their feature views, which share
    their weights and so must not be tracked, saved or counted twice (`every_layer`: all L + 1 hidden states).
    Without: their own `call`, where a pretrainer computes its last layer at the masked positions only."""

    def __init__(self, student, teacher, hidden_states, every_layer=False):
        if hidden_states:
            self.student, self.teacher = (student.feature_model(every_layer), teacher.feature_model(every_layer))
        else:
            self.student, self.teacher = _outputs_only(student), _outputs_only(teacher)


def _outputs_only(model):
    return lambda inputs, training=None: {"outputs": model(inputs, training=training)}


@keras.saving.register_keras_serializable(package="kzoo")
class Distiller(StringInputsMixin, BatchChecksMixin, keras.Model):
    """Train `student` on `alpha`·hard-label loss + `kd_weight`·T²·KL(teacher ‖ student at temperature T)
    + `cosine_weight`·(1 − cos) between the last hidden states, with the teacher frozen (docs/design.md §6).

    `cosine_layers` (one teacher layer index per student layer, e.g. `init_student`'s return value) compares
    every student layer's output with that teacher layer's instead, the cosine loss averaged over the layers:
    a layer-wise hidden-state loss as in patient KD (Sun et al. 2019) and TinyBERT, at every non-padding token.

    Students and teachers are kzoo task models of the same kind: `TextClassifier`, `TokenClassifier` (task
    distillation) or pretrainers (MLM distillation: KD on the MLM logits at every non-padding token, as Hugging
    Face's DistilBERT script does by default, or only at the masked positions with `mlm_kd_positions="masked"`;
    the hard loss is the student's own pretraining loss).
    `kd_weight` defaults to 1 − `alpha`; with `alpha=1` the step is exactly plain training of the student.
    Text classifiers also distil on a transfer set: a label of `None` (raw text) or `UNLABELLED` (ids) marks an
    example with no label, which gets the KD loss and no hard-label loss (its hard weight is 0).
    `DISTILBERT_LOSS_WEIGHTS` holds the DistilBERT paper's weights.

    `train_step` and `test_step` are written per backend (`kzoo.distill.backend_steps`): the teacher runs in
    inference mode, outside the gradient, and only the student's variables train. Raw text works when the
    teacher or student carries a preprocessor. `save` and `save_to_preset` write the student alone;
    `save_weights` / `load_weights` checkpoint the whole training state, optimizer included (what
    `BackupAndRestore` resumes from); `predict` is the student's.

    Args:
        student: the model to train: a `TextClassifier`, `TokenClassifier` or pretrainer.
        teacher: a trained model of the same kind and classes (or vocabulary, for MLM); it stays frozen.
        temperature: the softmax temperature T of the KD loss.
        alpha: the weight of the hard-label loss (the student's own loss on the labels).
        kd_weight: the weight of the KD loss; None: 1 − `alpha`.
        cosine_weight: the weight of the hidden-state cosine loss; 0 leaves it out.
        mlm_kd_positions: MLM distillation only: KD at "all" non-padding tokens or only at the "masked" ones.
        cosine_layers: one teacher layer index per student layer for a layer-wise cosine loss; None: the last
            hidden states only. Needs `cosine_weight` > 0.
        name: the model's name.
        **kwargs: other `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from kzoo.models import BertBackbone, TextClassifier
    >>> from kzoo.distill import init_student, student_backbone
    >>> teacher = TextClassifier(BertBackbone(vocabulary_size=50, num_layers=4, num_heads=2, hidden_dim=16,
    ...                                       intermediate_dim=32, max_sequence_length=16), num_classes=2)
    >>> student = TextClassifier(student_backbone(teacher, num_layers=2), num_classes=2)
    >>> init_student(student, teacher)
    [0, 3]
    >>> distiller = Distiller(student, teacher, temperature=2.0, alpha=0.5)
    >>> distiller.compile(optimizer="adam")
    >>> x = {"token_ids": np.random.randint(0, 50, (8, 6)), "segment_ids": np.zeros((8, 6), "int32"),
    ...      "padding_mask": np.ones((8, 6), "int32")}
    >>> history = distiller.fit(x, np.arange(8) % 2, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'hard_loss', 'kd_loss', 'loss']
    """

    def __init__(self, student, teacher, temperature=2.0, alpha=0.5, kd_weight=None, cosine_weight=0.0,
                 mlm_kd_positions="all", cosine_layers=None, name="distiller", **kwargs):
        super().__init__(name=name, **kwargs)
        from kzoo.models import Pretrainer, TextClassifier

        self.is_mlm = _check_pair(student, teacher)
        self._per_example_labels = isinstance(student, TextClassifier)  # the labels a transfer set can leave out
        if not 0 < float(temperature) < float("inf"):
            raise ValueError(f"temperature must be a finite number > 0; got {temperature}.")
        if kd_weight is None and not 0 <= float(alpha) <= 1:
            raise ValueError(f"alpha must be in [0, 1] when kd_weight is not given (it defaults to 1 − alpha); "
                             f"got {alpha}. Pass kd_weight for weights outside that range.")
        if mlm_kd_positions not in ("masked", "all"):
            raise ValueError(f"mlm_kd_positions must be 'masked' or 'all'; got {mlm_kd_positions!r}.")
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.kd_weight = 1.0 - self.alpha if kd_weight is None else float(kd_weight)
        self.cosine_weight = float(cosine_weight)
        self.mlm_kd_positions = mlm_kd_positions
        # Logits at every token only where KD reads them; otherwise the models' own masked-position shortcut.
        self._kd_everywhere = self.is_mlm and mlm_kd_positions == "all" and self.kd_weight > 0
        for name_, value in (("alpha", self.alpha), ("kd_weight", self.kd_weight),
                             ("cosine_weight", self.cosine_weight)):
            if not 0 <= value < float("inf"):
                raise ValueError(f"{name_} must be a finite number ≥ 0; got {value}.")
        if self.cosine_weight and student.backbone.hidden_dim != teacher.backbone.hidden_dim:
            raise ValueError(f"The cosine loss compares hidden states: student hidden_dim "
                             f"{student.backbone.hidden_dim} ≠ teacher {teacher.backbone.hidden_dim}.")
        self.cosine_layers = _check_cosine_layers(cosine_layers, self.cosine_weight, student, teacher)
        teacher.trainable = False
        self.student = student
        self.teacher = teacher
        self._forwards = _Forwards(student, teacher, hidden_states=bool(self.cosine_weight),  # only cosine reads them
                                   every_layer=self.cosine_layers is not None)
        self._hard_loss = None if isinstance(student, Pretrainer) else student.default_loss()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.kd_loss_tracker = keras.metrics.Mean(name="kd_loss")
        self.cosine_loss_tracker = keras.metrics.Mean(name="cosine_loss") if self.cosine_weight else None
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="mlm_accuracy" if self.is_mlm else "accuracy")
        self.student_metrics = []
        self.built = True

    # Text inputs: encoded by the teacher's preprocessor (a superset of the student's inputs) or the student's.
    @property
    def _text_model(self):
        return self.teacher if self.teacher.preprocessor is not None else self.student

    @property
    def preprocessor(self):
        return self._text_model.preprocessor

    @preprocessor.setter
    def preprocessor(self, value):
        if value is not None:
            raise AttributeError("Set the preprocessor on the student or the teacher.")

    @property
    def input_keys(self):
        return self._text_model.input_keys

    def encode_examples(self, x, y=None, sample_weight=None):
        missing = []
        if y is not None and self._per_example_labels:
            missing = [index for index, label in enumerate(y) if label is None]
        if missing:  # a stand-in the label check accepts, then UNLABELLED
            stand_in = self.student.label_names[0] if self.student.label_names else 0
            y = [stand_in if label is None else label for label in y]
        encoded = self._text_model.encode_examples(x, y, sample_weight)
        if missing:
            encoded.y[np.asarray(missing)] = UNLABELLED
        return encoded

    def _labelled(self, y, sample_weight):
        """(labels with UNLABELLED → 0, weights 0 on those rows): transfer-set rows add no hard-label loss."""
        y = ops.convert_to_tensor(y)
        known = ops.cast(ops.greater_equal(y, 0), "float32")
        weights = known if sample_weight is None else ops.cast(sample_weight, "float32") * known
        return ops.maximum(y, 0), weights

    # Forward passes ---------------------------------------------------------------------------------------
    def _inputs_for(self, model, x):
        x = {key: ops.convert_to_tensor(value) for key, value in x.items()}  # Keras refuses numpy + tensors
        if "segment_ids" in model.input_keys and "segment_ids" not in x:  # DistilBERT teacher → BERT student
            x["segment_ids"] = ops.zeros_like(x["token_ids"])
        if self._kd_everywhere:
            batch, length = ops.shape(x["token_ids"])[0], ops.shape(x["token_ids"])[1]
            x["mask_positions"] = ops.broadcast_to(ops.arange(length, dtype="int32")[None, :], (batch, length))
        return {key: x[key] for key in model.input_keys}

    def teacher_forward(self, x):
        """The teacher's outputs (and last hidden states), in inference mode and cut from the gradient."""
        out = self._forwards.teacher(self._inputs_for(self.teacher, x), training=False)
        return keras.tree.map_structure(ops.stop_gradient, out)

    def student_forward(self, x, training=False):
        return self._forwards.student(self._inputs_for(self.student, x), training=training)

    def call(self, inputs, training=None):
        return self.student({key: inputs[key] for key in self.student.input_keys}, training=training)

    # Losses and metrics -----------------------------------------------------------------------------------
    def _predictions(self, x, student_out, sample_weight):
        """(the student's predictions as its own `fit` sees them, the logits KD compares, KD weights)."""
        out = student_out["outputs"]
        if not self.is_mlm:
            weights = sample_weight
            if weights is None and len(out.shape) == 3:  # per-token logits: every real token
                weights = x["padding_mask"]
            return out, out, weights
        if self._kd_everywhere:
            at_masks = gather_positions(out["mlm"], x["mask_positions"])  # checked: JAX would clamp a bad one
            return dict(out, mlm=at_masks), out["mlm"], x["padding_mask"]
        mask_weights = self.student._weights(sample_weight)[0]
        return out, out["mlm"], mask_weights

    def compute_losses(self, x, y, sample_weight, student_out, teacher_out):
        """`{"loss", "hard_loss", "kd_loss"(, "cosine_loss")}` for one batch; backend-neutral. Under
        `tf.distribute` each term is this replica's share of the global batch's value, as Keras scales its own
        losses, so the summed gradients of R replicas are those of one device on the whole batch."""
        predictions, student_logits, kd_weights = self._predictions(x, student_out, sample_weight)
        teacher_logits = teacher_out["outputs"]["mlm"] if self.is_mlm else teacher_out["outputs"]
        zero = ops.zeros((), "float32")
        if y is None:
            hard = zero
        elif self.is_mlm:
            hard = sum(self.student.pretraining_losses(y, predictions, sample_weight).values())
        elif self._per_example_labels:
            labels, weights = self._labelled(y, sample_weight)
            hard = ops.cast(self._hard_loss(labels, predictions, weights), "float32")
        else:
            hard = ops.cast(self._hard_loss(y, predictions, sample_weight), "float32")
        soft = kd_loss(teacher_logits, student_logits, self.temperature, kd_weights) if self.kd_weight else zero
        losses = {"hard_loss": hard, "kd_loss": soft}
        total = self.alpha * hard + self.kd_weight * soft
        if self.cosine_weight:
            losses["cosine_loss"] = self._hidden_state_loss(x, student_out, teacher_out, sample_weight)
            total = total + self.cosine_weight * losses["cosine_loss"]
        losses["loss"] = total
        return losses

    def _hidden_state_loss(self, x, student_out, teacher_out, sample_weight=None):
        """1 − cos between the last hidden states, or averaged over the `cosine_layers` pairs."""
        weights = self._token_weights(x, sample_weight)
        if self.cosine_layers is None:
            return cosine_loss(student_out["sequence_output"], teacher_out["sequence_output"], weights)
        student_layers = student_out["hidden_states"][1:]  # [0] is the embedding output
        pairs = [cosine_loss(student_layers[i], teacher_out["hidden_states"][layer + 1], weights)
                 for i, layer in enumerate(self.cosine_layers)]
        return sum(pairs) / len(pairs)

    def _token_weights(self, x, sample_weight):
        """Each token's weight in the cosine loss: its padding mask, times its example's (or its own) sample
        weight for task models, as their other losses weight it (a pretrainer's weights are per masked slot)."""
        mask = ops.cast(x["padding_mask"], "float32")
        if self.is_mlm or sample_weight is None:
            return mask
        weights = ops.cast(sample_weight, "float32")
        return mask * (weights[:, None] if len(weights.shape) == 1 else weights)

    def _accuracy_inputs(self, x, y, sample_weight, student_out):
        predictions, _, _ = self._predictions(x, student_out, sample_weight)
        if self._per_example_labels:
            labels, weights = self._labelled(y, sample_weight)
            return labels, predictions, weights
        if not self.is_mlm:
            return y, predictions, sample_weight
        mask_ids = y["mlm"] if isinstance(y, dict) else y
        return mask_ids, predictions["mlm"], self.student._weights(sample_weight)[0]

    def update_metrics(self, x, y, sample_weight, student_out, losses):
        batch = ops.shape(x["token_ids"])[0]
        replicas = replica_count()  # each loss is this replica's share; the trackers average over replicas
        for tracker, key in ((self.loss_tracker, "loss"), (self.hard_loss_tracker, "hard_loss"),
                             (self.kd_loss_tracker, "kd_loss"), (self.cosine_loss_tracker, "cosine_loss")):
            if tracker is not None:
                tracker.update_state(losses[key] * replicas, sample_weight=batch)
        if y is not None:
            labels, logits, weights = self._accuracy_inputs(x, y, sample_weight, student_out)
            for metric in [self.accuracy] + self.student_metrics:
                metric.update_state(labels, ops.cast(logits, "float32"), sample_weight=weights)
        return {m.name: m.result() for m in self._logged_metrics()}

    def _logged_metrics(self):
        trackers = [self.loss_tracker, self.hard_loss_tracker, self.kd_loss_tracker, self.cosine_loss_tracker,
                    self.accuracy]
        return [m for m in trackers if m is not None] + self.student_metrics

    # Keras hooks ------------------------------------------------------------------------------------------
    def compile(self, optimizer="adamw", metrics=None, **kwargs):
        """Keras' `compile`, without `loss`: the losses come from the constructor.

        Args:
            optimizer: a Keras optimizer or its name; it trains the student's variables only.
            metrics: extra `keras.metrics.Metric`s on (labels, student logits, weights) — for MLM the mask ids
                and logits at the masked positions.
            **kwargs: other `keras.Model.compile` arguments (`jit_compile`, `steps_per_execution`).
        """
        if kwargs.get("loss") is not None:
            raise ValueError("Distiller builds its loss from alpha, kd_weight and cosine_weight; compile() takes "
                             "no `loss`.")
        kwargs.pop("loss", None)
        super().compile(optimizer=optimizer, **kwargs)
        self.student_metrics = list(metrics or [])

    def train_step(self, *args):
        return STEPS[keras.backend.backend()][0](self, *args)

    def test_step(self, *args):
        return STEPS[keras.backend.backend()][1](self, *args)

    # The student is what a distillation run produces: `save` and `save_to_preset` write it alone.
    # `save_weights` / `load_weights` stay Keras' own (student, teacher and optimizer state), since
    # `BackupAndRestore` resumes a run through them; `distiller.student.save_weights` writes the student's.
    def save(self, filepath, *args, **kwargs):
        return self.student.save(filepath, *args, **kwargs)

    def save_to_preset(self, directory, overwrite=False, assets=()):
        return self.student.save_to_preset(directory, overwrite=overwrite, assets=assets)

    def get_config(self):
        return {"student": keras.saving.serialize_keras_object(self.student),
                "teacher": keras.saving.serialize_keras_object(self.teacher), "temperature": self.temperature,
                "alpha": self.alpha, "kd_weight": self.kd_weight, "cosine_weight": self.cosine_weight,
                "mlm_kd_positions": self.mlm_kd_positions, "cosine_layers": self.cosine_layers, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("student", "teacher"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _check_cosine_layers(layers, cosine_weight, student, teacher):
    """`layers` as a list of ints, one valid teacher layer per student layer (None stays None); raises otherwise."""
    if layers is None:
        return None
    if not cosine_weight:
        raise ValueError("cosine_layers pairs hidden states for the cosine loss; set cosine_weight > 0 too.")
    if isinstance(layers, str) or not all(isinstance(layer, (int, np.integer)) for layer in layers):
        raise ValueError(f"cosine_layers must be a list of teacher layer indices (ints); got {layers!r}.")
    layers = [int(layer) for layer in layers]
    student_depth, teacher_depth = student.backbone.num_layers, teacher.backbone.num_layers
    if len(layers) != student_depth:
        raise ValueError(f"cosine_layers needs one teacher layer per student layer: {student_depth}; got {layers}.")
    if any(not 0 <= layer < teacher_depth for layer in layers):
        raise ValueError(f"cosine_layers {layers}: the teacher's layers are 0 to {teacher_depth - 1}.")
    return layers


def _check_pair(student, teacher):
    """True for MLM distillation (two pretrainers); raises unless student and teacher can be distilled."""
    from kzoo.models import Pretrainer, TextClassifier, TokenClassifier

    supported = (Pretrainer, TextClassifier, TokenClassifier)
    for role, model in (("student", student), ("teacher", teacher)):
        if not isinstance(model, supported):
            raise ValueError(f"The {role} is a {type(model).__name__}; Distiller takes TextClassifier, "
                             "TokenClassifier or pretrainer (MLM) models.")
    if isinstance(student, Pretrainer) != isinstance(teacher, Pretrainer) or (
            not isinstance(student, Pretrainer) and type(student) is not type(teacher)):
        raise ValueError(f"A {type(student).__name__} student cannot learn from a {type(teacher).__name__} "
                         "teacher: their outputs differ.")
    if student.preprocessor is not None and teacher.preprocessor is not None and (
            not student.preprocessor.same_vocabulary(teacher.preprocessor)):
        raise ValueError("The student's tokenizer has another vocabulary than the teacher's: the Distiller "
                         "encodes text with the teacher's, so the student would learn from ids its own tokenizer "
                         "does not produce. Give both the same preprocessor (or the student none).")
    if isinstance(student, Pretrainer):
        if student.backbone.vocabulary_size != teacher.backbone.vocabulary_size:
            raise ValueError(f"MLM distillation compares vocabularies: student {student.backbone.vocabulary_size} "
                             f"≠ teacher {teacher.backbone.vocabulary_size} tokens.")
        return True
    if student.num_classes != teacher.num_classes or student.label_names != teacher.label_names:
        raise ValueError(f"Student classes {student.label_names or student.num_classes} ≠ teacher classes "
                         f"{teacher.label_names or teacher.num_classes}.")
    return False
