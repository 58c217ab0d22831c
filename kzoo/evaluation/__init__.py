"""What a run reports: classification and answer-span scores, paired comparisons of two models on the same
examples, and per-token MLM scores."""

from kzoo.evaluation.paired import describe_paired, paired_accuracy_difference, sign_flip_p
from kzoo.evaluation.scores import classification_scores, exact_match, squad_f1

__all__ = ["classification_scores", "describe_paired", "exact_match", "paired_accuracy_difference", "sign_flip_p",
           "squad_f1"]
