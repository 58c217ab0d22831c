"""Hugging Face checkpoints in and out: `config.json` + `model.safetensors`, read with safetensors' numpy API.

No torch at run time. A `pytorch_model.bin` is a pickle and is refused unless `allow_pickle=True`, and even then
it is read with `torch.load(weights_only=True)`.
"""

import dataclasses
import json
import os

import keras
import numpy as np

from kzoo.atomic import atomic_directory
from kzoo.convert import hf_mapping
from kzoo.data.tokenizers import load_hf_tokenizer
from kzoo.file_checks import check_readable, one_line, present, read_json

_PREFIXES = {"bert": "bert.", "distilbert": "distilbert.", "albert": "albert."}
_HEADS = {  # architecture -> (kzoo model class name, pair task or None); None class = the bare backbone
    "BertModel": (None, None), "BertForPreTraining": ("BertPretrainer", "nsp"),
    "BertForMaskedLM": ("BertMaskedLM", None),
    "DistilBertModel": (None, None), "DistilBertForMaskedLM": ("DistilBertMaskedLM", None),
    "AlbertModel": (None, None), "AlbertForPreTraining": ("AlbertPretrainer", "sop"),
    "AlbertForMaskedLM": ("AlbertMaskedLM", None),
    "BertForSequenceClassification": ("TextClassifier", None),
    "DistilBertForSequenceClassification": ("TextClassifier", None),
    "AlbertForSequenceClassification": ("TextClassifier", None),
    "BertForTokenClassification": ("TokenClassifier", None),
    "DistilBertForTokenClassification": ("TokenClassifier", None),
    "AlbertForTokenClassification": ("TokenClassifier", None),
    "BertForQuestionAnswering": ("SpanQuestionAnswerer", None),
    "DistilBertForQuestionAnswering": ("SpanQuestionAnswerer", None),
    "AlbertForQuestionAnswering": ("SpanQuestionAnswerer", None),
}
# Task heads on a backbone (no MLM head): kzoo class -> Hugging Face architecture suffix.
_TASK_SUFFIXES = {"TextClassifier": "ForSequenceClassification", "TokenClassifier": "ForTokenClassification",
                  "SpanQuestionAnswerer": "ForQuestionAnswering"}
_HEAD_NAMES = ("cls.", "vocab_", "predictions.", "sop_classifier.", "classifier.", "pre_classifier.",
               "qa_outputs.")  # no prefix
_DEFAULT_ARCHITECTURE = {"bert": "BertModel", "distilbert": "DistilBertModel", "albert": "AlbertModel"}
# kzoo activation names that transformers' ACT2FN does not know, and its names for them.
_HF_ACTIVATION = {"gelu_approximate": "gelu_new", "gelu_exact": "gelu"}
# Pooler weights: absent from *ForMaskedLM checkpoints (left at their initial value on import, skipped on export).
_POOLER_NAMES = {"pooler.dense.weight", "pooler.dense.bias", "pooler.weight", "pooler.bias"}


@dataclasses.dataclass
class Conversion:
    """What a conversion produced: the model, its tokenizer, and what was mapped, left unused, or left at its
    initial value."""

    model: object
    tokenizer: object  # from vocab.txt, tokenizer.json or spiece.model (see load_hf_tokenizer), else None
    mapped: int
    unused: list
    not_in_checkpoint: list

    def summary(self):
        lines = [f"{type(self.model).__name__}: {self.mapped} tensors mapped"]
        if self.unused:
            lines.append(f"unused in the checkpoint ({len(self.unused)}): {', '.join(sorted(self.unused))}")
        if self.not_in_checkpoint:
            lines.append(f"kept at initial values ({len(self.not_in_checkpoint)}): "
                         f"{', '.join(sorted(self.not_in_checkpoint))}")
        return "\n".join(lines)


def read_hf_config(directory):
    """The folder's config.json (a dict), checked for a model type kzoo converts; errors name the file."""
    if not os.path.isdir(directory):
        if os.path.exists(directory):
            raise ValueError(f"{directory} is not a folder; a Hugging Face model is a folder with config.json.")
        raise FileNotFoundError(f"{directory} does not exist.")
    path = os.path.join(directory, "config.json")
    if not present(path):
        raise FileNotFoundError(f"{directory} is not a Hugging Face model directory: config.json is missing.")
    config = read_json(path, "Hugging Face model config")
    model_type = config.get("model_type")
    if model_type not in _PREFIXES:
        raise ValueError(f"{path}: unknown model_type {model_type!r}; kzoo converts {sorted(_PREFIXES)}.")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{path}: position_embedding_type={config['position_embedding_type']!r} is not supported.")
    return config


_NEEDED = object()


def backbone_config(config, path="config.json"):
    """kzoo backbone constructor arguments from a Hugging Face config; a missing field or a value of the wrong
    type raises naming `path` (the config's file) and the field."""
    def field(key, default=_NEEDED):
        if key not in config:
            if default is _NEEDED:
                raise ValueError(f"{path} lacks {key!r}, which a {config['model_type']} model needs.")
            return default
        value, kind = config[key], type(default)
        if kind in (int, object):  # sizes: positive integers
            valid, wanted = isinstance(value, int) and not isinstance(value, bool) and value > 0, "a positive integer"
        elif kind is float:
            valid, wanted = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0, \
                "a number of at least 0"
        else:
            valid, wanted = isinstance(value, str), "a string"
        if not valid:
            raise ValueError(f"{path}: {key} is {value!r}; it must be {wanted}.")
        return value

    if config["model_type"] == "distilbert":
        return dict(vocabulary_size=field("vocab_size"), num_layers=field("n_layers"),
                    num_heads=field("n_heads"), hidden_dim=field("dim"), intermediate_dim=field("hidden_dim"),
                    dropout=field("dropout", 0.1), max_sequence_length=field("max_position_embeddings"),
                    activation=field("activation", "gelu"),
                    initializer_range=field("initializer_range", 0.02))
    common = dict(vocabulary_size=field("vocab_size"), num_layers=field("num_hidden_layers"),
                  num_heads=field("num_attention_heads"), hidden_dim=field("hidden_size"),
                  intermediate_dim=field("intermediate_size"), dropout=field("hidden_dropout_prob", 0.1),
                  max_sequence_length=field("max_position_embeddings"),
                  num_segments=field("type_vocab_size", 2), activation=field("hidden_act", "gelu"),
                  layer_norm_epsilon=field("layer_norm_eps", 1e-12),
                  initializer_range=field("initializer_range", 0.02))
    if config["model_type"] == "albert":
        common.update(embedding_dim=field("embedding_size"), num_groups=field("num_hidden_groups", 1),
                      num_inner_repetitions=field("inner_group_num", 1))
    return common


def read_hf_tensors(directory, allow_pickle=False):
    """(`{name: numpy array}`, the file read) from `model.safetensors`, or from `pytorch_model.bin` only when
    `allow_pickle`."""
    safetensors_path = os.path.join(directory, "model.safetensors")
    if present(safetensors_path):
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        check_readable(safetensors_path, "safetensors file")
        try:
            return load_file(safetensors_path), safetensors_path
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(f"{safetensors_path} is not a readable safetensors file (truncated or corrupt?): "
                             f"{one_line(error)}") from error
    bin_path = os.path.join(directory, "pytorch_model.bin")
    if present(bin_path):
        if not allow_pickle:
            raise ValueError(
                f"{bin_path} is a pickle, which can run code when loaded; kzoo refuses it by default. Convert it "
                "to model.safetensors, or pass allow_pickle=True to load it with torch.load(weights_only=True)."
            )
        return _read_torch_state(bin_path), bin_path
    if present(os.path.join(directory, "model.safetensors.index.json")):
        raise ValueError(f"{directory} holds a sharded checkpoint (model.safetensors.index.json); kzoo reads one "
                         "model.safetensors: save it with a larger max_shard_size.")
    raise FileNotFoundError(f"{directory} has neither model.safetensors nor pytorch_model.bin.")


def _read_torch_state(path):
    """`{name: float32 array}` of a `pytorch_model.bin`, read with `torch.load(weights_only=True)`."""
    import pickle

    import torch

    check_readable(path, "PyTorch checkpoint")
    with open(path, "rb") as f:
        head = f.read(4)  # torch.save: a zip archive; before torch 1.6, a bare pickle (protocol 2+)
    if not (head == b"PK\x03\x04" or head[:1] == b"\x80"):
        raise ValueError(f"{path} is not a PyTorch checkpoint (neither torch.save's zip archive nor a pickle); it is "
                         "truncated or corrupt.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # torch's message suggests weights_only=False: not quoted
        raise ValueError(f"{path} is corrupt, or holds objects besides tensors that torch.load(weights_only=True) "
                         "refuses.") from error
    except (RuntimeError, EOFError, OSError, IndexError, KeyError, ValueError) as error:  # torch.load's parse errors
        raise ValueError(f"{path} is truncated or corrupt: {one_line(error)}") from error
    if not (isinstance(state, dict) and all(isinstance(value, torch.Tensor) for value in state.values())):
        raise ValueError(f"{path} is not a PyTorch state dict (names to tensors); it holds a "
                         f"{type(state).__name__}.")
    return {name: tensor.float().numpy() for name, tensor in state.items()}


def _entries(model, model_type, pair_task):
    from kzoo.models import Backbone

    backbone = model if isinstance(model, Backbone) else model.backbone
    entries = hf_mapping.backbone_entries(backbone, model_type)
    if type(model).__name__ in _TASK_SUFFIXES:
        entries += hf_mapping.task_head_entries(model)
    elif not isinstance(model, Backbone):
        entries += hf_mapping.mlm_head_entries(model.mlm_head, model_type)
        if pair_task:
            entries += hf_mapping.pair_head_entries(model.pair_head, pair_task)
    return entries


def from_huggingface(directory, allow_pickle=False, **overrides):
    """Load a local Hugging Face BERT / DistilBERT / ALBERT directory into the matching kzoo model.

    Returns a `Conversion` (`.model`, `.tokenizer`, `.summary()`). Every tensor is checked for presence and shape before
    any is assigned; an error names the file and the tensor, and no half-loaded model is returned.

    Example (with a directory written by transformers' `save_pretrained`):
        conversion = from_huggingface("path/to/bert")
        print(conversion.summary()); model = conversion.model
    """
    from kzoo import models

    config = read_hf_config(directory)
    config_path = os.path.join(directory, "config.json")
    model_type = config["model_type"]
    architectures = config.get("architectures") or [_DEFAULT_ARCHITECTURE[model_type]]
    if not (isinstance(architectures, list) and all(isinstance(name, str) for name in architectures)):
        raise ValueError(f"{config_path}: architectures is {architectures!r}; it must be a list of class names.")
    architecture = architectures[0]
    if architecture not in _HEADS:
        raise ValueError(f"{config_path}: architecture {architecture!r} is not supported; "
                         f"kzoo converts {sorted(_HEADS)}.")
    arguments = backbone_config(config, config_path)
    id2label = config.get("id2label") or {}
    if not (isinstance(id2label, dict) and all(str(key).isdigit() for key in id2label)):
        raise ValueError(f"{config_path}: id2label must map class ids (\"0\", \"1\", ...) to names; "
                         f"got {id2label!r:.80}.")
    tensors, source = read_hf_tensors(directory, allow_pickle=allow_pickle)
    prefix = _PREFIXES[model_type]
    tensors = {name[len(prefix):] if name.startswith(prefix) else name: value for name, value in tensors.items()}

    class_name, pair_task = _HEADS[architecture]
    backbone_class = {"bert": models.BertBackbone, "distilbert": models.DistilBertBackbone,
                      "albert": models.AlbertBackbone}[model_type]
    try:
        backbone = backbone_class(**{**arguments, **overrides})
    except ValueError as error:  # sizes that do not fit together, an unknown activation
        raise ValueError(f"{config_path}: cannot build a {backbone_class.__name__} from it: "
                         f"{one_line(error)}") from error
    if class_name is None:
        model = backbone
    elif class_name in ("TextClassifier", "TokenClassifier"):
        num_labels = config.get("num_labels") or len(config.get("id2label") or {}) or 2
        head_dropout = config.get(_classifier_dropout_key(model_type, class_name))
        model = getattr(models, class_name)(backbone, num_classes=num_labels, dropout=head_dropout,
                                            label_names=_label_names(config, num_labels))
    elif class_name == "SpanQuestionAnswerer":
        model = models.SpanQuestionAnswerer(backbone, dropout=config.get("qa_dropout", 0.0) if
                                            model_type == "distilbert" else 0.0)
    else:
        model = getattr(models, class_name)(backbone)

    # MaskedLM checkpoints have no pooler: it stays at its initial value and is reported.
    assignments, not_in_checkpoint = [], []
    for variable, name, transpose in _entries(model, model_type, pair_task):
        if name not in tensors:
            if name in _POOLER_NAMES and class_name is not None:
                not_in_checkpoint.append(name)
                continue
            raise ValueError(f"{source}: tensor {name!r} is missing (needed for {variable.path}).")
        value = tensors[name].T if transpose else tensors[name]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{source}: tensor {name!r} has shape {tuple(tensors[name].shape)}; "
                             f"{variable.path} needs {tuple(variable.shape)}"
                             f"{' (transposed)' if transpose else ''}.")
        assignments.append((variable, name, value))
    word_embeddings = tensors.get("embeddings.word_embeddings.weight")
    has_mlm_head = class_name is not None and class_name not in _TASK_SUFFIXES
    for decoder in ("cls.predictions.decoder.weight", "vocab_projector.weight", "predictions.decoder.weight"):
        if has_mlm_head and decoder in tensors and word_embeddings is not None:
            if not np.array_equal(tensors[decoder], word_embeddings):
                raise ValueError(f"{source}: {decoder!r} differs from the word embeddings; kzoo's MLM decoder is "
                                 "tied to them (tie_word_embeddings=False is not supported).")
    for variable, _, value in assignments:
        variable.assign(np.asarray(value, dtype="float32"))
    used = {name for _, name, _ in assignments}
    tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias", "vocab_projector.weight",
            "predictions.decoder.weight", "predictions.decoder.bias", "embeddings.position_ids"}
    unused = [name for name in tensors if name not in used and name not in tied]
    return Conversion(model=model, tokenizer=load_hf_tokenizer(directory), mapped=len(assignments), unused=unused,
                      not_in_checkpoint=not_in_checkpoint)


def _label_names(config, num_labels):
    """`id2label`'s names when they are real ones (not transformers' default LABEL_i), else None."""
    id2label = {int(k): v for k, v in (config.get("id2label") or {}).items()}
    names = [id2label.get(i) for i in range(num_labels)]
    if None in names or names == [f"LABEL_{i}" for i in range(num_labels)] or len(set(names)) < num_labels:
        return None
    return names


def _classifier_dropout_key(model_type, class_name="TextClassifier"):
    """The config.json key of a classification head's dropout, per model type (None: the backbone's dropout,
    as DistilBERT's token classifier uses `dropout`)."""
    if model_type == "distilbert":
        return "seq_classif_dropout" if class_name == "TextClassifier" else None
    return "classifier_dropout_prob" if model_type == "albert" else "classifier_dropout"


def _hf_config(model):
    from kzoo.models import AlbertBackbone, Backbone, DistilBertBackbone

    backbone = model if isinstance(model, Backbone) else model.backbone
    architecture = {"BertBackbone": "BertModel", "DistilBertBackbone": "DistilBertModel",
                    "AlbertBackbone": "AlbertModel"}[type(backbone).__name__]
    task = type(model).__name__
    if task in _TASK_SUFFIXES:
        architecture = architecture.replace("Model", _TASK_SUFFIXES[task])
    elif not isinstance(model, Backbone):
        architecture = next(a for a, (c, _) in _HEADS.items() if c == type(model).__name__)
    hf_activation = _HF_ACTIVATION.get(backbone.activation, backbone.activation)
    if isinstance(backbone, DistilBertBackbone):
        config = dict(model_type="distilbert", vocab_size=backbone.vocabulary_size, n_layers=backbone.num_layers,
                      n_heads=backbone.num_heads, dim=backbone.hidden_dim, hidden_dim=backbone.intermediate_dim,
                      dropout=backbone.dropout, attention_dropout=backbone.dropout,
                      max_position_embeddings=backbone.max_sequence_length,
                      activation=hf_activation,
                      initializer_range=backbone.initializer_range, sinusoidal_pos_embds=False, pad_token_id=0)
    else:
        config = dict(model_type="bert", vocab_size=backbone.vocabulary_size,
                      num_hidden_layers=backbone.num_layers, num_attention_heads=backbone.num_heads,
                      hidden_size=backbone.hidden_dim, intermediate_size=backbone.intermediate_dim,
                      hidden_dropout_prob=backbone.dropout, attention_probs_dropout_prob=backbone.dropout,
                      max_position_embeddings=backbone.max_sequence_length, type_vocab_size=backbone.num_segments,
                      hidden_act=hf_activation,
                      layer_norm_eps=backbone.layer_norm_epsilon,
                      initializer_range=backbone.initializer_range, pad_token_id=0)
        if isinstance(backbone, AlbertBackbone):
            config.update(model_type="albert", embedding_size=backbone.embedding_dim,
                          num_hidden_groups=backbone.num_groups, inner_group_num=backbone.num_inner_repetitions)
    config["architectures"] = [architecture]
    if task in ("TextClassifier", "TokenClassifier"):
        dropout_key = _classifier_dropout_key(config["model_type"], task)
        if dropout_key:
            config[dropout_key] = backbone.dropout if model.dropout is None else model.dropout
        names = model.label_names or [f"LABEL_{i}" for i in range(model.num_classes)]
        config["id2label"] = {str(i): name for i, name in enumerate(names)}
        config["label2id"] = {name: i for i, name in enumerate(names)}
    if task == "SpanQuestionAnswerer" and config["model_type"] == "distilbert":
        config["qa_dropout"] = model.dropout
    return config, architecture


def to_huggingface(model, directory, overwrite=False, assets=()):
    """Write `model` as a Hugging Face directory (`config.json` + `model.safetensors`, plus copies of `assets`
    such as `vocab.txt`) that `transformers.AutoModel*.from_pretrained` loads. Written to a temporary folder,
    then renamed into place.
    """
    from safetensors.numpy import save_file

    config, architecture = _hf_config(model)
    model_type = config["model_type"]
    pair_task = _HEADS[architecture][1]
    if os.path.exists(directory) and not overwrite:  # fail before converting anything
        raise FileExistsError(f"{os.path.abspath(directory)} already exists; pass overwrite=True to replace it.")
    prefix = _PREFIXES[model_type] if _HEADS[architecture][0] is not None else ""
    tensors = {}
    for variable, name, transpose in _entries(model, model_type, pair_task):
        if architecture.endswith("ForMaskedLM") and name in _POOLER_NAMES:
            continue
        value = np.asarray(keras.ops.convert_to_numpy(variable), dtype="float32")
        tensors[name if name.startswith(_HEAD_NAMES) else prefix + name] = np.ascontiguousarray(value.T if transpose else value)
    with atomic_directory(directory, overwrite=overwrite, assets=assets) as staging:
        with open(os.path.join(staging, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        save_file(tensors, os.path.join(staging, "model.safetensors"), metadata={"format": "pt"})
