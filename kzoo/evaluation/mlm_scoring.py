"""Per-token MLM scores on held-out batches, in a fixed order, so that paired tests can compare two models.

`predict(x)` is any model's MLM logits (batch, targets, vocabulary) at `x["mask_positions"]`, e.g.
`lambda x: student.predict_on_batch(x)["mlm"]`; `batches` is a finite `tf.data` of (x, y, weights) as
`kzoo.data.pipeline.pretraining_dataset(..., repeat=False)` yields them.
"""

import numpy as np


def _targets(y, weights):
    labels = np.asarray(y["mlm"] if isinstance(y, dict) else y)
    is_target = np.asarray(weights["mlm"] if isinstance(weights, dict) else weights) > 0
    return labels, is_target


def masked_token_correctness(predict, batches):
    """0/1 per real masked token of `batches`: is the top prediction the token?"""
    correct = []
    for x, y, weights in batches.as_numpy_iterator():
        labels, is_target = _targets(y, weights)
        correct.append((np.asarray(predict(x)).argmax(-1) == labels)[is_target])
    return np.concatenate(correct)


TARGET_KINDS = ("mask", "random", "kept")  # what the model was shown at a target: 80/10/10


def masked_target_kinds(batches, mask_id):
    """Per real masked token of `batches`, in `masked_token_correctness`'s order: 0 if the input there is [MASK],
    1 if a random id replaced it, 2 if it shows the token itself (kept, or a random draw of the same id: the model
    sees the answer either way); `TARGET_KINDS` names them."""
    kinds = []
    for x, y, weights in batches.as_numpy_iterator():
        labels, is_target = _targets(y, weights)
        shown = np.take_along_axis(np.asarray(x["token_ids"]), np.asarray(x["mask_positions"]), axis=1)
        kinds.append(np.where(shown == mask_id, 0, np.where(shown == labels, 2, 1))[is_target].astype("int8"))
    return np.concatenate(kinds)


def every_token_correctness(predict, batches, mask_id, special_ids, passes=7):
    """0/1 per non-special token of the rows of `batches`, each hidden as [MASK] exactly once.

    One masking draw scores ~15% of the held-out tokens; this scores all of them, each a distinct target, so a
    paired test between two models has ~6× the targets without counting any token twice. The rows are rebuilt
    unmasked from (x, y, weights); pass k of `passes` hides the non-special positions p with p % passes == k
    (all as [MASK], no 10% random / 10% kept), so each row keeps about (passes − 1) / passes of its context.

    Example:
        correct = every_token_correctness(lambda x: model.predict_on_batch(x)["mlm"], held_out, ids.mask,
                                          [ids.cls, ids.sep, ids.pad])
    """
    if passes < 2:
        raise ValueError(f"passes must be ≥ 2 (pass k hides every passes-th position); got {passes}.")
    correct = []
    for x, y, weights in batches.as_numpy_iterator():
        labels, is_target = _targets(y, weights)
        original = np.array(x["token_ids"])
        original[np.nonzero(is_target)[0], np.asarray(x["mask_positions"])[is_target]] = labels[is_target]
        eligible = ~np.isin(original, special_ids)
        length = original.shape[1]
        hit = np.zeros(original.shape, bool)
        for k in range(passes):
            hidden = eligible & (np.arange(length) % passes == k)
            order = np.argsort(~hidden, axis=1, kind="stable")[:, :-(-length // passes)]  # hidden ones first
            chosen = np.take_along_axis(hidden, order, axis=1)
            positions = np.where(chosen, order, 0).astype("int32")
            logits = predict({**x, "token_ids": np.where(hidden, mask_id, original).astype("int32"),
                              "mask_positions": positions})
            right = np.asarray(logits).argmax(-1) == np.take_along_axis(original, positions, axis=1)
            hit[np.nonzero(chosen)[0], positions[chosen]] = right[chosen]
        correct.append(hit[eligible])
    return np.concatenate(correct)
