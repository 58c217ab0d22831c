"""Checkpoint folders as users find them: sharded and half-precision safetensors (against transformers),
keras-hub preset folders (against keras-hub), and tokenizer.json-only tokenizers (against transformers' fast
tokenizers)."""

import importlib.util
import json
import os
import shutil

import keras
import numpy as np
import pytest
from conftest import make_inputs, run_python
from keras import ops
from test_convert_huggingface import _close, _hf, _inputs, _kzoo_inputs, _run_hf

from kzoo.convert import from_huggingface
from kzoo.data import load_hf_tokenizer
from kzoo.data.tokenizers import save_tokenizer

pytestmark = pytest.mark.skipif(importlib.util.find_spec("transformers") is None
                                or importlib.util.find_spec("torch") is None,
                                reason="transformers and torch (the test extra) are not installed")
ATOL = 1e-5
BASE_CLASSES = {"bert": "BertModel", "distilbert": "DistilBertModel", "albert": "AlbertModel"}
# Text the tokenizers are compared on: accents, CJK, Hindi (combining marks of category Mc), quotes, digits with
# commas, emoji, tabs and newlines. Not here, because they differ: special-token strings typed in the text
# ("[MASK]": Hugging Face matches them, kzoo does not); for WordPiece, non-ASCII spaces and control characters
# (keras-hub's WordPiece splits on ASCII white space only); for ALBERT with a Precompiled charsmap, Hangul, which
# NFKD decomposes and SentencePiece's charsmap recomposes, while Hugging Face's Precompiled applies the charsmap
# per character to graphemes of 6 UTF-8 bytes or more and leaves it decomposed (tested without a charsmap below).
SENTENCES = ["It is a truth universally acknowledged, that a single man must be in want of a wife.",
             "Café crème brûlée—naïve, façade; Ångström? ÀÉÎ Straße", "  Mr.  Darcy  walked\tout\nagain ",
             "``Quoted'' text, “curly” quotes… and 'single' ones", "数学 and 日本語のテキスト", "हिन्दी पाठ",
             "I'm 9, you're 10,000 -- 3.14% (approx.) #1 @home", "emoji 😀 ok ﬁne ½", "UPPER lower MiXeD"]


def _ids(tokenizer, texts):
    out = tokenizer(texts)
    return out.to_list() if hasattr(out, "to_list") else [list(map(int, ops.convert_to_numpy(row))) for row in out]


def _parity(model, hf_model, model_type):
    """kzoo's outputs against transformers' on the same inputs (real positions only, within ATOL = 1e-5 as
    test_convert_huggingface's `_close`)."""
    ids, mask, segments = _inputs()
    with_segments = model_type != "distilbert"
    expected = _run_hf(hf_model, ids, mask, segments, with_segments)
    outputs = model(_kzoo_inputs(model, ids, mask, segments))
    _close(outputs["sequence_output"], expected.last_hidden_state, mask, "sequence_output")
    if model_type != "distilbert":
        _close(outputs["pooled_output"], expected.pooler_output, what="pooled_output")


# Sharded safetensors --------------------------------------------------------------------------------------

# Reading files and tokenizing do not depend on the backend: those tests run once, in the TensorFlow half (the
# outputs of the loaded models are compared under both backends).
ONCE = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="backend-independent: once, under TensorFlow")


@pytest.mark.parametrize("model_type", sorted(BASE_CLASSES))
def test_sharded_folder_matches_transformers(tmp_path, model_type):
    hf = _hf(model_type, BASE_CLASSES[model_type])
    hf.save_pretrained(tmp_path, max_shard_size="20KB")
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) >= 3 and not (tmp_path / "model.safetensors").exists()
    conversion = from_huggingface(str(tmp_path))
    assert not conversion.unused and not conversion.not_in_checkpoint, conversion.summary()
    _parity(conversion.model, hf, model_type)


@ONCE
def test_sharded_folder_errors_name_the_shard_and_tensor(tmp_path):
    _hf("bert", "BertModel").save_pretrained(tmp_path, max_shard_size="20KB")
    index_path = tmp_path / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    name, shard = sorted(index["weight_map"].items())[5]
    other = next(s for s in index["weight_map"].values() if s != shard)
    # The index puts a tensor in a shard that lacks it.
    moved = {**index, "weight_map": {**index["weight_map"], name: other}}
    index_path.write_text(json.dumps(moved))
    with pytest.raises(ValueError, match=rf"{other} has no tensor '{name}' although .*index.json lists it there"):
        from_huggingface(str(tmp_path))
    index_path.write_text(json.dumps(index))
    os.remove(tmp_path / shard)
    with pytest.raises(FileNotFoundError, match=rf"{shard} is missing; .*model.safetensors.index.json lists tensor"):
        from_huggingface(str(tmp_path))
    index_path.write_text(json.dumps({"weight_map": {name: "../elsewhere.safetensors"}}))
    with pytest.raises(ValueError, match=r"index.json: tensor .* a shard must be a file name in the index's folder"):
        from_huggingface(str(tmp_path))
    index_path.write_text("[]")
    with pytest.raises(ValueError, match=r"model.safetensors.index.json holds a JSON array"):
        from_huggingface(str(tmp_path))


@ONCE
def test_sharded_pickles_only_with_allow_pickle(tmp_path):
    import torch

    hf = _hf("bert", "BertModel")
    hf.save_pretrained(tmp_path)
    state = hf.state_dict()
    names = sorted(state)
    # transformers 5 writes safetensors only: the two pickle shards and their index are written here, in its
    # pytorch_model.bin.index.json layout.
    weight_map = {}
    for number, part in enumerate((names[: len(names) // 2], names[len(names) // 2:]), start=1):
        shard = f"pytorch_model-0000{number}-of-00002.bin"
        torch.save({name: state[name] for name in part}, tmp_path / shard)
        weight_map.update(dict.fromkeys(part, shard))
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    os.remove(tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"pytorch_model.bin.index.json is a pickle .*allow_pickle=True"):
        from_huggingface(str(tmp_path))
    _parity(from_huggingface(str(tmp_path), allow_pickle=True).model, hf, "bert")


# bfloat16 and float16 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("model_type", ["bert", "albert"])
def test_half_precision_folders_are_cast_exactly(tmp_path, model_type, dtype):
    import torch

    hf = _hf(model_type, BASE_CLASSES[model_type])
    hf.to(getattr(torch, dtype)).save_pretrained(tmp_path)
    header = json.loads((tmp_path / "model.safetensors").read_bytes()[8:8 + int.from_bytes(
        (tmp_path / "model.safetensors").read_bytes()[:8], "little")])
    assert {spec["dtype"] for key, spec in header.items() if key != "__metadata__"} == {
        {"bfloat16": "BF16", "float16": "F16"}[dtype]}
    conversion = from_huggingface(str(tmp_path))
    assert conversion.model.dtype_policy.name == "float32"
    # The same rounded weights in float32 on the torch side: an exact cast leaves only float32 round-off.
    _parity(conversion.model, hf.to(torch.float32), model_type)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="reads files in a fresh process, whatever the backend: once, under TensorFlow")
def test_bf16_tensors_are_read_without_keras_jax_tensorflow_or_ml_dtypes(tmp_path):
    import torch
    from safetensors.torch import load_file

    _hf("bert", "BertModel").to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    code = f"""
        import sys
        import numpy as np
        from kzoo.convert.safetensors_io import read_safetensors
        heavy = ("keras", "jax", "tensorflow", "ml_dtypes")
        assert not [name for name in heavy if name in sys.modules], [name for name in heavy if name in sys.modules]
        tensors = read_safetensors({str(tmp_path / "bf16" / "model.safetensors")!r})
        assert not [name for name in heavy if name in sys.modules], "reading imported one"
        np.savez({str(tmp_path / "read.npz")!r}, **tensors)
    """
    run_python(code, "tensorflow")
    read = np.load(tmp_path / "read.npz")
    reference = load_file(tmp_path / "bf16" / "model.safetensors")
    assert sorted(read.files) == sorted(reference)
    for name, tensor in reference.items():
        expected = tensor.float().numpy() if tensor.is_floating_point() else tensor.numpy()
        np.testing.assert_array_equal(read[name], expected, err_msg=name)


# keras-hub preset folders ---------------------------------------------------------------------------------

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox", "strasse", "straße", "cafe",
         "café", "##s", "##e", "jump", "!", ",", ".", "a", "b", "c", "数", "学"]


def _spm_proto(folder, lines, vocab_size):
    """A SentencePiece unigram model trained on `lines` (ALBERT's specials first); returns its path."""
    import sentencepiece

    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(folder / "spiece"), vocab_size=vocab_size, pad_id=0,
        unk_id=1, bos_id=2, eos_id=3, bos_piece="[CLS]", eos_piece="[SEP]", user_defined_symbols=["[MASK]"],
        hard_vocab_limit=False, minloglevel=2)
    return folder / "spiece.model"


def _corpus_lines():
    """Training text for the tiny SentencePiece models: the test sentences' scripts, many times over."""
    rng = np.random.default_rng(0)
    words = " ".join(SENTENCES).lower().split()
    return [" ".join(rng.choice(words, size=8)) for _ in range(400)] + SENTENCES * 5


def _keras_hub_folder(folder, arch):
    """A keras-hub backbone and tokenizer written with their `save_to_preset`; returns them."""
    import keras_hub

    keras.utils.set_random_seed(3)
    sizes = dict(num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=32)
    if arch == "albert":
        folder.mkdir()
        tokenizer = keras_hub.models.AlbertTokenizer(proto=str(_spm_proto(folder, _corpus_lines(), 120)))
        os.remove(folder / "spiece.model")
        hub = keras_hub.models.AlbertBackbone(vocabulary_size=tokenizer.vocabulary_size(), embedding_dim=8,
                                              num_groups=2, num_inner_repetitions=1, **sizes)
    else:
        Tokenizer = keras_hub.models.BertTokenizer if arch == "bert" else keras_hub.models.DistilBertTokenizer
        tokenizer = Tokenizer(vocabulary=WORDS, lowercase=True)
        Backbone = keras_hub.models.BertBackbone if arch == "bert" else keras_hub.models.DistilBertBackbone
        hub = Backbone(vocabulary_size=len(WORDS), **sizes)
    hub.save_to_preset(str(folder))
    tokenizer.save_to_preset(str(folder))
    return hub, tokenizer


@pytest.mark.parametrize("arch", ["bert", "distil_bert", "albert"])
def test_keras_hub_preset_folder_loads_through_from_preset(tmp_path, arch):
    from kzoo import models

    hub, hub_tokenizer = _keras_hub_folder(tmp_path / "hub", arch)
    class_name = type(hub).__name__
    backbone = getattr(models, class_name).from_preset(str(tmp_path / "hub"))
    assert type(backbone).__name__ == class_name
    x = make_inputs(backbone)
    expected, actual = hub({key: x[key] for key in hub.input}), backbone(x)
    if not isinstance(expected, dict):  # keras-hub's DistilBERT returns its sequence output alone
        expected = {"sequence_output": expected}
    mask = x["padding_mask"].astype(bool)
    for key in ("sequence_output", "pooled_output") if backbone.has_pooler else ("sequence_output",):
        got, want = ops.convert_to_numpy(actual[key]), ops.convert_to_numpy(expected[key])
        if key == "sequence_output":
            got, want = got[mask], want[mask]
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0, err_msg=key)
    tokenizer = load_hf_tokenizer(str(tmp_path / "hub"))
    assert _ids(tokenizer, SENTENCES) == _ids(hub_tokenizer, SENTENCES)
    # A task on the folder: the converted backbone, a fresh head, the folder's tokenizer.
    classifier = models.TextClassifier.from_preset(str(tmp_path / "hub"), num_classes=2, sequence_length=16)
    np.testing.assert_allclose(ops.convert_to_numpy(classifier.backbone(x)["sequence_output"])[mask],
                               ops.convert_to_numpy(expected["sequence_output"])[mask], atol=ATOL, rtol=0)
    assert classifier.preprocessor.sequence_length == 16
    assert classifier.predict(SENTENCES[:2], verbose=0).shape == (2, 2)
    fresh = models.Backbone.from_preset(str(tmp_path / "hub"), load_weights=False)
    assert not np.allclose(ops.convert_to_numpy(fresh(x)["sequence_output"])[mask],
                           ops.convert_to_numpy(expected["sequence_output"])[mask], atol=1e-3)


@ONCE
def test_keras_hub_task_folder_and_errors(tmp_path):
    import keras_hub

    from kzoo.models import AlbertBackbone, BertBackbone, TextClassifier

    hub, tokenizer = _keras_hub_folder(tmp_path / "backbone", "bert")
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=24)
    keras_hub.models.BertTextClassifier(hub, num_classes=3, preprocessor=preprocessor).save_to_preset(
        str(tmp_path / "task"))
    assert (tmp_path / "task" / "task.json").exists()
    classifier = TextClassifier.from_preset(str(tmp_path / "task"), num_classes=2)
    x = make_inputs(classifier.backbone)
    mask = x["padding_mask"].astype(bool)
    np.testing.assert_allclose(ops.convert_to_numpy(classifier.backbone(x)["sequence_output"])[mask],
                               ops.convert_to_numpy(hub(x)["sequence_output"])[mask], atol=ATOL, rtol=0)
    assert classifier.num_classes == 2 and classifier.preprocessor.sequence_length == 24
    assert classifier.preprocessor.encode(["the quick fox"])[0]["token_ids"][0][:5].tolist() == [2, 5, 6, 8, 3]

    with pytest.raises(ValueError, match=r"backbone holds a keras-hub BertBackbone, not a AlbertBackbone"):
        AlbertBackbone.from_preset(str(tmp_path / "backbone"))
    shutil.copytree(tmp_path / "backbone", tmp_path / "no_weights")
    weights = (tmp_path / "no_weights" / "model.weights.h5").read_bytes()
    (tmp_path / "no_weights" / "model.weights.h5").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ValueError, match=r"no_weights/model.weights.h5 is truncated or corrupt"):
        BertBackbone.from_preset(str(tmp_path / "no_weights"))
    os.remove(tmp_path / "no_weights" / "model.weights.h5")
    with pytest.raises(FileNotFoundError, match=r"no_weights/model.weights.h5 is missing"):
        BertBackbone.from_preset(str(tmp_path / "no_weights"))
    assert BertBackbone.from_preset(str(tmp_path / "no_weights"), load_weights=False).num_layers == 2
    os.remove(tmp_path / "no_weights" / "assets" / "tokenizer" / "vocabulary.txt")
    with pytest.raises(FileNotFoundError, match=r"assets/tokenizer/vocabulary.txt \(or vocabulary.spm\) is missing"):
        TextClassifier.from_preset(str(tmp_path / "no_weights"), num_classes=2, load_weights=False)
    config = json.loads((tmp_path / "no_weights" / "config.json").read_text())
    (tmp_path / "no_weights" / "config.json").write_text(json.dumps({**config, "class_name": "GemmaBackbone",
                                                                     "registered_name": "keras_hub>GemmaBackbone"}))
    with pytest.raises(ValueError, match=r"config.json: keras_hub>GemmaBackbone is not a keras-hub backbone kzoo"):
        BertBackbone.from_preset(str(tmp_path / "no_weights"), load_weights=False)


# tokenizer.json-only folders ------------------------------------------------------------------------------

def _tokenizer_json_folder(tmp_path, model_type):
    """transformers' fast tokenizer for `model_type` saved with save_pretrained, its vocab.txt / spiece.model
    deleted: only tokenizer.json (and tokenizer_config.json) remain."""
    import transformers

    source = tmp_path / "source"
    source.mkdir()
    if model_type == "albert":
        _spm_proto(source, _corpus_lines(), 150)
        Tokenizer = transformers.AlbertTokenizer
    else:
        words = sorted({word for line in _corpus_lines() for word in line.lower().split()})
        characters = sorted({char for word in words for char in word})
        (source / "vocab.txt").write_text("\n".join(
            ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *characters, *(f"##{c}" for c in characters),
             *(w for w in words if len(w) > 1)]) + "\n", encoding="utf-8")
        Tokenizer = transformers.BertTokenizer if model_type == "bert" else transformers.DistilBertTokenizer
    hf = Tokenizer.from_pretrained(str(source))  # (transformers 5 reads a vocabulary file through a folder)
    hf.save_pretrained(str(tmp_path / "hf"))
    for name in ("vocab.txt", "spiece.model"):
        if (tmp_path / "hf" / name).exists():
            os.remove(tmp_path / "hf" / name)
    assert "tokenizer.json" in os.listdir(tmp_path / "hf")
    return tmp_path / "hf", transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))


@ONCE
@pytest.mark.parametrize("model_type", sorted(BASE_CLASSES))
def test_tokenizer_json_only_folders_give_transformers_ids(tmp_path, model_type):
    folder, hf = _tokenizer_json_folder(tmp_path, model_type)
    tokenizer = load_hf_tokenizer(str(folder))
    expected = [hf(text, add_special_tokens=False)["input_ids"] for text in SENTENCES]
    assert _ids(tokenizer, SENTENCES) == expected
    assert sum(map(len, expected)) > 5 * len(SENTENCES) and hf.unk_token_id not in expected[0]
    # Saved as kzoo saves tokenizers (vocab.txt / spiece.model + tokenizer_config.json), the ids stay.
    (tmp_path / "saved").mkdir()
    save_tokenizer(tokenizer, str(tmp_path / "saved"))
    assert _ids(load_hf_tokenizer(str(tmp_path / "saved")), SENTENCES) == expected


@ONCE
def test_albert_tokenizer_json_without_charsmap(tmp_path):
    """The same ALBERT tokenizer.json without its Precompiled normalizer (no SentencePiece charsmap): kzoo then
    maps Unicode white space itself, as WhitespaceSplit sees it."""
    import transformers

    folder, _ = _tokenizer_json_folder(tmp_path, "albert")
    spec = json.loads((folder / "tokenizer.json").read_text())
    spec["normalizer"]["normalizers"] = [n for n in spec["normalizer"]["normalizers"] if n["type"] != "Precompiled"]
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    hf = transformers.AutoTokenizer.from_pretrained(str(folder))
    texts = SENTENCES + ["a\u00a0b\u3000c\u2028d", "\u2003tab\t\tend\x0b", "한국어 텍스트"]
    assert _ids(load_hf_tokenizer(str(folder)), texts) == [
        hf(text, add_special_tokens=False)["input_ids"] for text in texts]
    spec["normalizer"]["normalizers"].append({"type": "Prepend", "prepend": "x"})
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"tokenizer.json: normalizer .*Prepend.* is not one kzoo reproduces"):
        load_hf_tokenizer(str(folder))

