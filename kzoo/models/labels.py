"""A task's label set: class names or plain ids, checked where users hand labels in (JAX would silently clamp an
out-of-range id in the loss)."""

import numpy as np


def resolve_label_set(owner, num_classes=None, label_names=None):
    """(num_classes, label_names) after checking they agree; `label_names` fixes `num_classes` when given."""
    if label_names is not None:
        label_names = [str(name) for name in label_names]
        if len(set(label_names)) != len(label_names):
            raise ValueError(f"label_names has duplicates: {label_names}.")
        if num_classes is not None and int(num_classes) != len(label_names):
            raise ValueError(f"num_classes={num_classes} but {len(label_names)} label_names.")
        num_classes = len(label_names)
    if num_classes is None:
        raise ValueError(f"{owner} needs num_classes or label_names.")
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
    return int(num_classes), label_names


def label_ids(labels, num_classes, label_names=None, where=""):
    """Class ids (int32) of `labels`: names in `label_names` or ints in [0, num_classes); a ValueError names the
    first bad label (and `where` it was, e.g. " in example 3")."""
    labels = list(labels)
    if label_names is not None and labels and isinstance(labels[0], str):
        index = {name: i for i, name in enumerate(label_names)}
        unknown = sorted({label for label in labels if label not in index})
        if unknown:
            raise ValueError(f"label(s) {unknown[:5]}{where} are not in the label set {label_names}.")
        return np.array([index[label] for label in labels], "int32")
    ids = np.asarray(labels)
    if ids.size and ids.dtype.kind not in "iu":
        raise ValueError(f"labels must be class ids or names in label_names; got {ids.dtype} values "
                         f"{labels[:3]}{where}.")
    bad = np.flatnonzero((ids < 0) | (ids >= num_classes))
    if bad.size:
        raise ValueError(f"label {int(ids[bad[0]])} (example {int(bad[0])}){where} is outside the label set "
                         f"[0, {num_classes}).")
    return ids.astype("int32")


def label_names_of(ids, label_names):
    """Predicted ids → names (with `label_names`) or plain ints."""
    return [label_names[i] if label_names is not None else int(i) for i in ids]
