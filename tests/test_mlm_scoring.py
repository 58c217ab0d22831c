"""Per-token MLM scoring: every held-out token hidden exactly once, its context restored, in a fixed order."""

import numpy as np
import pytest
import tensorflow as tf

from kzoo.evaluation.mlm_scoring import (TARGET_KINDS, every_token_correctness, masked_target_kinds,
                                         masked_token_correctness)

PAD, CLS, SEP, MASK, VOCABULARY = 0, 2, 3, 4, 40


def _held_out():
    """Two rows as the pretraining pipeline yields them: targets shown as [MASK], a random id or themselves."""
    original = np.array([[CLS, 11, 12, 13, 14, 15, 16, 17, 18, SEP],
                         [CLS, 21, 22, 23, 24, SEP, PAD, PAD, PAD, PAD]], "int32")
    token_ids = original.copy()
    token_ids[0, 3], token_ids[0, 7], token_ids[1, 2] = MASK, 30, MASK  # 80/10/10: [MASK], random, [MASK];
    # row 1's second target (position 4) is kept as itself
    x = {"token_ids": token_ids, "padding_mask": (original != PAD).astype("int32"),
         "mask_positions": np.array([[3, 7, 0], [2, 4, 0]], "int32")}
    y = {"mlm": np.array([[13, 17, 0], [22, 24, 0]], "int32")}
    weights = np.array([[1, 1, 0], [1, 1, 0]], "float32")
    return original, tf.data.Dataset.from_tensors((x, y, weights))


def _one_hot_logits(ids):
    return np.eye(VOCABULARY, dtype="float32")[ids]


def test_every_token_hidden_once_with_its_context_restored():
    original, batches = _held_out()
    hidden_at = []

    def oracle(x):
        hidden = x["token_ids"] == MASK
        assert np.array_equal(np.where(hidden, original, x["token_ids"]), original)  # only [MASK] differs
        rows, positions = np.nonzero(hidden)
        hidden_at.extend(zip(rows.tolist(), positions.tolist()))
        # every hidden position is a target and every real target is hidden
        targets = {(r, p) for r in range(2) for p in x["mask_positions"][r] if hidden[r, p]}
        assert targets == set(zip(rows.tolist(), positions.tolist()))
        return _one_hot_logits(np.take_along_axis(original, x["mask_positions"], axis=1))

    correct = every_token_correctness(oracle, batches, MASK, [CLS, SEP, PAD], passes=3)
    eligible = ~np.isin(original, [CLS, SEP, PAD])
    assert correct.shape == (eligible.sum(),) and correct.all()
    assert sorted(hidden_at) == sorted(zip(*map(np.ndarray.tolist, np.nonzero(eligible))))  # each exactly once

    def copy_input(x):  # predicts the token it is shown: [MASK] at every target, so never right
        return _one_hot_logits(np.take_along_axis(x["token_ids"], x["mask_positions"], axis=1))

    assert not every_token_correctness(copy_input, batches, MASK, [CLS, SEP, PAD], passes=3).any()
    with pytest.raises(ValueError, match="passes must be ≥ 2"):
        every_token_correctness(oracle, batches, MASK, [CLS, SEP, PAD], passes=1)


def test_masked_token_correctness_scores_real_targets_only():
    original, batches = _held_out()
    correct = masked_token_correctness(
        lambda x: _one_hot_logits(np.take_along_axis(x["token_ids"], x["mask_positions"], axis=1)), batches)
    # shown at the four real targets: [MASK], the random 30, [MASK] and the kept 24; padded targets left out
    assert correct.tolist() == [False, False, False, True]
    oracle = masked_token_correctness(
        lambda x: _one_hot_logits(np.take_along_axis(original, x["mask_positions"], axis=1)), batches)
    assert oracle.tolist() == [True] * 4
    assert [TARGET_KINDS[k] for k in masked_target_kinds(batches, MASK)] == ["mask", "random", "mask", "kept"]
