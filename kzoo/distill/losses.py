"""Distillation losses (docs/design.md §6), written with `keras.ops` so they run inside every backend's train step.

Both reduce to a weighted mean: Σ w·loss / Σ w over the positions a caller weights (an example, a masked
position, a non-padding token), so padding and unused prediction slots never dilute them; under
`tf.distribute` each replica returns its share of the global batch's mean (`kzoo.replicas.weighted_mean`).
"""

from keras import ops

from kzoo.replicas import weighted_mean


def kd_loss(teacher_logits, student_logits, temperature=2.0, weights=None):
    """Hinton et al.'s soft-label loss: T² · KL(softmax(t/T) ‖ softmax(s/T)), softmax over the last axis.

    The T² factor keeps its gradients on the scale of the hard-label loss whatever T is. `weights` has the
    logits' shape without the last axis (e.g. MLM mask weights); computed in float32 under mixed precision.

    Args:
        teacher_logits: (..., classes) logits of the teacher.
        student_logits: the student's, of the same shape.
        temperature: the softmax temperature T.
        weights: each position's weight, the logits' shape without the last axis; None: all equal.

    Returns:
        A float32 scalar: the weighted mean of T²·KL over the positions.

    Example:
    >>> import numpy as np
    >>> float(kd_loss(np.array([[1.0, 2.0]]), np.array([[1.0, 2.0]]))) == 0.0
    True
    """
    t = ops.cast(teacher_logits, "float32") / temperature
    s = ops.cast(student_logits, "float32") / temperature
    log_p_teacher = ops.log_softmax(t, axis=-1)
    log_p_student = ops.log_softmax(s, axis=-1)
    kl = ops.sum(ops.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
    return (temperature ** 2) * weighted_mean(kl, weights)


def cosine_loss(student_hidden, teacher_hidden, padding_mask=None):
    """DistilBERT's hidden-state loss: mean of 1 − cos(h_s, h_t) over the non-padding tokens.

    Args:
        student_hidden: (batch, sequence, hidden) student states.
        teacher_hidden: the teacher's, of the same shape.
        padding_mask: (batch, sequence) token weights, 0 for padding; None: every token.

    Returns:
        A float32 scalar.

    Example:
    >>> import numpy as np
    >>> h = np.random.rand(2, 3, 4).astype("float32")
    >>> round(float(cosine_loss(h, 2 * h)), 6)
    0.0
    """
    s = ops.cast(student_hidden, "float32")
    t = ops.cast(teacher_hidden, "float32")
    dot = ops.sum(s * t, axis=-1)
    norms = ops.sqrt(ops.sum(s * s, axis=-1) * ops.sum(t * t, axis=-1))
    return weighted_mean(1.0 - dot / ops.maximum(norms, 1e-12), padding_mask)
