"""Students made from a teacher: a shallower config, and weights copied from an evenly spread selection of the
teacher's layers (DistilBERT's recipe, docs/design.md §6)."""

import numpy as np

from kzoo.architectures import ARCHITECTURES, of_backbone
from kzoo.models.backbone import Backbone


def spread_layers(teacher_layers, student_layers):
    """Indices of `student_layers` teacher layers spread evenly from the first to the last, rounded.

    Args:
        teacher_layers: the teacher's number of layers.
        student_layers: the student's, from 1 to `teacher_layers` (1 takes the last layer).

    Example:
    >>> spread_layers(12, 6), spread_layers(6, 3)
    ([0, 2, 4, 7, 9, 11], [0, 2, 5])
    """
    teacher_layers, student_layers = int(teacher_layers), int(student_layers)
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"A student needs between 1 and {teacher_layers} layers (the teacher's); "
                         f"got {student_layers}.")
    if student_layers == 1:
        return [teacher_layers - 1]
    return [int(i) for i in np.round(np.linspace(0, teacher_layers - 1, student_layers))]


def _backbone(model):
    return model if isinstance(model, Backbone) else model.backbone


def student_backbone(teacher, num_layers, architecture=None, dropout=None):
    """A fresh backbone like `teacher`'s with `num_layers` layers; `architecture="distil_bert"` makes a
    DistilBERT (no token types, no pooler) of the same widths from a BERT teacher.

    Args:
        teacher: a backbone or task model; its backbone's config is copied.
        num_layers: the student's number of layers.
        architecture: None (the teacher's class), "bert", "distil_bert" or "albert" (only from ALBERT).
        dropout: the student's dropout rate; None: the teacher's.

    Returns:
        A randomly initialised backbone: fill it with `init_student`.

    Example:
    >>> from kzoo.models import BertBackbone
    >>> teacher = BertBackbone(vocabulary_size=100, num_layers=4, num_heads=2, hidden_dim=16,
    ...                        intermediate_dim=32, max_sequence_length=32)
    >>> type(student_backbone(teacher, 2, "distil_bert")).__name__
    'DistilBertBackbone'
    """
    from kzoo import models

    teacher = _backbone(teacher)
    config = dict(teacher.get_config(), num_layers=int(num_layers))
    config.pop("name", None)
    if dropout is not None:
        config["dropout"] = dropout
    if architecture is not None and architecture not in ARCHITECTURES:
        raise ValueError(f"Unknown student architecture {architecture!r}; use one of "
                         f"{list(ARCHITECTURES)} or None (the teacher's).")
    target = type(teacher) if architecture is None else getattr(models, ARCHITECTURES[architecture].backbone)
    if of_backbone(target).shares_layers != of_backbone(teacher).shares_layers:  # ALBERT's layout is its own
        raise ValueError(f"A {target.__name__} student cannot be made from a {type(teacher).__name__} teacher.")
    if not of_backbone(target).segments:
        config.pop("num_segments", None)
    return target(**config)


def init_student(student, teacher, layers=None):
    """Copy the teacher's embeddings, the chosen layers (default: `spread_layers`), the pooler and the heads
    into `student` (backbones or task models of the same widths). Returns the teacher layers used.

    From a BERT teacher to a DistilBERT student, the teacher's token-type-0 embedding is folded into the
    student's position embeddings (DistilBERT has no token types, and BERT adds type 0 to every single-segment
    token). Heads are copied when both models have them with the same shapes: the MLM and sentence-pair heads
    of pretrainers, a classifier's layers.

    Args:
        student: a backbone or task model (e.g. on `student_backbone(teacher, n)`), changed in place.
        teacher: a backbone or task model with the same vocabulary and hidden width.
        layers: the teacher layer to copy into each student layer; None: `spread_layers`. (ALBERT copies its
            shared blocks one to one instead.)

    Returns:
        The list of teacher layer indices used (what `Distiller(cosine_layers=...)` takes).

    Example:
    >>> import numpy as np
    >>> from kzoo.models import BertBackbone
    >>> teacher = BertBackbone(vocabulary_size=100, num_layers=4, num_heads=2, hidden_dim=16,
    ...                        intermediate_dim=32, max_sequence_length=32)
    >>> student = student_backbone(teacher, num_layers=2)
    >>> init_student(student, teacher)
    [0, 3]
    >>> bool(np.array_equal(student.encoder.blocks[1].get_weights()[0], teacher.encoder.blocks[3].get_weights()[0]))
    True
    """
    s_backbone, t_backbone = _backbone(student), _backbone(teacher)
    _check_widths(s_backbone, t_backbone)
    layers = spread_layers(t_backbone.num_layers, s_backbone.num_layers) if layers is None else list(layers)
    if len(layers) != s_backbone.num_layers or not all(0 <= i < t_backbone.num_layers for i in layers):
        raise ValueError(f"layers={layers} must give {s_backbone.num_layers} indices of teacher layers "
                         f"(0 to {t_backbone.num_layers - 1}).")
    _copy_embeddings(s_backbone.embedding, t_backbone.embedding)
    s_blocks, t_blocks = s_backbone.encoder.unique_blocks, t_backbone.encoder.unique_blocks
    if hasattr(s_backbone.encoder, "shared_blocks"):  # ALBERT: the blocks are shared, the layer count is not
        if len(s_blocks) != len(t_blocks):
            raise ValueError(f"ALBERT student has {len(s_blocks)} shared blocks, the teacher {len(t_blocks)}; "
                             "give them the same num_groups and num_inner_repetitions.")
        pairs = zip(s_blocks, t_blocks)
    else:
        pairs = ((s_blocks[i], t_blocks[index]) for i, index in enumerate(layers))
    for s_block, t_block in pairs:
        s_block.set_weights(t_block.get_weights())
    if s_backbone.pooler is not None and t_backbone.pooler is not None:
        s_backbone.pooler.set_weights(t_backbone.pooler.get_weights())
    if (student is not s_backbone and type(student) is type(teacher)) or _both_pretrainers(student, teacher):
        _copy_heads(student, teacher)
    return layers


def _check_widths(student, teacher):
    for name in ("vocabulary_size", "hidden_dim"):
        if getattr(student, name) != getattr(teacher, name):
            raise ValueError(f"Student {name}={getattr(student, name)} differs from the teacher's "
                             f"{getattr(teacher, name)}; init_student copies weights, so they must match.")
    if student.max_sequence_length > teacher.max_sequence_length:
        raise ValueError(f"Student max_sequence_length={student.max_sequence_length} exceeds the teacher's "
                         f"{teacher.max_sequence_length}: there are no teacher positions to copy.")
    if type(student.encoder) is not type(teacher.encoder):
        raise ValueError(f"A {type(student).__name__} student cannot be initialised from a "
                         f"{type(teacher).__name__} teacher.")


def _copy_embeddings(student, teacher):
    student.token_embedding.set_weights(teacher.token_embedding.get_weights())
    positions = np.array(teacher.position_embedding.get_weights()[0][: student.max_sequence_length])
    if student.segment_embedding is not None:
        student.segment_embedding.set_weights(teacher.segment_embedding.get_weights())
    elif teacher.segment_embedding is not None:
        positions = positions + teacher.segment_embedding.get_weights()[0][0]
    student.position_embedding.set_weights([positions])
    student.layer_norm.set_weights(teacher.layer_norm.get_weights())
    if hasattr(student, "projection"):
        student.projection.set_weights(teacher.projection.get_weights())


def _both_pretrainers(student, teacher):
    from kzoo.models import Pretrainer

    return isinstance(student, Pretrainer) and isinstance(teacher, Pretrainer)


def _copy_heads(student, teacher):
    from kzoo.models import Pretrainer

    if isinstance(student, Pretrainer):
        s_head, t_head = student.mlm_head, teacher.mlm_head
        for s_layer, t_layer in ((s_head.dense, t_head.dense), (s_head.layer_norm, t_head.layer_norm)):
            s_layer.set_weights(t_layer.get_weights())
        s_head.bias.assign(np.array(t_head.bias))  # a copy: JAX would otherwise share (and donate) one buffer
        if student.pair_task is not None and student.pair_task == teacher.pair_task:
            student.pair_head.set_weights(teacher.pair_head.get_weights())
        return
    head, teacher_head = _head_variables(student), _head_variables(teacher)
    if [tuple(w.shape) for w in head] == [tuple(w.shape) for w in teacher_head]:
        for s_var, t_var in zip(head, teacher_head):
            s_var.assign(np.array(t_var))


def _head_variables(task):
    """A task model's variables outside its backbone (its heads), in creation order."""
    in_backbone = {id(v) for v in task.backbone.weights}
    return [v for v in task.weights if id(v) not in in_backbone]
