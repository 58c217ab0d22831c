"""Parity with Hugging Face transformers (torch, CPU) on random-weight models, heads included."""

import importlib.util
import json
import os

import numpy as np
import pytest
from keras import ops

from kzoo.convert import from_huggingface, to_huggingface

pytestmark = pytest.mark.skipif(importlib.util.find_spec("transformers") is None
                                or importlib.util.find_spec("torch") is None,
                                reason="transformers and torch (the test extra) are not installed")
ATOL = 1e-5


def _hf(model_type, architecture, **overrides):
    import torch
    import transformers

    torch.manual_seed(0)
    if model_type == "bert":
        config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                         intermediate_size=48, max_position_embeddings=40, **overrides)
    elif model_type == "distilbert":
        config = transformers.DistilBertConfig(vocab_size=99, dim=32, n_layers=3, n_heads=4, hidden_dim=48,
                                               max_position_embeddings=40, **overrides)
    else:
        config = transformers.AlbertConfig(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=4,
                                           num_attention_heads=4, intermediate_size=48,
                                           max_position_embeddings=40, **overrides)
    model = getattr(transformers, architecture)(config).eval()
    with torch.no_grad():  # every weight random, LayerNorms and biases included, so a mix-up cannot hide
        for param in model.parameters():
            param.normal_(0, 0.2)
    return model


def _inputs(with_segments=True):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 99, size=(3, 12))
    mask = np.ones_like(ids)
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    ids = ids * mask
    segments = (np.arange(12)[None] >= 6).astype("int64") * mask
    return ids, mask, segments


def _run_hf(model, ids, mask, segments, with_segments):
    import torch

    kwargs = dict(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), output_hidden_states=True)
    if with_segments:
        kwargs["token_type_ids"] = torch.tensor(segments)
    with torch.no_grad():
        return model(**kwargs)


def _kzoo_inputs(model, ids, mask, segments, positions=None):
    x = {"token_ids": ids.astype("int32"), "padding_mask": mask.astype("int32")}
    backbone = getattr(model, "backbone", model)
    if backbone.uses_segments:
        x["segment_ids"] = segments.astype("int32")
    if positions is not None:
        x["mask_positions"] = positions.astype("int32")
    return x


def _close(actual, expected, mask=None, what=""):
    actual = ops.convert_to_numpy(actual)
    expected = expected.numpy() if hasattr(expected, "numpy") else expected
    if mask is not None:  # compare real positions only: HF still computes padded positions
        actual, expected = actual[mask.astype(bool)], expected[mask.astype(bool)]
    np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=0, err_msg=what)


BACKBONE_CASES = [
    ("bert", "BertModel", {}),
    ("bert", "BertModel", {"hidden_act": "gelu_new", "type_vocab_size": 3}),
    ("distilbert", "DistilBertModel", {}),
    ("distilbert", "DistilBertModel", {"activation": "relu", "initializer_range": 0.05}),
    ("albert", "AlbertModel", {}),
    ("albert", "AlbertModel", {"num_hidden_groups": 2, "inner_group_num": 2}),
    ("albert", "AlbertModel", {"num_hidden_groups": 4, "inner_group_num": 3, "hidden_act": "gelu"}),
]


@pytest.mark.parametrize("model_type,architecture,overrides", BACKBONE_CASES,
                         ids=[f"{a}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for _, a, o in BACKBONE_CASES])
def test_backbone_parity_with_transformers(tmp_path, model_type, architecture, overrides):
    hf = _hf(model_type, architecture, **overrides)
    hf.save_pretrained(tmp_path)
    conversion = from_huggingface(str(tmp_path))
    model = conversion.model
    ids, mask, segments = _inputs()
    with_segments = model_type != "distilbert"
    expected = _run_hf(hf, ids, mask, segments, with_segments)
    outputs = model.with_hidden_states()(_kzoo_inputs(model, ids, mask, segments))
    _close(outputs["sequence_output"], expected.last_hidden_state, mask, "sequence_output")
    # transformers 5 records ALBERT's hidden states after every inner layer (L*K + 1 of them); kzoo's are per
    # outer layer (L + 1), so kzoo's j-th is their (j*K)-th.
    step = overrides.get("inner_group_num", 1) if model_type == "albert" else 1
    assert len(expected.hidden_states) == model.num_layers * step + 1
    for j, ours in enumerate(outputs["hidden_states"]):
        _close(ours, expected.hidden_states[j * step], mask, f"hidden state {j}")
    if model_type != "distilbert":
        _close(outputs["pooled_output"], expected.pooler_output, what="pooled_output")
    assert not conversion.unused and not conversion.not_in_checkpoint, conversion.summary()


HEAD_CASES = [
    ("bert", "BertForPreTraining", "nsp"),
    ("bert", "BertForMaskedLM", None),
    ("distilbert", "DistilBertForMaskedLM", None),
    ("albert", "AlbertForPreTraining", "sop"),
    ("albert", "AlbertForMaskedLM", None),
]


@pytest.mark.parametrize("model_type,architecture,pair", HEAD_CASES, ids=[a for _, a, _ in HEAD_CASES])
def test_pretraining_heads_parity_with_transformers(tmp_path, model_type, architecture, pair):
    overrides = {"num_hidden_groups": 2, "inner_group_num": 2} if model_type == "albert" else {}
    hf = _hf(model_type, architecture, **overrides)
    hf.save_pretrained(tmp_path)
    model = from_huggingface(str(tmp_path)).model
    ids, mask, segments = _inputs()
    positions = np.array([[1, 4, 7], [0, 2, 7], [1, 3, 4]])
    expected = _run_hf(hf, ids, mask, segments, model_type != "distilbert")
    outputs = model(_kzoo_inputs(model, ids, mask, segments, positions))
    mlm_expected = expected.prediction_logits if pair else expected.logits
    gathered = np.take_along_axis(mlm_expected.numpy(), positions[..., None], axis=1)
    _close(outputs["mlm"], gathered, what="mlm logits")
    if pair == "nsp":
        _close(outputs["nsp"], expected.seq_relationship_logits, what="nsp logits")
    if pair == "sop":
        _close(outputs["sop"], expected.sop_logits, what="sop logits")


@pytest.mark.parametrize("model_type,architecture", [("bert", "BertForPreTraining"),
                                                      ("distilbert", "DistilBertForMaskedLM"),
                                                      ("albert", "AlbertForPreTraining")])
def test_round_trip_kzoo_to_transformers(tmp_path, model_type, architecture):
    import transformers

    hf = _hf(model_type, architecture, **({"num_hidden_groups": 2} if model_type == "albert" else {}))
    hf.save_pretrained(tmp_path / "src")
    model = from_huggingface(str(tmp_path / "src")).model
    to_huggingface(model, str(tmp_path / "out"))
    reloaded = getattr(transformers, architecture).from_pretrained(str(tmp_path / "out")).eval()
    ids, mask, segments = _inputs()
    positions = np.array([[1, 4, 7], [0, 2, 7], [1, 3, 4]])
    expected = _run_hf(reloaded, ids, mask, segments, model_type != "distilbert")
    outputs = model(_kzoo_inputs(model, ids, mask, segments, positions))
    mlm = expected.prediction_logits if model_type != "distilbert" else expected.logits
    _close(outputs["mlm"], np.take_along_axis(mlm.numpy(), positions[..., None], axis=1), what="mlm")
    with pytest.raises(FileExistsError):
        to_huggingface(model, str(tmp_path / "out"))


def test_bad_directories_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        from_huggingface(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="unknown model_type 'gpt2'"):
        from_huggingface(str(tmp_path))
    hf = _hf("bert", "BertModel")
    hf.save_pretrained(tmp_path / "ok")
    from safetensors.numpy import load_file, save_file

    tensors = load_file(tmp_path / "ok" / "model.safetensors")
    name = next(k for k in tensors if k.endswith("encoder.layer.1.attention.self.key.weight"))
    broken = dict(tensors)
    broken[name] = broken[name][:, :5]
    save_file(broken, tmp_path / "ok" / "model.safetensors")
    with pytest.raises(ValueError, match=r"attention.self.key.weight' has shape \(32, 5\)"):
        from_huggingface(str(tmp_path / "ok"))
    del broken[name]
    save_file(broken, tmp_path / "ok" / "model.safetensors")
    with pytest.raises(ValueError, match=r"attention.self.key.weight' is missing"):
        from_huggingface(str(tmp_path / "ok"))
    data = (tmp_path / "ok" / "model.safetensors").read_bytes()
    (tmp_path / "ok" / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="is not a readable safetensors file"):
        from_huggingface(str(tmp_path / "ok"))
    os.remove(tmp_path / "ok" / "model.safetensors")
    (tmp_path / "ok" / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ValueError, match="is a pickle"):
        from_huggingface(str(tmp_path / "ok"))


def test_from_preset_accepts_hugging_face_directories(tmp_path):
    from kzoo.models import AlbertPretrainer, BertBackbone, BertPretrainer

    _hf("bert", "BertForPreTraining").save_pretrained(tmp_path / "bert")
    pretrainer = BertPretrainer.from_preset(str(tmp_path / "bert"))
    backbone = BertBackbone.from_preset(str(tmp_path / "bert"), dropout=0.0)
    assert backbone.dropout == 0.0
    ids, mask, segments = _inputs()
    x = _kzoo_inputs(backbone, ids, mask, segments)
    _close(backbone(x)["pooled_output"], ops.convert_to_numpy(pretrainer.backbone(x)["pooled_output"]))
    with pytest.raises(ValueError, match="AlbertPretrainer needs backbone class AlbertBackbone, got BertBackbone"):
        AlbertPretrainer.from_preset(str(tmp_path / "bert"))


def test_cli_convert_both_ways_keeps_outputs(tmp_path, capsys):
    import transformers

    from kzoo.cli import main
    from kzoo.models import BertPretrainer

    _hf("bert", "BertForPreTraining").save_pretrained(tmp_path / "hf")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (tmp_path / "hf" / "vocab.txt").write_text("\n".join(specials + [f"tok{i}" for i in range(94)]))
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "kz")]) == 0
    out = capsys.readouterr().out
    mapped = 5 + 3 * 16 + 2 + 5 + 2  # embeddings, 3 blocks, pooler, MLM head (bias incl.), NSP head
    assert f"BertPretrainer: {mapped} tensors mapped" in out and "copied: vocab.txt" in out
    assert main(["convert", str(tmp_path / "kz"), str(tmp_path / "back")]) == 0
    assert (tmp_path / "back" / "vocab.txt").exists()
    model = BertPretrainer.from_preset(str(tmp_path / "kz"))
    reloaded = transformers.BertForPreTraining.from_pretrained(str(tmp_path / "back")).eval()
    ids, mask, segments = _inputs()
    expected = _run_hf(reloaded, ids, mask, segments, True)
    outputs = model(_kzoo_inputs(model, ids, mask, segments, np.array([[1, 2, 3]] * 3)))
    _close(outputs["nsp"], expected.seq_relationship_logits, what="nsp after two conversions")


@pytest.mark.parametrize("model_type,architecture", [("bert", "BertForSequenceClassification"),
                                                      ("distilbert", "DistilBertForSequenceClassification"),
                                                      ("albert", "AlbertForSequenceClassification")])
def test_classifier_parity_and_round_trip_with_transformers(tmp_path, model_type, architecture):
    import transformers

    overrides = {"num_labels": 3}
    if model_type == "albert":
        overrides.update(num_hidden_groups=2, inner_group_num=2)
    hf = _hf(model_type, architecture, **overrides)
    hf.save_pretrained(tmp_path / "src")
    model = from_huggingface(str(tmp_path / "src")).model
    assert type(model).__name__ == "TextClassifier" and model.num_classes == 3
    ids, mask, segments = _inputs()
    with_segments = model_type != "distilbert"
    _close(model(_kzoo_inputs(model, ids, mask, segments)), _run_hf(hf, ids, mask, segments, with_segments).logits,
           what="classifier logits")
    to_huggingface(model, str(tmp_path / "out"))
    reloaded = getattr(transformers, architecture).from_pretrained(str(tmp_path / "out")).eval()
    _close(model(_kzoo_inputs(model, ids, mask, segments)),
           _run_hf(reloaded, ids, mask, segments, with_segments).logits, what="logits after the round trip")


@pytest.mark.parametrize("cls_name", ["AlbertBackbone", "BertBackbone", "DistilBertBackbone"])
def test_natively_built_models_export_to_transformers(tmp_path, cls_name):
    """Models built in kzoo (kzoo's own activation names, e.g. "gelu_approximate") load in transformers."""
    import transformers

    from kzoo import models

    config = dict(vocabulary_size=99, num_layers=2, num_heads=4, hidden_dim=32, intermediate_dim=48,
                  max_sequence_length=40, dropout=0.0)
    if cls_name == "AlbertBackbone":
        config["embedding_dim"] = 16
    if cls_name == "BertBackbone":
        config["activation"] = "gelu_approximate"
    backbone = getattr(models, cls_name)(**config)
    to_huggingface(backbone, str(tmp_path / "out"))
    reloaded = transformers.AutoModel.from_pretrained(str(tmp_path / "out")).eval()
    ids, mask, segments = _inputs()
    expected = _run_hf(reloaded, ids, mask, segments, cls_name != "DistilBertBackbone")
    _close(backbone(_kzoo_inputs(backbone, ids, mask, segments))["sequence_output"], expected.last_hidden_state,
           mask, "sequence_output")


def test_untied_decoder_is_refused(tmp_path):
    from safetensors.numpy import load_file, save_file

    _hf("bert", "BertForMaskedLM").save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["cls.predictions.decoder.weight"] = tensors["bert.embeddings.word_embeddings.weight"] + 1.0
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="'cls.predictions.decoder.weight' differs from the word embeddings"):
        from_huggingface(str(tmp_path))


@pytest.mark.parametrize("architecture", ["BertForTokenClassification", "DistilBertForTokenClassification",
                                          "AlbertForTokenClassification", "BertForQuestionAnswering",
                                          "DistilBertForQuestionAnswering", "AlbertForQuestionAnswering"])
def test_tagging_and_qa_heads_parity_and_round_trip_with_transformers(tmp_path, architecture):
    import transformers

    model_type = architecture.split("For")[0].lower()
    tagging = architecture.endswith("TokenClassification")
    overrides = {"id2label": {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"}} if tagging else {}
    hf = _hf(model_type, architecture, **overrides)
    hf.save_pretrained(tmp_path / "src")
    model = from_huggingface(str(tmp_path / "src")).model
    assert type(model).__name__ == ("TokenClassifier" if tagging else "SpanQuestionAnswerer")
    if tagging:
        assert model.label_names == ["O", "B-PER", "I-PER", "B-LOC"]
    ids, mask, segments = _inputs()
    with_segments = model_type != "distilbert"

    def check(reference, what):
        expected = _run_hf(reference, ids, mask, segments, with_segments)
        outputs = model(_kzoo_inputs(model, ids, mask, segments))
        if tagging:
            _close(outputs, expected.logits, mask, what)
        else:  # kzoo sets padding positions to -1e9; real positions must match
            _close(outputs["start_logits"], expected.start_logits, mask, what)
            _close(outputs["end_logits"], expected.end_logits, mask, what)

    check(hf, "logits")
    to_huggingface(model, str(tmp_path / "out"))
    check(getattr(transformers, architecture).from_pretrained(str(tmp_path / "out")).eval(), "after the round trip")
