"""Every bad file at load time gives one line that names the file and what is wrong with it (issue 29, 6 and 7).

Preset folders, Hugging Face folders, vocabularies and keras-hub objects, each broken one way per case. A
ValueError or FileNotFoundError is what `kzoo <command>` reports as "kzoo <command>: error: ..." (exit 2).
File checks and messages do not depend on the backend: they run under TensorFlow only. Every backend loads a
good folder (its weights into that backend's variables). Models are built once per module and copied per case.
"""

import importlib.util
import json
import os
import shutil

import keras
import numpy as np
import pytest
from conftest import make_backbone, word_preprocessor

from kzoo import file_checks
from kzoo.data.tokenizers import LowercaseSentencePieceTokenizer, load_wordpiece, special_ids
from kzoo.models import (AlbertBackbone, Backbone, BertBackbone, BertPretrainer, TextClassifier, TokenClassifier,
                         load_preset_folder)

WORDS = ["the", "cat", "sat", "on", "mat"]
tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                     reason="file checks, the same on every backend")
needs_transformers = pytest.mark.skipif(importlib.util.find_spec("transformers") is None
                                        or importlib.util.find_spec("torch") is None,
                                        reason="transformers and torch (the test extra) are not installed")


def noise(size):
    """`size` bytes that look random, the same on every run."""
    return np.random.default_rng(size).bytes(size)


def raises_one_line(error_type, pattern, call, *args, **kwargs):
    """Run `call`, expect `error_type` matching `pattern`, and check that the message is one line."""
    with pytest.raises(error_type, match=pattern) as caught:
        call(*args, **kwargs)
    assert "\n" not in str(caught.value), str(caught.value)
    return caught.value


# Preset folders ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_folder(tmp_path_factory):
    """A TextClassifier preset with a tokenizer: config.json, model.weights.h5, vocab.txt, tokenizer_config.json,
    preprocessor.json."""
    root = tmp_path_factory.mktemp("good")
    preprocessor = word_preprocessor(root / "words.txt", WORDS, sequence_length=16)
    model = TextClassifier(make_backbone("bert"), num_classes=2, preprocessor=preprocessor)
    model.save_to_preset(str(root / "classifier"))
    return root / "classifier"


@pytest.fixture
def folder(good_folder, tmp_path):
    """A fresh copy of the good preset folder, to break."""
    return shutil.copytree(good_folder, tmp_path / "preset")


def write(path, data):
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)


def replace_with_directory(path):
    path.unlink()
    path.mkdir()


def replace_with_link_loop(path):
    path.unlink()
    os.symlink(path, path)


def truncate(path, size=4000):
    path.write_bytes(path.read_bytes()[:size])


def edit_config(folder, edit):
    path = folder / "config.json"
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))


def backbone_config(record):
    return record["config"]["backbone"]["config"]


TOKENIZER_CASES = {
    # name: (break the folder, error type, message pattern)
    "vocab_random_bytes": (lambda f: write(f / "vocab.txt", bytes(range(128, 256)) * 3), ValueError,
                           r"vocab\.txt, line 1: not UTF-8 \(invalid start byte at byte 0 of the file\), so not a "
                           r"WordPiece vocabulary"),
    "vocab_without_cls": (lambda f: write(f / "vocab.txt", "[PAD]\n[UNK]\n[SEP]\nthe\n"), ValueError,
                          r"vocab\.txt has no \[CLS\] token"),
    "vocab_without_unk": (lambda f: write(f / "vocab.txt", "[PAD]\n[CLS]\n[SEP]\nthe\n"), ValueError,
                          r"vocab\.txt has no \[UNK\] token"),
    "vocab_empty": (lambda f: write(f / "vocab.txt", ""), ValueError, r"vocab\.txt is empty"),
    "vocab_binary_nul": (lambda f: write(f / "vocab.txt", b"[UNK]\n\x00\x01\n"), ValueError,
                         r"vocab\.txt is a binary file"),
    "vocab_is_directory": (lambda f: replace_with_directory(f / "vocab.txt"), ValueError,
                           r"vocab\.txt is a directory, not a WordPiece vocabulary"),
    "vocab_link_loop": (lambda f: replace_with_link_loop(f / "vocab.txt"), ValueError, r"vocab\.txt cannot be read"),
    "preprocessor_json_invalid": (lambda f: write(f / "preprocessor.json", "{nope"), ValueError,
                                  r"preprocessor\.json is not valid JSON"),
    "preprocessor_json_unknown_key": (lambda f: write(f / "preprocessor.json", '{"sequence_len": 16}'), ValueError,
                                      r"preprocessor\.json: unknown setting 'sequence_len'"),
    "preprocessor_json_wrong_type": (lambda f: write(f / "preprocessor.json", '{"sequence_length": "long"}'),
                                     ValueError, r"preprocessor\.json: sequence_length is 'long'; it must be an int"),
    "preprocessor_json_bad_truncate": (lambda f: write(f / "preprocessor.json", '{"truncate": "sideways"}'),
                                       ValueError, r"preprocessor\.json: truncate is 'sideways'"),
    "preprocessor_json_array": (lambda f: write(f / "preprocessor.json", "[16]"), ValueError,
                                r"preprocessor\.json holds a JSON array"),
    "tokenizer_config_invalid": (lambda f: write(f / "tokenizer_config.json", "{nope"), ValueError,
                                 r"tokenizer_config\.json is not valid JSON"),
    "tokenizer_config_wrong_type": (lambda f: write(f / "tokenizer_config.json", '{"do_lower_case": "yes"}'),
                                    ValueError, r"tokenizer_config\.json: do_lower_case is 'yes'"),
    "spiece_random_bytes": (lambda f: ((f / "vocab.txt").unlink(), write(f / "spiece.model", noise(300))),
                            ValueError, r"spiece\.model is not a SentencePiece model"),
    "spiece_empty": (lambda f: ((f / "vocab.txt").unlink(), write(f / "spiece.model", b"")), ValueError,
                     r"spiece\.model is empty"),
    "tokenizer_json_without_vocab": (lambda f: ((f / "vocab.txt").unlink(), write(
        f / "tokenizer.json", '{"model": {"type": "WordPiece"}}')), ValueError, r"tokenizer\.json: model\.vocab must"),
    "tokenizer_json_id_gaps": (lambda f: ((f / "vocab.txt").unlink(), write(
        f / "tokenizer.json", '{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "the": 7}}}')), ValueError,
        r"tokenizer\.json: model\.vocab's ids are not 0 to 1"),
}

WEIGHTS_CASES = {
    "weights_truncated": (lambda f: truncate(f / "model.weights.h5"), ValueError,
                          r"model\.weights\.h5 is truncated or corrupt: not a readable HDF5 weights file"),
    "weights_random_bytes": (lambda f: write(f / "model.weights.h5", noise(4000)), ValueError,
                             r"model\.weights\.h5 is truncated or corrupt"),
    "weights_empty": (lambda f: write(f / "model.weights.h5", b""), ValueError,
                      r"model\.weights\.h5 is truncated or corrupt"),
    "weights_missing": (lambda f: (f / "model.weights.h5").unlink(), FileNotFoundError,
                        r"model\.weights\.h5 is missing"),
    "weights_is_directory": (lambda f: replace_with_directory(f / "model.weights.h5"), ValueError,
                             r"model\.weights\.h5 is a directory, not a weights file"),
    "weights_link_loop": (lambda f: replace_with_link_loop(f / "model.weights.h5"), ValueError,
                          r"model\.weights\.h5 cannot be read"),
}

CONFIG_CASES = {
    "hidden_dim_changed": (lambda f: edit_config(f, lambda r: backbone_config(r).update(hidden_dim=8)), ValueError,
                           r"model\.weights\.h5 does not match .*config\.json: layers/bert_backbone/layers/pooler/"
                           r"dense/vars/0 has shape \(16, 16\); the config builds \(8, 8\)"),
    "more_layers": (lambda f: edit_config(f, lambda r: backbone_config(r).update(num_layers=3)), ValueError,
                    r"model\.weights\.h5 does not match .*config\.json: it lacks \S*transformer_block_2/\S*, shape"),
    "fewer_layers": (lambda f: edit_config(f, lambda r: backbone_config(r).update(num_layers=1)), ValueError,
                     r"model\.weights\.h5 does not match .*config\.json: it holds 16 variables the config does not "
                     r"build, the first \S*transformer_block_1/"),
    "more_classes": (lambda f: edit_config(f, lambda r: r["config"].update(num_classes=3)), ValueError,
                     r"does not match .*config\.json: layers/dense/vars/0 has shape \(16, 2\); the config builds "
                     r"\(16, 3\)"),
    "field_missing": (lambda f: edit_config(f, lambda r: backbone_config(r).pop("hidden_dim")), ValueError,
                      r"config\.json: config\.backbone\.config lacks 'hidden_dim', which BertBackbone needs"),
    "field_wrong_type": (lambda f: edit_config(f, lambda r: backbone_config(r).update(hidden_dim="big")), ValueError,
                         r"config\.json: config\.backbone\.config\.hidden_dim is 'big'; it must be an integer"),
    "dropout_wrong_type": (lambda f: edit_config(f, lambda r: backbone_config(r).update(dropout="0.1")), ValueError,
                           r"config\.json: config\.backbone\.config\.dropout is '0\.1'; it must be a number"),
    "field_unknown": (lambda f: edit_config(f, lambda r: backbone_config(r).update(hiden_dim=16)), ValueError,
                      r"config\.json: config\.backbone\.config has 'hiden_dim', which BertBackbone does not take"),
    "impossible_sizes": (lambda f: edit_config(f, lambda r: backbone_config(r).update(num_heads=3)), ValueError,
                         r"config\.json: cannot build TextClassifier from it: hidden_dim=16 is not divisible"),
    "class_not_registered": (lambda f: edit_config(f, lambda r: r.update(class_name="Nope")), ValueError,
                             r"config\.json: class_name 'Nope' is not a kzoo model class; known: .*BertBackbone"),
    "backbone_not_a_backbone": (lambda f: edit_config(f, lambda r: r["config"]["backbone"].update(
        class_name="TextClassifier")), ValueError, r"config\.json: config\.backbone is not a saved kzoo backbone"),
    "no_backbone": (lambda f: edit_config(f, lambda r: r["config"].pop("backbone")), ValueError,
                    r"config\.json: config lacks 'backbone', which TextClassifier needs"),
    "config_json_array": (lambda f: write(f / "config.json", "[1, 2]"), ValueError,
                          r"config\.json holds a JSON array; a kzoo preset config holds a JSON object"),
    "config_json_empty": (lambda f: write(f / "config.json", ""), ValueError, r"config\.json is empty"),
    "config_json_binary": (lambda f: write(f / "config.json", b"\x89HDF\r\n\x1a\n"), ValueError,
                           r"config\.json, line 1: not UTF-8 \(invalid start byte at byte 0 of the file\), so not a "
                           r"kzoo preset config"),
    "config_json_invalid": (lambda f: write(f / "config.json", "{nope"), ValueError, r"config\.json is not valid JSON"),
    "config_not_kzoo": (lambda f: write(f / "config.json", '{"class_name": "TextClassifier"}'), ValueError,
                        r"config\.json is neither a kzoo preset config .* nor a Hugging Face one"),
    "config_json_missing": (lambda f: (f / "config.json").unlink(), FileNotFoundError,
                            r"preset is not a kzoo preset directory: config\.json is missing"),
    "config_json_is_directory": (lambda f: replace_with_directory(f / "config.json"), ValueError,
                                 r"config\.json is a directory"),
    "keras_hub_preset": (lambda f: write(f / "config.json", json.dumps(
        {"module": "keras_hub.src.models.bert.bert_backbone", "class_name": "BertBackbone", "config": {},
         "registered_name": "keras_hub>BertBackbone"})), ValueError,
        r"config\.json: config lacks 'vocabulary_size'.*which BertBackbone needs"),
}


BROKEN_FOLDERS = {**TOKENIZER_CASES, **WEIGHTS_CASES, **CONFIG_CASES}
assert len(BROKEN_FOLDERS) == len(TOKENIZER_CASES) + len(WEIGHTS_CASES) + len(CONFIG_CASES)  # no name twice


@tensorflow_only
@pytest.mark.parametrize("name", sorted(BROKEN_FOLDERS))
def test_a_broken_preset_folder_is_named_at_from_preset(folder, name):
    """Tokenizer files, weights and config.json that do not fit: one line naming the file."""
    breaks, error, pattern = BROKEN_FOLDERS[name]
    breaks(folder)
    raises_one_line(error, pattern, TextClassifier.from_preset, str(folder))


def test_good_folders_load_with_and_without_a_tokenizer(folder):
    """The one case run on every backend: the weights load into its variables."""
    model = TextClassifier.from_preset(str(folder))
    assert model.preprocessor is not None and model.preprocessor.sequence_length == 16
    assert load_preset_folder(str(folder)).preprocessor is not None
    for name in ("vocab.txt", "tokenizer_config.json", "preprocessor.json"):  # no tokenizer: token ids only
        (folder / name).unlink()
    assert TextClassifier.from_preset(str(folder)).preprocessor is None


@tensorflow_only
def test_config_json_array_through_load_preset_folder(folder):
    write(folder / "config.json", "[]")
    raises_one_line(ValueError, r"config\.json holds a JSON array", load_preset_folder, str(folder))


@tensorflow_only
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
@pytest.mark.parametrize("name", ["config.json", "model.weights.h5", "vocab.txt"])
def test_unreadable_files_are_named(folder, name):
    os.chmod(folder / name, 0)
    raises_one_line(ValueError, rf"{name.replace('.', '[.]')} cannot be read: Permission denied",
                    TextClassifier.from_preset, str(folder))


@tensorflow_only
def test_permission_denied_is_one_line_naming_the_file(folder, monkeypatch):
    """What `test_unreadable_files_are_named` checks, for a root user too: the OSError `open` raises."""
    denied = str(folder / "vocab.txt")

    def refusing_open(path, *args, **kwargs):
        if str(path) == denied:
            raise PermissionError(13, "Permission denied", path)
        return open(path, *args, **kwargs)

    monkeypatch.setattr(file_checks, "open", refusing_open, raising=False)
    raises_one_line(ValueError, r"vocab\.txt cannot be read: Permission denied", TextClassifier.from_preset,
                    str(folder))


# The wrong class for a folder --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def albert_folders(tmp_path_factory):
    """An AlbertBackbone preset and an ALBERT TextClassifier preset, of one backbone."""
    root = tmp_path_factory.mktemp("albert")
    backbone = make_backbone("albert")
    backbone.save_to_preset(str(root / "albert"))
    TextClassifier(backbone, num_classes=2).save_to_preset(str(root / "albert_classifier"))
    return root / "albert", root / "albert_classifier"


@tensorflow_only
def test_a_folder_of_another_architecture_is_named(albert_folders, good_folder):
    albert_folder, albert_classifier = albert_folders
    raises_one_line(ValueError, r"albert holds a AlbertBackbone, not a BertBackbone", BertBackbone.from_preset,
                    str(albert_folder))
    raises_one_line(ValueError, r"classifier holds a TextClassifier, not a BertBackbone", BertBackbone.from_preset,
                    str(good_folder))
    raises_one_line(ValueError, r"classifier holds a TextClassifier; TokenClassifier\.from_preset keeps its backbone "
                    r"under new heads, but TokenClassifier needs num_classes", TokenClassifier.from_preset,
                    str(good_folder))
    raises_one_line(ValueError, r"albert holds a AlbertBackbone, not a BertBackbone", BertPretrainer.from_preset,
                    str(albert_folder))
    raises_one_line(ValueError, r"albert_classifier holds a TextClassifier; BertPretrainer\.from_preset keeps its "
                    r"backbone under new heads, but BertPretrainer needs backbone class BertBackbone, got "
                    r"AlbertBackbone", BertPretrainer.from_preset, str(albert_classifier))
    assert isinstance(Backbone.from_preset(str(albert_folder)), AlbertBackbone)


# Paths that are not there, and preset names ------------------------------------------------------------------
@tensorflow_only
def test_missing_paths_and_unknown_names(tmp_path, good_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in (str(tmp_path / "nowhere"), "./nowhere", "nowhere/model", "~/kzoo-no-such-folder"):
        raises_one_line(FileNotFoundError, rf"^{path.replace('.', '[.]')} does not exist\.$",
                        TextClassifier.from_preset, path)
        raises_one_line(FileNotFoundError, r"does not exist", Backbone.from_preset, path)
    raises_one_line(ValueError, r"Unknown preset 'bert_tinyy'\. Known presets for Backbone: \['bert_tiny_en_uncased'",
                    TextClassifier.from_preset, "bert_tinyy")
    raises_one_line(ValueError, r"config\.json is not a folder; pass a preset name", TextClassifier.from_preset,
                    str(good_folder / "config.json"))
    raises_one_line(FileNotFoundError, r"nowhere does not exist", load_preset_folder, "nowhere")


# Vocabulary files (kzoo pretrain --vocab) --------------------------------------------------------------------
@tensorflow_only
def test_vocabulary_files_are_checked(tmp_path):
    random_bytes = tmp_path / "random.bin"
    random_bytes.write_bytes(bytes(range(128, 256)))
    raises_one_line(ValueError, r"random\.bin, line 1: not UTF-8 \(invalid start byte at byte 0 of the file\), so "
                    r"not a WordPiece vocabulary .*; re-encode the file", load_wordpiece, str(random_bytes))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("[PAD]\n[UNK]\ncafé\n".encode("latin-1"))
    raises_one_line(ValueError, r"latin\.txt, line 3: not UTF-8 \(invalid continuation byte at byte 15 of the file\)",
                    load_wordpiece, str(latin))
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("[PAD]\n[UNK]\n".encode("utf-16"))
    raises_one_line(ValueError, r"utf16\.txt, line 1: not UTF-8 .*it looks like UTF-16", load_wordpiece, str(utf16))
    bom = tmp_path / "bom.txt"  # Windows Notepad's UTF-8, with \r\n line ends: the same tokens
    bom.write_bytes("\ufeff[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nthe\r\n".encode())
    assert load_wordpiece(str(bom)).get_vocabulary() == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the"]
    raises_one_line(ValueError, r"random\.bin is not a SentencePiece model", LowercaseSentencePieceTokenizer,
                    proto=str(random_bytes))
    text = tmp_path / "vocab.txt"
    text.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n")
    raises_one_line(ValueError, r"vocab\.txt is not a SentencePiece model", LowercaseSentencePieceTokenizer,
                    proto=str(text))
    raises_one_line(ValueError, r"vocab\.txt has no \[MASK\] token; kzoo's sequences need it",  # pretraining needs it
                    special_ids, load_wordpiece(str(text)))
    raises_one_line(FileNotFoundError, r"missing\.txt does not exist", load_wordpiece, str(tmp_path / "missing.txt"))
    raises_one_line(ValueError, r"is a directory, not a WordPiece vocabulary", load_wordpiece, str(tmp_path))


# keras-hub ---------------------------------------------------------------------------------------------------
@tensorflow_only
def test_keras_hub_inputs_that_are_not_backbones(tmp_path):
    from kzoo.convert import from_keras_hub

    raises_one_line(ValueError, r"hub: from_keras_hub takes a keras-hub backbone object, not a path",
                    from_keras_hub, str(tmp_path / "hub"))
    task = type("BertTextClassifier", (), {"backbone": None})()
    raises_one_line(ValueError, r"BertTextClassifier is not a keras-hub backbone .*; pass its \.backbone",
                    from_keras_hub, task)
    config = dict(vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4, intermediate_dim=8,
                  rope_max_wavelength=10000)
    newer = type("BertBackbone", (), {"get_config": lambda self: config})()
    raises_one_line(ValueError, r"keras-hub BertBackbone: its get_config\(\) has 'rope_max_wavelength', which "
                    r"BertBackbone does not take", from_keras_hub, newer)


# Hugging Face folders ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=12, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=20)
    path = tmp_path_factory.mktemp("hf") / "bert"
    transformers.BertModel(config).save_pretrained(path)
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return path


@pytest.fixture
def hf(hf_folder, tmp_path):
    return shutil.copytree(hf_folder, tmp_path / "hf")


def edit_hf_config(folder, edit):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


def edit_tensors(folder, edit):
    from safetensors.numpy import load_file, save_file

    path = folder / "model.safetensors"
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def torch_save(value, path):
    import torch

    torch.save(value, path)


def as_pickle_checkpoint(folder, value=None):
    """Replace model.safetensors with a pytorch_model.bin holding `value` (default: the same tensors)."""
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch_save(state if value is None else value, folder / "pytorch_model.bin")


HF_CASES = {
    "hidden_size_missing": (lambda f: edit_hf_config(f, lambda c: c.pop("hidden_size")),
                            r"config\.json lacks 'hidden_size', which a bert model needs"),
    "max_positions_missing": (lambda f: edit_hf_config(f, lambda c: c.pop("max_position_embeddings")),
                              r"config\.json lacks 'max_position_embeddings'"),
    "hidden_size_string": (lambda f: edit_hf_config(f, lambda c: c.update(hidden_size="16")),
                           r"config\.json: hidden_size is '16'; it must be a positive integer"),
    "hidden_size_fraction": (lambda f: edit_hf_config(f, lambda c: c.update(hidden_size=16.5)),
                             r"config\.json: hidden_size is 16\.5; it must be a positive integer"),
    "dropout_negative": (lambda f: edit_hf_config(f, lambda c: c.update(hidden_dropout_prob=-1)),
                         r"config\.json: hidden_dropout_prob is -1; it must be a number of at least 0"),
    "heads_do_not_divide": (lambda f: edit_hf_config(f, lambda c: c.update(num_attention_heads=3)),
                            r"config\.json: cannot build a BertBackbone from it: hidden_dim=16 is not divisible"),
    "architectures_string": (lambda f: edit_hf_config(f, lambda c: c.update(architectures="BertModel")),
                             r"config\.json: architectures is 'BertModel'; it must be a list"),
    "id2label_not_ids": (lambda f: edit_hf_config(f, lambda c: c.update(
        architectures=["BertForSequenceClassification"], id2label={"a": "x"})), r"config\.json: id2label must map"),
    "config_json_array": (lambda f: write(f / "config.json", "[]"), r"config\.json holds a JSON array"),
    "weights_truncated": (lambda f: truncate(f / "model.safetensors", 3000),
                          r"model\.safetensors is not a readable safetensors file \(truncated or corrupt\?\)"),
    "weights_empty": (lambda f: write(f / "model.safetensors", b""),
                      r"model\.safetensors is not a readable safetensors file"),
    "weights_is_directory": (lambda f: replace_with_directory(f / "model.safetensors"),
                             r"model\.safetensors is a directory, not a safetensors file"),
    "tensor_missing": (lambda f: edit_tensors(f, lambda t: t.pop("encoder.layer.1.output.dense.weight")),
                       r"model\.safetensors: tensor 'encoder\.layer\.1\.output\.dense\.weight' is missing"),
    "tensor_wrong_shape": (lambda f: edit_tensors(f, lambda t: t.update(
        {"pooler.dense.bias": t["pooler.dense.bias"][:3]})),
        r"model\.safetensors: tensor 'pooler\.dense\.bias' has shape \(3,\); pooler/dense/bias needs \(16,\)"),
    "pickle_refused": (as_pickle_checkpoint, r"pytorch_model\.bin is a pickle, which can run code"),
    "sharded_checkpoint": (lambda f: ((f / "model.safetensors").unlink(),
                                      write(f / "model.safetensors.index.json", "{}")),
                           r"model\.safetensors\.index\.json: weight_map must be a non-empty object"),
    "vocab_random_bytes": (lambda f: write(f / "vocab.txt", bytes(range(128, 256))), r"vocab\.txt, line 1: not UTF-8"),
    "tokenizer_config_array": (lambda f: write(f / "tokenizer_config.json", "[]"),
                               r"tokenizer_config\.json holds a JSON array"),
}


@tensorflow_only
@needs_transformers
@pytest.mark.parametrize("name", sorted(HF_CASES))
def test_broken_hugging_face_folders_are_named(hf, name):
    from kzoo.convert import from_huggingface

    breaks, pattern = HF_CASES[name]
    breaks(hf)
    raises_one_line(ValueError, pattern, from_huggingface, str(hf))


@tensorflow_only
@needs_transformers
def test_hugging_face_weights_missing_or_unreadable(hf, tmp_path):
    from kzoo.convert import from_huggingface

    assert from_huggingface(str(hf)).tokenizer is not None  # the good folder converts
    raises_one_line(FileNotFoundError, r"nowhere does not exist", from_huggingface, str(tmp_path / "nowhere"))
    raises_one_line(ValueError, r"config\.json is not a folder", from_huggingface, str(hf / "config.json"))
    as_pickle_checkpoint(hf)
    assert from_huggingface(str(hf), allow_pickle=True).mapped > 0
    truncate(hf / "pytorch_model.bin", 3000)
    raises_one_line(ValueError, r"pytorch_model\.bin is truncated or corrupt", from_huggingface, str(hf),
                    allow_pickle=True)
    write(hf / "pytorch_model.bin", noise(500))
    raises_one_line(ValueError, r"pytorch_model\.bin is not a PyTorch checkpoint \(neither torch\.save's zip archive "
                    r"nor a pickle\)", from_huggingface, str(hf), allow_pickle=True)
    torch_save([np.zeros(2)], hf / "pytorch_model.bin")
    raises_one_line(ValueError, r"pytorch_model\.bin is corrupt, or holds objects besides tensors",
                    from_huggingface, str(hf), allow_pickle=True)
    torch_save([1, 2], hf / "pytorch_model.bin")
    raises_one_line(ValueError, r"pytorch_model\.bin is not a PyTorch state dict \(names to tensors\); it holds a "
                    r"list", from_huggingface, str(hf), allow_pickle=True)
    (hf / "pytorch_model.bin").unlink()
    raises_one_line(FileNotFoundError, r"hf has neither model\.safetensors nor pytorch_model\.bin", from_huggingface,
                    str(hf))


# kzoo convert: the message, exit code 2, and nothing left behind -----------------------------------------------
def left_behind(parent):
    return sorted(name for name in os.listdir(parent) if name.startswith(".kzoo-") or name == "out")


@tensorflow_only
@needs_transformers
def test_kzoo_convert_reports_bad_sources_and_writes_nothing(hf, folder, tmp_path, capsys):
    from kzoo.cli import main

    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "nowhere"), str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"kzoo convert: error: {tmp_path / 'nowhere'} does not exist."
    edit_hf_config(hf, lambda c: c.pop("hidden_size"))
    assert main(["convert", str(hf), str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"kzoo convert: error: {hf / 'config.json'} lacks 'hidden_size', " \
                                              "which a bert model needs."
    truncate(folder / "model.weights.h5")
    assert main(["convert", str(folder), str(out)]) == 2
    assert "model.weights.h5 is truncated or corrupt" in capsys.readouterr().err
    assert left_behind(tmp_path) == []
