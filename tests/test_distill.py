"""Distiller: teacher frozen, only the student trains, α = 1 is plain training, the losses against numpy,
student initialisation against the chosen teacher layers, MLM distillation end to end, bad input."""

import importlib.util

import keras
import numpy as np
import pytest
from conftest import VOCAB, make_backbone, make_inputs, run_python, word_preprocessor
from test_finetune import WORDS, preprocessor, sentiment_texts, write_sentiment_jsonl  # noqa: F401 (a fixture)

from kzoo.distill import (DISTILBERT_LOSS_WEIGHTS, UNLABELLED, Distiller, cosine_loss, init_student, kd_loss,
                          spread_layers, student_backbone)
from kzoo.models import (BertBackbone, BertPretrainer, DistilBertBackbone, DistilBertMaskedLM, TextClassifier,
                         TokenClassifier)


def _numpy_kd(teacher, student, temperature, weights=None):
    def log_softmax(z):
        z = z / temperature
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    log_t, log_s = log_softmax(teacher.astype("float64")), log_softmax(student.astype("float64"))
    kl = (np.exp(log_t) * (log_t - log_s)).sum(-1)
    weights = np.ones_like(kl) if weights is None else weights
    return temperature ** 2 * (kl * weights).sum() / weights.sum()


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0])
def test_kd_loss_equals_numpy_reference(temperature):
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(size=(2, 4, 7, 11)).astype("float32") * 3
    weights = (rng.random((4, 7)) > 0.4).astype("float32")
    for w in (None, weights):
        got = float(keras.ops.convert_to_numpy(kd_loss(teacher, student, temperature, w)))
        assert got == pytest.approx(_numpy_kd(teacher, student, temperature, w), rel=1e-5)
    assert float(kd_loss(teacher, teacher, temperature)) == pytest.approx(0.0, abs=1e-6)


def _numpy_cosine(s, t, mask):
    s, t = np.asarray(s, "float64"), np.asarray(t, "float64")
    cos = (s * t).sum(-1) / np.linalg.norm(s, axis=-1) / np.linalg.norm(t, axis=-1)
    return ((1 - cos) * mask).sum() / mask.sum()


def test_cosine_loss_equals_numpy_reference_on_real_tokens_only():
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=(2, 3, 5, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], "int32")
    expected = _numpy_cosine(s, t, mask)
    assert float(keras.ops.convert_to_numpy(cosine_loss(s, t, mask))) == pytest.approx(expected, rel=1e-5)


def test_spread_layers_matches_distilbert():
    assert spread_layers(12, 6) == [0, 2, 4, 7, 9, 11]
    assert spread_layers(6, 3) == [0, 2, 5]
    assert spread_layers(4, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="between 1 and 6"):
        spread_layers(6, 7)


def _weights_equal(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_init_student_bert_to_distilbert_copies_chosen_layers_and_folds_token_types():
    teacher = BertPretrainer(make_backbone("bert", num_layers=12))
    student = DistilBertMaskedLM(student_backbone(teacher, 6, "distil_bert"))
    assert isinstance(student.backbone, DistilBertBackbone) and student.backbone.num_layers == 6
    assert init_student(student, teacher) == [0, 2, 4, 7, 9, 11]
    t, s = teacher.backbone, student.backbone
    for i, j in enumerate([0, 2, 4, 7, 9, 11]):
        assert _weights_equal(s.encoder.blocks[i].get_weights(), t.encoder.blocks[j].get_weights())
    assert not _weights_equal(s.encoder.blocks[1].get_weights(), t.encoder.blocks[1].get_weights())
    positions = t.embedding.position_embedding.get_weights()[0] + t.embedding.segment_embedding.get_weights()[0][0]
    np.testing.assert_array_equal(s.embedding.position_embedding.get_weights()[0], positions)
    np.testing.assert_array_equal(s.token_embedding.get_weights()[0], t.token_embedding.get_weights()[0])
    for name in ("dense", "layer_norm"):
        assert _weights_equal(getattr(student.mlm_head, name).get_weights(),
                              getattr(teacher.mlm_head, name).get_weights())
    np.testing.assert_array_equal(np.array(student.mlm_head.bias), np.array(teacher.mlm_head.bias))
    # Single-segment text: the folded student's embedding output equals the teacher's.
    x = make_inputs(t, pad=False)
    x["segment_ids"][:] = 0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(s.embedding(x["token_ids"])),
                               keras.ops.convert_to_numpy(t.embedding(x["token_ids"], x["segment_ids"])), atol=1e-5)


def test_init_student_shallower_bert_classifier_copies_pooler_and_head():
    teacher = TextClassifier(make_backbone("bert", num_layers=6), num_classes=3)
    student = TextClassifier(student_backbone(teacher, 3), num_classes=3)
    assert init_student(student, teacher, layers=[1, 3, 5]) == [1, 3, 5]
    for i, j in enumerate([1, 3, 5]):
        assert _weights_equal(student.backbone.encoder.blocks[i].get_weights(),
                              teacher.backbone.encoder.blocks[j].get_weights())
    assert _weights_equal(student.backbone.pooler.get_weights(), teacher.backbone.pooler.get_weights())
    assert _weights_equal(student.classifier.get_weights(), teacher.classifier.get_weights())
    with pytest.raises(ValueError, match="hidden_dim"):
        init_student(TextClassifier(make_backbone("bert", hidden_dim=8, num_heads=2), num_classes=3), teacher)


def _padded_inputs(backbone, batch, length):
    """Random inputs whose rows are padded to three different lengths."""
    x = make_inputs(backbone, batch=batch, length=length, pad=False)
    x["padding_mask"] = (np.arange(length)[None, :] < length - 3 * (np.arange(batch)[:, None] % 3)).astype("int32")
    x["token_ids"] *= x["padding_mask"]
    x["segment_ids"] *= x["padding_mask"]
    return x


def _classifier_pair(num_layers=4, dropout=0.1):
    teacher = TextClassifier(make_backbone("bert", num_layers=num_layers, dropout=dropout), num_classes=3)
    student = TextClassifier(student_backbone(teacher, 2), num_classes=3)
    init_student(student, teacher)
    return student, teacher


def _classification_data(n=24, length=10):
    x = make_inputs(make_backbone("bert"), batch=n, length=length, pad=False)
    y = (x["token_ids"][:, 1] % 3).astype("int32")
    return x, y


@pytest.mark.parametrize("cosine_layers", [None, [0, 3]], ids=["last-layer", "every-layer"])
def test_teacher_bit_identical_and_only_student_trains(cosine_layers):
    student, teacher = _classifier_pair()
    teacher_before = [np.array(w) for w in teacher.get_weights()]
    student_before = [np.array(w) for w in student.trainable_weights]
    distiller = Distiller(student, teacher, temperature=3.0, alpha=0.3, cosine_weight=0.5,
                          cosine_layers=cosine_layers)
    assert {id(v) for v in distiller.trainable_variables} == {id(v) for v in student.trainable_variables}
    assert not {id(v) for v in distiller.trainable_variables} & {id(v) for v in teacher.weights}
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = _classification_data()
    history = distiller.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert {"loss", "hard_loss", "kd_loss", "cosine_loss", "accuracy"} <= set(history.history)
    assert all(np.isfinite(v).all() for v in history.history.values())
    assert _weights_equal(teacher.get_weights(), teacher_before)
    changed = [not np.array_equal(np.array(a), b) for a, b in zip(student.trainable_weights, student_before)]
    assert all(changed), f"{changed.count(False)} student variables got no update"
    logs = distiller.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(0.3 * logs["hard_loss"] + 0.7 * logs["kd_loss"]
                                         + 0.5 * logs["cosine_loss"], rel=1e-4)


def _hidden_states(model, x):
    inputs = {key: keras.ops.convert_to_tensor(x[key]) for key in model.backbone.input_keys}
    return [keras.ops.convert_to_numpy(h) for h in model.backbone.with_hidden_states()(inputs)["hidden_states"]]


def test_layerwise_cosine_loss_pairs_each_student_layer_with_its_teacher_layer():
    student, teacher = _classifier_pair()  # 4 → 2 layers: the student's are the teacher's [0, 3]
    rng = np.random.default_rng(0)
    for variable in teacher.trainable_weights:  # far from a fresh model's near-identity layers
        variable.assign(rng.normal(0.0, 0.3, variable.shape).astype("float32"))
    init_student(student, teacher)
    x = _padded_inputs(teacher.backbone, 6, 9)
    y = np.arange(6) % 3
    mask = x["padding_mask"]
    s_hidden, t_hidden = _hidden_states(student, x), _hidden_states(teacher, x)
    pairs = [_numpy_cosine(s_hidden[1], t_hidden[1], mask), _numpy_cosine(s_hidden[2], t_hidden[4], mask)]
    # Student layer 0 is teacher layer 0 on the same embeddings: that pair starts at exactly zero.
    assert pairs[0] == pytest.approx(0.0, abs=1e-6) and pairs[1] > 0.05
    last_layers = _numpy_cosine(s_hidden[-1], t_hidden[-1], mask)
    for cosine_layers, expected in (([0, 3], np.mean(pairs)), (None, last_layers)):
        distiller = Distiller(student, teacher, cosine_weight=2.0, cosine_layers=cosine_layers)
        student_out, teacher_out = distiller.student_forward(x), distiller.teacher_forward(x)
        losses = distiller.compute_losses(x, y, None, student_out, teacher_out)
        assert float(losses["cosine_loss"]) == pytest.approx(expected, rel=1e-5, abs=1e-7)
        # The other losses read the same logits as the models' own call.
        logits = keras.ops.convert_to_numpy(student_out["outputs"])
        np.testing.assert_allclose(logits, keras.ops.convert_to_numpy(student(x)), rtol=0, atol=1e-5)
        kd = _numpy_kd(keras.ops.convert_to_numpy(teacher(x)), logits, 2.0)
        assert float(losses["kd_loss"]) == pytest.approx(kd, rel=1e-5, abs=1e-6)
        assert float(losses["loss"]) == pytest.approx(0.5 * float(losses["hard_loss"]) + 0.5 * kd
                                                      + 2.0 * expected, rel=1e-5)
        assert Distiller.from_config(distiller.get_config()).cosine_layers == cosine_layers


def test_cosine_loss_weights_tokens_by_their_examples_sample_weight():
    """Rows a task model's sample weights leave out add no cosine loss either (they add no hard or KD loss)."""
    student, teacher = _classifier_pair()
    rng = np.random.default_rng(0)
    for variable in teacher.trainable_weights:
        variable.assign(rng.normal(0.0, 0.3, variable.shape).astype("float32"))
    x = _padded_inputs(teacher.backbone, 6, 9)
    y = np.arange(6) % 3
    sample_weight = np.array([1.0, 0.0, 2.0, 0.0, 1.0, 0.5], "float32")
    s_last, t_last = _hidden_states(student, x)[-1], _hidden_states(teacher, x)[-1]
    distiller = Distiller(student, teacher, cosine_weight=1.0)
    losses = distiller.compute_losses(x, y, sample_weight, distiller.student_forward(x), distiller.teacher_forward(x))
    expected = _numpy_cosine(s_last, t_last, x["padding_mask"] * sample_weight[:, None])
    assert expected != pytest.approx(_numpy_cosine(s_last, t_last, x["padding_mask"]), rel=1e-3)
    assert float(losses["cosine_loss"]) == pytest.approx(expected, rel=1e-5)
    before = [np.array(w) for w in student.trainable_weights]  # all weights 0: nothing to learn from
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    distiller.fit(x, y, sample_weight=np.zeros(6, "float32"), batch_size=6, epochs=1, verbose=0)
    assert _weights_equal([np.array(w) for w in student.trainable_weights], before)


def test_feature_model_with_hidden_states_shares_weights_and_outputs():
    """A pretrainer's feature view (its MLM head reads mask positions from the inputs) with every hidden state:
    the same outputs as the model, the backbone's hidden states, and no weight of its own."""
    model = BertPretrainer(make_backbone("bert", num_layers=3))
    x, _, _ = _mlm_batch(model.backbone)
    features = model.feature_model(hidden_states=True)
    out = features({key: keras.ops.convert_to_tensor(value) for key, value in x.items()})
    for key, value in model(x).items():
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out["outputs"][key]),
                                   keras.ops.convert_to_numpy(value), rtol=0, atol=1e-5)
    expected = _hidden_states(model, x)
    assert len(out["hidden_states"]) == len(expected) == 4
    for got, want in zip(out["hidden_states"], expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=0, atol=1e-6)
    assert {id(w) for w in features.weights} == {id(w) for w in model.weights}


def test_alpha_one_trains_exactly_like_plain_training():
    x, y = _classification_data()
    weights = _classifier_pair()[0].get_weights()

    def fresh_student():
        keras.utils.set_random_seed(7)  # the same dropout seeds for both students
        model = TextClassifier(make_backbone("bert", num_layers=2, dropout=0.1), num_classes=3)
        model.set_weights(weights)
        return model

    plain = fresh_student()
    plain.compile(optimizer=keras.optimizers.SGD(0.1), metrics=[])
    plain.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    distilled = fresh_student()
    teacher = TextClassifier(make_backbone("bert", num_layers=3), num_classes=3)
    distiller = Distiller(distilled, teacher, alpha=1.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    distiller.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(plain.get_weights(), distilled.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert not _weights_equal(plain.get_weights(), weights)


@pytest.mark.skipif(not hasattr(keras, "distillation"), reason="keras.distillation arrived in Keras 3.12")
def test_same_steps_as_keras_distiller_on_the_same_batches():
    """Keras' own Distiller (α·CE + (1 − α)·T²·KL of the softmaxes) as an independent reference: from the same
    start, on the same batches, with the same SGD, both move the student to the same weights (dropout 0).
    Its KL needs a `KLDivergence()` instance: with the default `loss="kl_divergence"` (a function, which fails its
    `isinstance(loss, KLDivergence)` check, Keras 3.15) it applies the KL to the scaled logits themselves, clipped
    to [1e-7, 1], without softmax or T², and takes other steps."""
    x, y = _classification_data()
    ours, teacher = _classifier_pair(dropout=0.0)
    theirs = TextClassifier(student_backbone(teacher, 2), num_classes=3)
    start = ours.get_weights()
    theirs.set_weights(start)
    distiller = Distiller(ours, teacher, temperature=3.0, alpha=0.3)
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    distiller.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    reference = keras.distillation.Distiller(
        teacher=teacher, student=theirs, student_loss_weight=0.3,
        distillation_losses=keras.distillation.LogitsDistillation(temperature=3.0, loss=keras.losses.KLDivergence()))
    reference.compile(optimizer=keras.optimizers.SGD(0.5),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    reference.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(ours.get_weights(), start))
    assert moved > 1e-2  # 6 steps moved the student, so agreeing to 1e-5 below means the same steps
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_transfer_set_keeps_rows_that_match_and_drops_held_out_texts(tmp_path):
    import json

    from kzoo.recipes.distill import DistillConfig, transfer_set

    rows = [{"text": "a", "p": "x", "c": 0.5}, {"text": "b", "p": "y", "c": 0.9}, {"text": "c", "p": "z", "c": 0.1},
            {"text": "d", "p": "w", "c": 0.3}, {"text": "d", "p": "v", "c": 0.3}]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = DistillConfig(task="classify", data=str(data), source="-", out="-", transfer_where="c<0.8")
    assert transfer_set(config, [["c"], ["x"]], report=lambda _: None) == ["a", "d", "d"]  # "b" fails the where
    paired = DistillConfig(task="classify", data=str(data), source="-", out="-", pair_field="p", transfer_where="c<0.8")
    assert transfer_set(paired, [(["d"], ["w"])], report=lambda _: None) == (["a", "c", "d"], ["x", "z", "v"])
    with pytest.raises(ValueError, match="No transfer-set row"):
        transfer_set(config, [["a", "c", "d"]], report=lambda _: None)
    with pytest.raises(ValueError, match="transfer set .* is for classify"):
        DistillConfig(task="tokens", data=str(data), source="-", out="-", transfer_where="c<0.8")


def test_unlabelled_rows_learn_from_the_teacher_alone(preprocessor):
    """A transfer set: rows labelled UNLABELLED add KD and no hard-label loss, against a numpy reference."""
    student, teacher = _classifier_pair(dropout=0.0)
    x, y = _classification_data()
    y = np.where(np.arange(len(y)) % 3 == 0, UNLABELLED, y).astype("int32")
    distiller = Distiller(student, teacher, temperature=2.0, alpha=0.4, kd_weight=0.6)
    rng = np.random.default_rng(0)
    s, t = rng.normal(0, 2, (2, len(y), 3))  # the two models' logits
    losses = distiller.compute_losses(x, y, None, {"outputs": s.astype("float32")}, {"outputs": t.astype("float32")})
    log_p = s - s.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    labelled = y >= 0
    hard = -log_p[labelled, y[labelled]].sum() / len(y)  # Keras' mean over the batch; 0 for the unlabelled rows
    assert float(losses["hard_loss"]) == pytest.approx(hard, rel=1e-5)
    assert float(losses["kd_loss"]) == pytest.approx(_numpy_kd(t, s, 2.0), rel=1e-5)  # KD on every row
    assert float(losses["loss"]) == pytest.approx(0.4 * hard + 0.6 * _numpy_kd(t, s, 2.0), rel=1e-5)

    # Hard labels only (kd_weight 0) on unlabelled rows alone: no gradient reaches the student.
    before = student.get_weights()
    hard_only = Distiller(student, teacher, alpha=1.0, kd_weight=0.0)
    hard_only.compile(optimizer=keras.optimizers.SGD(0.5))
    hard_only.fit(x, np.full(len(y), UNLABELLED, "int32"), batch_size=8, epochs=1, verbose=0)
    assert _weights_equal(student.get_weights(), before)

    # Raw text: a label of None marks a transfer-set example.
    texts, labels = sentiment_texts(12, seed=3)
    teacher = TextClassifier(make_backbone("bert", vocabulary_size=len(WORDS) + 5, num_layers=2), num_classes=2,
                             preprocessor=preprocessor, label_names=["negative", "positive"])
    student = TextClassifier(student_backbone(teacher, 1), num_classes=2, label_names=["negative", "positive"])
    distiller = Distiller(student, teacher)
    with_gaps = [None if i % 2 else label for i, label in enumerate(labels)]
    encoded = distiller.encode_examples(texts, with_gaps)
    expected = [UNLABELLED if i % 2 else ["negative", "positive"].index(label) for i, label in enumerate(labels)]
    assert encoded.y.tolist() == expected
    distiller.compile(optimizer="adam")
    history = distiller.fit(texts, with_gaps, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def _mlm_batch(backbone, batch=16, length=12, predictions=3):
    rng = np.random.default_rng(0)
    x = _padded_inputs(backbone, batch, length)
    x["mask_positions"] = np.stack([rng.choice(5, predictions, replace=False) + 1
                                    for _ in range(batch)]).astype("int32")
    mask_ids = np.take_along_axis(x["token_ids"], x["mask_positions"], axis=1)
    mask_weights = np.ones((batch, predictions), "float32")
    mask_weights[:, -1] = 0.0  # an unused prediction slot
    return x, mask_ids, mask_weights


def test_alpha_one_mlm_trains_exactly_like_plain_pretraining():
    """The MLM student inside a Distiller without a cosine loss takes the same step as its own `fit` (which
    computes the last layer at the masked positions only); the forward equals the full graph's."""
    teacher = BertPretrainer(make_backbone("bert", num_layers=3, dropout=0.1))
    x, mask_ids, mask_weights = _mlm_batch(teacher.backbone)
    student_x = {k: v for k, v in x.items() if k != "segment_ids"}
    weights = DistilBertMaskedLM(student_backbone(teacher, 2, "distil_bert")).get_weights()

    def fresh_student():
        keras.utils.set_random_seed(7)  # the same dropout seeds for both students
        model = DistilBertMaskedLM(student_backbone(teacher, 2, "distil_bert"))
        model.set_weights(weights)
        return model

    plain = fresh_student()
    plain.compile(optimizer=keras.optimizers.SGD(0.1))
    plain.fit(student_x, mask_ids, sample_weight=mask_weights, batch_size=8, epochs=2, shuffle=False, verbose=0)
    distilled = fresh_student()
    distiller = Distiller(distilled, teacher, alpha=1.0)
    full = distilled.feature_model()({k: keras.ops.convert_to_tensor(v) for k, v in student_x.items()})["outputs"]
    fast = distiller.student_forward(x)["outputs"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fast["mlm"]), keras.ops.convert_to_numpy(full["mlm"]),
                               rtol=0, atol=1e-5)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    distiller.fit(x, mask_ids, sample_weight=mask_weights, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(plain.get_weights(), distilled.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert not _weights_equal(plain.get_weights(), weights)


def test_mlm_distillation_bert_to_distilbert_triple_loss():
    teacher = BertPretrainer(make_backbone("bert", num_layers=4, dropout=0.1))
    student = DistilBertMaskedLM(student_backbone(teacher, 2, "distil_bert"))
    init_student(student, teacher)
    x, mask_ids, mask_weights = _mlm_batch(teacher.backbone)
    for positions in ("masked", "all"):
        distiller = Distiller(student, teacher, mlm_kd_positions=positions, **DISTILBERT_LOSS_WEIGHTS)
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
        history = distiller.fit(x, mask_ids, sample_weight=mask_weights, batch_size=8, epochs=1, verbose=0)
        assert {"loss", "hard_loss", "kd_loss", "cosine_loss", "mlm_accuracy"} <= set(history.history)
        logs = distiller.evaluate(x, mask_ids, sample_weight=mask_weights, verbose=0, return_dict=True)
        assert logs["loss"] == pytest.approx(5 * logs["kd_loss"] + 2 * logs["hard_loss"] + logs["cosine_loss"],
                                             rel=1e-4)
    # The hard MLM loss equals the student's own pretraining loss on the same batch, whether the logits come
    # from the masked positions or are gathered from every position; KD at the masked slots equals numpy's.
    masked, everywhere = Distiller(student, teacher, mlm_kd_positions="masked"), Distiller(student, teacher)
    out, teacher_out = masked.student_forward(x), masked.teacher_forward(x)
    expected = float(student.pretraining_losses(mask_ids, out["outputs"], mask_weights)["mlm"])
    losses = masked.compute_losses(x, mask_ids, mask_weights, out, teacher_out)
    assert float(losses["hard_loss"]) == pytest.approx(expected, rel=1e-5)
    all_losses = everywhere.compute_losses(x, mask_ids, mask_weights, everywhere.student_forward(x),
                                           everywhere.teacher_forward(x))
    assert float(all_losses["hard_loss"]) == pytest.approx(expected, rel=1e-5)
    s_logits, t_logits = (keras.ops.convert_to_numpy(o["outputs"]["mlm"]) for o in (out, teacher_out))
    # (absolute: a small KL is a sum of differences of nearby fp32 log-probabilities)
    assert float(losses["kd_loss"]) == pytest.approx(_numpy_kd(t_logits, s_logits, 2.0, mask_weights), abs=1e-6)


def test_token_classifier_distillation_and_student_saving(tmp_path):
    teacher = TokenClassifier(make_backbone("bert", num_layers=3), num_classes=4)
    student = TokenClassifier(student_backbone(teacher, 1), num_classes=4)
    init_student(student, teacher)
    x = _padded_inputs(teacher.backbone, 8, 10)
    y = (x["token_ids"] % 4).astype("int32")
    distiller = Distiller(student, teacher, alpha=0.5)
    distiller.compile(optimizer="adam")
    distiller.fit(x, y, sample_weight=x["padding_mask"].astype("float32"), epochs=1, verbose=0)
    path = str(tmp_path / "student.weights.h5")
    distiller.student.save_weights(path)
    restored = TokenClassifier(student_backbone(teacher, 1), num_classes=4)
    restored.load_weights(path)
    assert _weights_equal(restored.get_weights(), student.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(distiller.predict(x, verbose=0)),
                               keras.ops.convert_to_numpy(student.predict(x, verbose=0)), atol=1e-6)
    config = distiller.get_config()
    clone = Distiller.from_config(config)
    assert clone.get_config()["temperature"] == config["temperature"] and type(clone.student) is TokenClassifier


def test_mixed_bfloat16_models_distill_with_float32_losses():
    teacher = TextClassifier(make_backbone("bert", num_layers=2, dtype="mixed_bfloat16"), num_classes=3)
    student = TextClassifier(student_backbone(teacher, 1), num_classes=3)
    assert student.backbone.dtype_policy.name == "mixed_bfloat16"
    init_student(student, teacher)
    distiller = Distiller(student, teacher, cosine_weight=1.0)
    distiller.compile(optimizer="adam")
    x, y = _classification_data(n=16)
    logs = distiller.fit(x, y, batch_size=8, verbose=0).history
    assert all(np.isfinite(v).all() for v in logs.values()), logs
    assert all(v.dtype == "float32" for v in student.trainable_weights)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA-compiled TF train step")
def test_tensorflow_jit_compiled_step():
    student, teacher = _classifier_pair()
    distiller = Distiller(student, teacher)
    distiller.compile(optimizer="adam", jit_compile=True)
    x, y = _classification_data()
    assert np.isfinite(distiller.fit(x, y, batch_size=8, verbose=0).history["loss"][0])


def test_bad_input_gives_clear_errors():
    student, teacher = _classifier_pair()
    with pytest.raises(ValueError, match="classes"):
        Distiller(TextClassifier(student.backbone, num_classes=2), teacher)
    with pytest.raises(ValueError, match="cannot learn from"):
        Distiller(TokenClassifier(student.backbone, num_classes=3), teacher)
    with pytest.raises(ValueError, match="Distiller takes"):
        Distiller(student.backbone, teacher)
    for temperature in (0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            Distiller(student, teacher, temperature=temperature)
    for alpha in (-1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\] when kd_weight is not given"):
            Distiller(student, teacher, alpha=alpha)
    assert Distiller(student, teacher, alpha=2.0, kd_weight=5.0).kd_weight == 5.0  # DistilBERT's weights
    with pytest.raises(ValueError, match="cosine_weight must be a finite number ≥ 0"):
        Distiller(student, teacher, cosine_weight=float("nan"))
    for layers in ([0.7, 3], "03"):
        with pytest.raises(ValueError, match="cosine_layers must be a list of teacher layer indices"):
            Distiller(student, teacher, cosine_weight=1.0, cosine_layers=layers)
    with pytest.raises(ValueError, match="one teacher layer per student layer: 2"):
        Distiller(student, teacher, cosine_weight=1.0, cosine_layers=[3])
    with pytest.raises(ValueError, match=r"\[0, 4\]: the teacher's layers are 0 to 3"):
        Distiller(student, teacher, cosine_weight=1.0, cosine_layers=[0, 4])
    with pytest.raises(ValueError, match="set cosine_weight"):
        Distiller(student, teacher, cosine_layers=[0, 3])
    with pytest.raises(ValueError, match="takes no `loss`"):
        Distiller(student, teacher).compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="vocabularies"):
        Distiller(DistilBertMaskedLM(make_backbone("distil_bert", vocabulary_size=VOCAB + 1)),
                  BertPretrainer(make_backbone("bert")))
    with pytest.raises(ValueError, match="Unknown student architecture"):
        student_backbone(teacher, 1, "gpt")
    assert isinstance(student.backbone, BertBackbone)


def test_student_with_another_tokenizer_is_refused(preprocessor, tmp_path):
    """The Distiller encodes text with the teacher's tokenizer: a student whose own tokenizer maps words to
    other ids (same vocabulary size) would learn from ids it never sees when served."""
    reordered = word_preprocessor(tmp_path / "vocab.txt", WORDS[::-1], sequence_length=24)
    vocabulary_size = len(WORDS) + 5
    teacher = TextClassifier(make_backbone("bert", vocabulary_size=vocabulary_size), num_classes=2,
                             preprocessor=preprocessor)
    student = TextClassifier(student_backbone(teacher, 1), num_classes=2, preprocessor=reordered)
    with pytest.raises(ValueError, match="another vocabulary than the teacher's"):
        Distiller(student, teacher)
    student.preprocessor = preprocessor
    assert Distiller(student, teacher).preprocessor is preprocessor


def test_every_token_mlm_kd_rejects_mask_positions_outside_the_sequence():
    """KD at every token gathers the hard-label slots from the full logits itself: a position past the
    sequence must fail by name, not read a clamped (JAX) or wrapped-around token."""
    for bad in (8, -1):
        # fresh models each time: Keras' JAX trainer leaves the models of a failed fit unusable
        teacher = BertPretrainer(make_backbone("bert", num_layers=2))
        distiller = Distiller(DistilBertMaskedLM(student_backbone(teacher, 1, "distil_bert")), teacher,
                              **DISTILBERT_LOSS_WEIGHTS)
        distiller.compile(optimizer="adam")
        x, mask_ids, mask_weights = _mlm_batch(teacher.backbone, batch=4, length=8)
        x["mask_positions"][1, 0] = bad
        # JAX: "mask_positions has value 8 at index ...; every value must be in [0, 8)"; TF: a graph assert
        with pytest.raises(Exception, match=r"mask_positions .*in \[0, 8\)"):
            distiller.fit(x, mask_ids, sample_weight=mask_weights, batch_size=4, epochs=1, verbose=0)


def test_backup_and_restore_resumes_the_distillers_optimizer(tmp_path):
    """A run killed after epoch 2 and resumed from its backup ends where an uninterrupted run ends: the
    backup holds the optimizer's state (Adam's moments, its step count), not only the student's weights."""
    from kzoo.train.backup import AtomicBackupAndRestore

    x, y = _classification_data(n=16)

    def fresh_distiller():
        student, teacher = _classifier_pair(dropout=0.0)
        distiller = Distiller(student, teacher, cosine_weight=1.0)
        distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
        return distiller

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("killed")

    fit = dict(batch_size=8, epochs=4, shuffle=False, verbose=0)
    whole = fresh_distiller()
    whole.fit(x, y, **fit)
    crashed = fresh_distiller()
    with pytest.raises(RuntimeError, match="killed"):
        crashed.fit(x, y, callbacks=[AtomicBackupAndRestore(str(tmp_path)), Crash()], **fit)
    resumed = fresh_distiller()
    resumed.fit(x, y, callbacks=[AtomicBackupAndRestore(str(tmp_path))], **fit)
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == 8
    for a, b in zip(resumed.student.get_weights(), whole.student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="one torch run is enough")
def test_torch_backend_distills():
    out = run_python("""
        import numpy as np, keras
        from kzoo.distill import Distiller, init_student, student_backbone
        from kzoo.models import BertBackbone, TextClassifier
        teacher = TextClassifier(BertBackbone(vocabulary_size=60, num_layers=4, num_heads=2, hidden_dim=16,
                                              intermediate_dim=32, max_sequence_length=16), num_classes=2)
        student = TextClassifier(student_backbone(teacher, 2), num_classes=2)
        init_student(student, teacher)
        before = [np.array(w) for w in teacher.get_weights()]
        distiller = Distiller(student, teacher, cosine_weight=1.0)
        distiller.compile(optimizer="adam")
        x = {"token_ids": np.random.randint(3, 60, (16, 8)), "segment_ids": np.zeros((16, 8), "int32"),
             "padding_mask": np.ones((16, 8), "int32")}
        logs = distiller.fit(x, np.arange(16) % 2, batch_size=8, epochs=2, verbose=0).history
        assert all(np.isfinite(v).all() for v in logs.values()), logs
        assert all(np.array_equal(a, b) for a, b in zip(teacher.get_weights(), before))
        print("ok", keras.backend.backend())
    """, "torch")
    assert "ok torch" in out


def test_distill_command_teacher_to_student_with_baseline(tmp_path, preprocessor, capsys):
    import json

    from kzoo.cli import main

    data = write_sentiment_jsonl(tmp_path / "data.jsonl", 600, seed=2)
    source = tmp_path / "source"
    TextClassifier(make_backbone("bert", vocabulary_size=len(WORDS) + 5, num_layers=4), num_classes=2,
                   preprocessor=preprocessor).save_to_preset(str(source))
    common = ["--data", str(data), "--epochs", "3", "--batch-size", "16", "--learning-rate", "5e-3", "--quiet"]
    assert main(["finetune", "--task", "classify", "--from", str(source), "--out", str(tmp_path / "teacher")]
                + common) == 0
    teacher_dir = tmp_path / "teacher" / "best"
    teacher_bytes = (teacher_dir / "model.weights.h5").read_bytes()
    unlabelled = tmp_path / "unlabelled.jsonl"  # a transfer set: texts without labels
    unlabelled.write_text("".join(json.dumps({"text": t}) + "\n" for t in sentiment_texts(100, seed=5)[0]))
    assert main(["distill", "--teacher", str(teacher_dir), "--out", str(tmp_path / "student"), "--student-layers",
                 "2", "--temperature", "2", "--alpha", "0.5", "--hard-label-baseline", "--transfer-data",
                 str(unlabelled), "--training-seed", "1"] + common) == 0
    metrics = json.loads((tmp_path / "student" / "metrics.json").read_text())
    assert metrics["student_layers"] == [0, 3]
    assert (metrics["seed"], metrics["training_seed"]) == (0, 1)
    assert 80 < metrics["examples"]["transfer"] <= 100  # less any text that is also a validation or test text
    teacher_metrics = json.loads((tmp_path / "teacher" / "metrics.json").read_text())
    assert metrics["teacher"]["accuracy"] == pytest.approx(teacher_metrics["accuracy"])  # same test split
    assert metrics["distilled"]["accuracy"] > metrics["teacher"]["majority_baseline"] + 0.2, metrics
    assert metrics["accuracy_ratio"] == pytest.approx(metrics["distilled"]["accuracy"] / metrics["teacher"]["accuracy"])
    assert metrics["distilled"]["encoder_parameters"] < metrics["teacher"]["encoder_parameters"]
    assert {"hard_labels", "speedup_same_batch"} <= set(metrics)
    paired = metrics["distilled_vs_hard_labels"]  # scored on the same test rows as the two accuracies
    assert paired["difference"] == pytest.approx(metrics["distilled"]["accuracy"] - metrics["hard_labels"]["accuracy"])
    assert paired["interval_95"][0] <= paired["difference"] <= paired["interval_95"][1]
    assert (teacher_dir / "model.weights.h5").read_bytes() == teacher_bytes
    student = TextClassifier.from_preset(str(tmp_path / "student" / "best"))
    assert student.backbone.num_layers == 2 and student.preprocessor is not None
    assert main(["distill", "--task", "qa", "--teacher", str(teacher_dir), "--out", str(tmp_path / "x")]
                + common) == 2

    # --student-init: the student's layers come from the checkpoint the teacher was fine-tuned from; with a
    # layer-wise cosine loss against the teacher's layers at the spread positions.
    assert main(["distill", "--teacher", str(teacher_dir), "--out", str(tmp_path / "general"), "--student-layers",
                 "2", "--student-init", str(source), "--cosine-weight", "1", "--cosine-layers", "spread"]
                + common + ["--epochs", "1", "--max-train-examples", "64"]) == 0
    general = json.loads((tmp_path / "general" / "metrics.json").read_text())
    assert (general["student_init"], general["cosine_layers"]) == (str(source), [0, 3])
    assert "cosine_loss" in (tmp_path / "general" / "distilled.csv").read_text().splitlines()[0].split(",")
    assert main(["distill", "--teacher", str(teacher_dir), "--out", str(tmp_path / "y"), "--cosine-layers", "spread"]
                + common) == 2  # no --cosine-weight: refused before any training, nothing written
    assert "--cosine-weight above 0" in capsys.readouterr().err and not (tmp_path / "y").exists()


def test_student_init_copies_another_checkpoints_layers_and_keeps_a_fresh_head(tmp_path, preprocessor):
    from kzoo.distill.student import _head_variables
    from kzoo.recipes.distill import DistillConfig, init_source, make_student

    def classifier(vocabulary=preprocessor):
        return TextClassifier(make_backbone("bert", vocabulary_size=len(WORDS) + 5, num_layers=4),
                              label_names=["neg", "pos"], preprocessor=vocabulary)

    teacher, general = classifier(), classifier()
    for block in teacher.backbone.encoder.unique_blocks:  # a "fine-tuned" teacher: its layers moved
        block.set_weights([w + 0.5 for w in block.get_weights()])
    general.save_to_preset(str(tmp_path / "general"))
    config = DistillConfig(task="classify", data="-", source="-", out="-", student_layers=2,
                           student_init=str(tmp_path / "general"))
    student, layers = make_student(config, teacher, init_source(config, teacher))
    assert layers == [0, 3]
    for s_block, index in zip(student.backbone.encoder.unique_blocks, layers):
        for s_w, g_w in zip(s_block.get_weights(), general.backbone.encoder.unique_blocks[index].get_weights()):
            np.testing.assert_array_equal(s_w, g_w)
        for s_w, t_w in zip(s_block.get_weights(), teacher.backbone.encoder.unique_blocks[index].get_weights()):
            assert not np.array_equal(s_w, t_w)
    assert student.preprocessor is teacher.preprocessor
    head, teacher_head = _head_variables(student), _head_variables(teacher)
    assert not np.array_equal(keras.ops.convert_to_numpy(head[0]), keras.ops.convert_to_numpy(teacher_head[0]))

    # the same size, other tokens: the teacher's ids would mean other words
    classifier(word_preprocessor(tmp_path / "other_vocab.txt", WORDS[::-1], sequence_length=24)).save_to_preset(
        str(tmp_path / "other"))
    with pytest.raises(ValueError, match="another vocabulary than the teacher"):
        init_source(DistillConfig(task="classify", data="-", source="-", out="-", student_init=str(tmp_path / "other")),
                     teacher)


@pytest.mark.parametrize("student_init", [False, True], ids=["from-teacher", "student-init"])
def test_hard_label_baseline_is_the_distilled_student_trained_with_alpha_one(tmp_path, preprocessor, student_init):
    """With α = 1 distillation is plain training, so the baseline (the same student: same start, data order and
    dropout draws, only the loss differs) must end with the distilled student's weights."""
    from kzoo.cli import main

    data = write_sentiment_jsonl(tmp_path / "data.jsonl", 160, seed=3)
    teacher = tmp_path / "teacher"
    TextClassifier(make_backbone("bert", vocabulary_size=len(WORDS) + 5, num_layers=4, dropout=0.3),
                   label_names=["negative", "positive"], preprocessor=preprocessor).save_to_preset(str(teacher))
    out = tmp_path / "student"
    assert main(["distill", "--teacher", str(teacher), "--data", str(data), "--out", str(out), "--student-layers",
                 "2", "--alpha", "1", "--hard-label-baseline", "--epochs", "2", "--batch-size", "16",
                 "--learning-rate", "5e-3", "--training-seed", "3", "--quiet"]
                + (["--student-init", str(teacher)] if student_init else [])) == 0
    distilled = TextClassifier.from_preset(str(out / "best"))
    baseline = TextClassifier.from_preset(str(out / "hard_labels" / "best"))
    start = TextClassifier.from_preset(str(teacher)).backbone.token_embedding.get_weights()[0]
    assert not np.allclose(distilled.backbone.token_embedding.get_weights()[0], start)  # it trained
    for d, b in zip(distilled.get_weights(), baseline.get_weights()):
        np.testing.assert_allclose(d, b, rtol=0, atol=1e-5)
