"""Fine-tuning on raw strings: length-bucketed batches, TextClassifier fit/predict/save on text, LoRA, bad input."""

import json

import numpy as np
import pytest
from conftest import make_backbone, word_preprocessor

from kzoo.data.labelled_files import split_rows
from kzoo.data.task_inputs import BucketedBatches
from kzoo.evaluation import classification_scores, paired_accuracy_difference
from kzoo.models import TextClassifier

WORDS = ["good", "great", "fine", "nice", "bad", "awful", "poor", "sad", "the", "movie", "was", "very", "a", "day"]


@pytest.fixture(scope="module")
def preprocessor(tmp_path_factory):
    return word_preprocessor(tmp_path_factory.mktemp("vocab") / "vocab.txt", WORDS, sequence_length=24)


def sentiment_texts(count, seed=0):
    """Sentences of 1-15 words; the label is whether positive or negative words are in the majority."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(count):
        label = int(rng.integers(2))
        polar = WORDS[:4] if label else WORDS[4:8]
        words = list(rng.choice(polar, int(rng.integers(1, 4)))) + list(rng.choice(WORDS[8:], int(rng.integers(0, 12))))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(["negative", "positive"][label])
    return texts, labels


def write_sentiment_jsonl(path, count, seed=0):
    """`sentiment_texts(count, seed)` written to `path` as JSON lines {"text", "label"}, as `kzoo finetune` reads."""
    texts, labels = sentiment_texts(count, seed)
    path.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in zip(texts, labels)))
    return path


def test_batches_cover_every_example_once_padded_to_their_longest(preprocessor):
    texts, labels = sentiment_texts(203)
    inputs, lengths = preprocessor.encode(texts)
    assert lengths.tolist() == [len(t.split()) + 2 for t in texts]  # one piece per word plus [CLS] [SEP]
    for shuffle in (False, True):
        batches = BucketedBatches(inputs, lengths, np.arange(len(texts)), batch_size=16, shuffle=shuffle)
        seen = []
        for index in range(len(batches)):
            x, y = batches[index]
            width = x["token_ids"].shape[1]
            assert width == min(24, -(-int(lengths[y].max()) // 16) * 16)
            assert np.all(x["padding_mask"].sum(1) == lengths[y])
            seen += y.tolist()
        assert sorted(seen) == list(range(len(texts)))
    sorted_batches = BucketedBatches(inputs, lengths, batch_size=16)
    assert np.all(np.diff(lengths[sorted_batches.order]) >= 0)
    # For 4 devices (JAX shards each batch evenly): 203 = 12 x 16 + 11 rows; the short batch keeps 8, and which
    # 3 rows are skipped changes from epoch to epoch.
    batches = BucketedBatches(inputs, lengths, np.arange(len(texts)), batch_size=16, shuffle=True, multiple=4)
    skipped = []
    for _ in range(2):
        rows = [batches[index][1] for index in range(len(batches))]
        assert all(len(r) % 4 == 0 for r in rows) and sum(map(len, rows)) == 200
        skipped.append(set(range(len(texts))) - set(np.concatenate(rows).tolist()))
        batches.on_epoch_end()
    assert skipped[0] != skipped[1]
    with pytest.raises(ValueError, match="3 examples cannot make one batch split over 4 devices"):
        BucketedBatches({k: v[:3] for k, v in inputs.items()}, lengths[:3], multiple=4)


def test_classifier_learns_from_raw_text_and_round_trips(preprocessor, tmp_path):
    import keras

    texts, labels = sentiment_texts(600)
    keras.utils.set_random_seed(0)
    model = TextClassifier(make_backbone("bert", vocabulary_size=len(WORDS) + 5), label_names=["negative", "positive"],
                           preprocessor=preprocessor)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(texts[:500], labels[:500], batch_size=32, epochs=6, verbose=0)
    predicted = model.predict_labels(texts[500:])
    accuracy = np.mean(np.array(predicted) == np.array(labels[500:]))
    assert accuracy > 0.9, accuracy
    # evaluate runs the batches in length order: narrow ones first, wider ones later, on every backend.
    evaluated = model.evaluate(texts[500:], labels[500:], batch_size=16, return_dict=True, verbose=0)
    assert evaluated["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    # Raw-text predictions come back in the caller's order and equal the model on each example's own ids.
    logits = model.predict(texts[500:540])
    one_by_one = np.concatenate([keras.ops.convert_to_numpy(model(preprocessor([t]))) for t in texts[500:540]])
    np.testing.assert_allclose(logits, one_by_one, atol=1e-5)
    model.save_to_preset(str(tmp_path / "classifier"))
    loaded = TextClassifier.from_preset(str(tmp_path / "classifier"))
    assert loaded.label_names == ["negative", "positive"] and loaded.preprocessor.sequence_length == 24
    np.testing.assert_allclose(loaded.predict(texts[500:540]), logits, atol=1e-6)


def test_lora_trains_only_adapters_and_heads(preprocessor):
    import keras

    texts, labels = sentiment_texts(64)
    model = TextClassifier(make_backbone("bert", vocabulary_size=len(WORDS) + 5), label_names=["negative", "positive"],
                           preprocessor=preprocessor)
    model.enable_lora(2)
    trainable = {v.path for v in model.trainable_weights}
    assert trainable and all("lora" in p or "bias" in p or p.startswith("classifier") for p in trainable), trainable
    frozen = {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.non_trainable_weights}
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(texts, labels, batch_size=16, epochs=1, verbose=0)
    for variable in model.non_trainable_weights:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), frozen[variable.path])


def test_bad_input_is_named(preprocessor):
    model = TextClassifier(make_backbone("bert", vocabulary_size=len(WORDS) + 5), label_names=["negative", "positive"],
                           preprocessor=preprocessor)
    model.compile()
    with pytest.raises(ValueError, match=r"\['neutral'\] are not in the label set"):
        model.fit(["good day", "bad day"], ["positive", "neutral"], verbose=0)
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        model.predict(["good", "   "])
    with pytest.raises(ValueError, match="label 2 .* outside the label set"):
        model.fit(["good day", "bad day"], [1, 2], verbose=0)
    with pytest.raises(ValueError, match="no preprocessor"):
        TextClassifier(make_backbone("bert"), num_classes=2).predict(["good"])


def test_scores_and_split():
    # 3 classes: per-class F1 by hand — class 0: tp 2 fp 1 fn 0 → 0.8; class 1: tp 1 fp 1 fn 1 → 0.5; class 2: 0.
    scores = classification_scores([0, 0, 1, 1, 2], [0, 0, 1, 0, 1], 3, majority_class=0)
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["per_class_f1"] == pytest.approx([0.8, 0.5, 0.0])
    assert scores["macro_f1"] == pytest.approx((0.8 + 0.5) / 3)
    assert scores["majority_baseline"] == pytest.approx(2 / 5)
    rows = [{"i": i} for i in range(100)]
    train, test = split_rows(rows, 0.2, seed=3)
    assert len(test) == 20 and sorted(r["i"] for r in train + test) == list(range(100))
    assert split_rows(rows, 0.2, seed=3)[1] == test


def test_paired_accuracy_difference_against_scipy_and_bootstrap_coverage():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(4)
    truth_a, truth_b = rng.random(3000) < 0.90, rng.random(3000) < 0.87
    paired = paired_accuracy_difference(truth_a, truth_b, rounds=4000)
    assert paired["difference"] == pytest.approx(truth_a.mean() - truth_b.mean())
    assert paired["only_a_right"] == np.sum(truth_a & ~truth_b) and paired["only_b_right"] == np.sum(~truth_a & truth_b)
    exact = stats.binomtest(paired["only_a_right"], paired["only_a_right"] + paired["only_b_right"]).pvalue
    assert paired["mcnemar_p"] == pytest.approx(exact, rel=1e-9)
    # The paired bootstrap's interval has the width of the normal one for a mean of the per-example differences.
    gain = truth_a.astype(float) - truth_b
    normal = 1.96 * gain.std(ddof=1) / np.sqrt(gain.size)
    low, high = paired["interval_95"]
    assert (high - low) / 2 == pytest.approx(normal, rel=0.1)
    same = paired_accuracy_difference(truth_a, truth_a)
    assert same["difference"] == 0 and same["mcnemar_p"] == 1.0 and same["interval_95"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="equal-length"):
        paired_accuracy_difference(truth_a, truth_b[:10])
    # Several runs of each (runs × examples): the difference of the mean accuracies, a bootstrap and a sign-flip
    # test with the examples as the units, so copies of one run add no certainty.
    runs_a, runs_b = np.stack([truth_a, rng.random(3000) < 0.90]), np.stack([truth_b, rng.random(3000) < 0.87])
    pooled = paired_accuracy_difference(runs_a, runs_b, rounds=4000)
    assert pooled["difference"] == pytest.approx(runs_a.mean() - runs_b.mean())
    assert pooled["run_differences"] == pytest.approx([truth_a.mean() - truth_b.mean(),
                                                       runs_a[1].mean() - runs_b[1].mean()])
    assert pooled["only_a_right"] == np.sum(runs_a & ~runs_b) and pooled["only_b_right"] == np.sum(~runs_a & runs_b)
    per_example = (runs_a.astype(float) - runs_b).mean(axis=0)
    low, high = pooled["interval_95"]
    assert (high - low) / 2 == pytest.approx(1.96 * per_example.std(ddof=1) / np.sqrt(per_example.size), rel=0.1)
    gains = (runs_a.astype(int) - runs_b).sum(axis=0)[:500]  # the sign-flip null's normal limit, at p ≈ 0.05:
    z = (abs(gains.sum()) - 1) / np.sqrt(np.sum(gains ** 2))  # variance Σg², the sum moves in steps of 2
    assert paired_accuracy_difference(runs_a[:, :500], runs_b[:, :500])["sign_flip_p"] == pytest.approx(
        2 * stats.norm.sf(z), rel=0.02)
    twice = paired_accuracy_difference(np.stack([truth_a, truth_a]), np.stack([truth_b, truth_b]), rounds=4000)
    assert twice["difference"] == pytest.approx(paired["difference"]) and twice["interval_95"] == paired["interval_95"]
    assert twice["sign_flip_p"] == pytest.approx(paired["mcnemar_p"], rel=1e-9)
    assert paired_accuracy_difference([truth_a], [truth_b], rounds=4000) == paired  # one run: McNemar


def test_sign_flip_p_against_enumerating_every_sign():
    from itertools import product

    from kzoo.evaluation import sign_flip_p

    gains = np.array([2, 1, 0, -1, 2, 3, 1, -2, 1, 0, 2, 1])  # summed over three runs: magnitudes 0 to 3
    nonzero = np.abs(gains[gains != 0])
    sums = np.array([np.dot(signs, nonzero) for signs in product([-1, 1], repeat=nonzero.size)])
    assert sign_flip_p(gains) == pytest.approx(np.mean(np.abs(sums) >= abs(gains.sum())), rel=1e-12)
    assert sign_flip_p(np.zeros(5, int)) == 1.0 and sign_flip_p(-gains) == sign_flip_p(gains)


def test_finetune_command_reports_held_out_scores(tmp_path, preprocessor):
    from kzoo.cli import main

    data = write_sentiment_jsonl(tmp_path / "data.jsonl", 800, seed=1)
    source = tmp_path / "source"
    backbone = make_backbone("bert", vocabulary_size=len(WORDS) + 5)
    TextClassifier(backbone, num_classes=2, preprocessor=preprocessor).save_to_preset(str(source))
    assert main(["finetune", "--task", "classify", "--data", str(data), "--from", str(source), "--out",
                 str(tmp_path / "run"), "--epochs", "5", "--batch-size", "16", "--learning-rate", "5e-3", "--quiet"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["accuracy"] > metrics["majority_baseline"] + 0.2, metrics
    assert set(metrics) >= {"accuracy", "macro_f1", "majority_baseline"}
    assert (tmp_path / "run" / "best" / "model.weights.h5").is_file()
    assert main(["finetune", "--task", "summarize", "--data", str(data), "--from", str(source), "--out",
                 str(tmp_path / "x")]) == 2


def test_training_seed_replicates_a_run_on_the_same_split(tmp_path, preprocessor):
    """--seed fixes the split; --training-seed (default: --seed) alone changes the new head's start, batches
    and dropout: the same training seed gives the same weights, another one other weights."""
    from kzoo.cli import main
    from kzoo.recipes.finetune import FinetuneConfig, load_splits
    from kzoo.recipes.finetune_tasks import TASKS

    data = write_sentiment_jsonl(tmp_path / "data.jsonl", 160, seed=4)
    source = tmp_path / "source"
    TextClassifier(make_backbone("bert", vocabulary_size=len(WORDS) + 5), num_classes=2,
                   preprocessor=preprocessor).save_to_preset(str(source))
    runs = {"default": [], "same": ["--training-seed", "3"], "other": ["--training-seed", "4"]}
    weights = {}
    for name, extra in runs.items():
        out = tmp_path / name
        assert main(["finetune", "--task", "classify", "--data", str(data), "--from", str(source), "--out", str(out),
                     "--seed", "3", "--epochs", "1", "--batch-size", "16", "--quiet"] + extra) == 0
        weights[name] = TextClassifier.from_preset(str(out / "best")).get_weights()
        metrics = json.loads((out / "metrics.json").read_text())
        assert (metrics["seed"], metrics["training_seed"]) == (3, 4 if name == "other" else 3)
        assert metrics["examples"] == {"train": 115, "validation": 13, "test": 32}
    assert all(np.array_equal(a, b) for a, b in zip(weights["default"], weights["same"]))
    assert not all(np.array_equal(a, b) for a, b in zip(weights["default"], weights["other"]))

    def split(**seeds):
        config = FinetuneConfig(task="classify", data=str(data), source="", out="", **seeds)
        return load_splits(config, TASKS["classify"], report=lambda *_: None)

    assert split(seed=3) == split(seed=3, training_seed=4) and split(seed=3)[2] != split(seed=4)[2]  # --seed alone
