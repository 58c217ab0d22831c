"""The scores kzoo reports on a held-out split: classification accuracy and macro-F1, SQuAD's answer F1."""

import collections
import re
import string

import numpy as np


def classification_scores(labels, predictions, num_classes, majority_class):
    """accuracy, macro-F1 (mean over classes of F1, classes absent from both counted as 0 only if present in
    either), the accuracy of always answering `majority_class`, and per-class F1."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    f1 = []
    for c in range(num_classes):
        tp = np.sum((predictions == c) & (labels == c))
        fp = np.sum((predictions == c) & (labels != c))
        fn = np.sum((predictions != c) & (labels == c))
        f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    present = [c for c in range(num_classes) if np.any(labels == c) or np.any(predictions == c)]
    return {"accuracy": float(np.mean(labels == predictions)),
            "macro_f1": float(np.mean([f1[c] for c in present])),
            "majority_baseline": float(np.mean(labels == majority_class)),
            "per_class_f1": [float(v) for v in f1]}


def normalise_answer(text):
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def exact_match(prediction, truth):
    """SQuAD's exact match: the two answers are equal once normalised."""
    return normalise_answer(prediction) == normalise_answer(truth)


def squad_f1(prediction, truth):
    """SQuAD's F1 between two answers (1.0 when both are empty)."""
    predicted, expected = normalise_answer(prediction).split(), normalise_answer(truth).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((collections.Counter(predicted) & collections.Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)
