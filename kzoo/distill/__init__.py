"""Knowledge distillation: the `Distiller`, its losses, and students made from a teacher (docs/design.md §6)."""

from kzoo.distill.distiller import DISTILBERT_LOSS_WEIGHTS, UNLABELLED, Distiller
from kzoo.distill.losses import cosine_loss, kd_loss
from kzoo.distill.student import init_student, spread_layers, student_backbone

__all__ = ["DISTILBERT_LOSS_WEIGHTS", "UNLABELLED", "Distiller", "cosine_loss", "init_student", "kd_loss",
           "spread_layers", "student_backbone"]
