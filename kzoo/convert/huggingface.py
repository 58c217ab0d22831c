"""Hugging Face checkpoints in and out: `config.json` + `model.safetensors` (or shards listed in
`model.safetensors.index.json`; float32, float16 or bfloat16), read with `kzoo.convert.safetensors_io`.

No torch at run time. A `pytorch_model.bin` is a pickle and is refused unless `allow_pickle=True`, and even then
it is read with `torch.load(weights_only=True)`.
"""

import dataclasses
import json
import os

import keras
import numpy as np

from kzoo.architectures import ARCHITECTURES, REQUIRED, of_backbone, of_model_type
from kzoo.atomic import atomic_directory
from kzoo.convert import hf_mapping
from kzoo.convert.safetensors_io import INDEX_SUFFIX, read_safetensors, read_sharded
from kzoo.data.tokenizers import load_hf_tokenizer
from kzoo.file_checks import check_readable, one_line, present, read_json
from kzoo.models.registry import model_class

_PREFIXES = {arch.hf.model_type: arch.hf.prefix for arch in ARCHITECTURES.values()}
# Task heads on a backbone (no MLM head): kzoo class -> Hugging Face architecture suffix.
_TASK_SUFFIXES = {"TextClassifier": "ForSequenceClassification", "TokenClassifier": "ForTokenClassification",
                  "SpanQuestionAnswerer": "ForQuestionAnswering"}


def _heads(arch):
    """Each Hugging Face class of `arch` -> (kzoo model class name, pair task or None); None class = the bare
    backbone."""
    heads = {arch.hf.base_class: (None, None)}
    if arch.pretraining_task != "mlm":
        heads[arch.hf.class_prefix + "ForPreTraining"] = (arch.pretrainer, arch.pretraining_task)
    heads[arch.hf.class_prefix + "ForMaskedLM"] = (arch.masked_lm, None)
    return {**heads, **{arch.hf.class_prefix + suffix: (task, None) for task, suffix in _TASK_SUFFIXES.items()}}


_HEADS = {name: head for arch in ARCHITECTURES.values() for name, head in _heads(arch).items()}
_HEAD_NAMES = ("cls.", "vocab_", "predictions.", "sop_classifier.", "classifier.", "pre_classifier.",
               "qa_outputs.")  # no prefix
# kzoo activation names that transformers' ACT2FN does not know, and its names for them.
_HF_ACTIVATION = {"gelu_approximate": "gelu_new", "gelu_exact": "gelu"}
# Pooler weights: absent from *ForMaskedLM checkpoints (left at their initial value on import, skipped on export).
_POOLER_NAMES = {f"{arch.hf.pooler}.{part}" for arch in ARCHITECTURES.values() if arch.hf.pooler
                 for part in ("weight", "bias")}
# MLM decoder tensors: tied to the word embeddings, so never read (the decoder bias is the MLM bias where it has one).
_DECODERS = [f"{arch.hf.mlm[-1]}.weight" for arch in ARCHITECTURES.values()]
_TIED = {*_DECODERS, "embeddings.position_ids"} | {
    f"{arch.hf.mlm[-1]}.bias" for arch in ARCHITECTURES.values() if f"{arch.hf.mlm[-1]}.bias" != arch.hf.mlm[2]}


@dataclasses.dataclass
class Conversion:
    """What a conversion produced: the model, its tokenizer, and what was mapped, left unused, or left at its
    initial value. `summary()` says it in a few lines.

    Attributes:
        model: the kzoo backbone or task model, with the checkpoint's weights.
        tokenizer: the folder's tokenizer (`load_hf_tokenizer`), or None when it has none.
        mapped: how many checkpoint tensors were assigned.
        unused: names of checkpoint tensors kzoo had no place for.
        not_in_checkpoint: names of kzoo weights the checkpoint lacks (a MaskedLM's pooler), left as built.
    """

    model: object
    tokenizer: object  # from vocab.txt, tokenizer.json or spiece.model (see load_hf_tokenizer), else None
    mapped: int
    unused: list
    not_in_checkpoint: list

    def summary(self):
        """A few lines: the model class and tensors mapped, then those unused and those kept at initial values."""
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

    return {row.argument: field(row.keys[0], _NEEDED if row.default is REQUIRED else row.default)
            for row in of_model_type(config["model_type"]).hf.config_keys if row.argument}


def read_hf_tensors(directory, allow_pickle=False):
    """(`{name: numpy array}`, the file read) of a Hugging Face folder's weights: `model.safetensors`, a sharded
    `model.safetensors.index.json` (the index is the file named), or, only when `allow_pickle`,
    `pytorch_model.bin` or its sharded index. Floating tensors come as float32: float16 and bfloat16 ones are
    cast exactly (see `kzoo.convert.safetensors_io`).

    Args:
        directory: a folder written by transformers' `save_pretrained`.
        allow_pickle: also read PyTorch pickles (with `torch.load(weights_only=True)`) when there is no
            safetensors file.

    Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from safetensors.numpy import save_file
    >>> folder = tempfile.mkdtemp()
    >>> save_file({"pooler.dense.bias": np.zeros(2, "float16")}, os.path.join(folder, "model.safetensors"))
    >>> tensors, source = read_hf_tensors(folder)
    >>> tensors["pooler.dense.bias"].dtype, os.path.basename(source)
    (dtype('float32'), 'model.safetensors')
    """
    tensors, files = _read_tensors(directory, allow_pickle)
    return tensors, files["source"]


def _read_tensors(directory, allow_pickle):
    """(`{name: array}`, `{name: its file, "source": the file named for the checkpoint as a whole}`)."""
    safetensors_path = os.path.join(directory, "model.safetensors")
    if present(safetensors_path):
        return _one_file(read_safetensors(safetensors_path), safetensors_path)
    safetensors_index = safetensors_path + INDEX_SUFFIX
    if present(safetensors_index):
        tensors, files = read_sharded(safetensors_index)
        return tensors, {**files, "source": safetensors_index}
    bin_path = os.path.join(directory, "pytorch_model.bin")
    for path in (bin_path, bin_path + INDEX_SUFFIX):
        if present(path) and not allow_pickle:
            shards = " (the shards it lists are)" if path.endswith(INDEX_SUFFIX) else ""
            raise ValueError(
                f"{path} is a pickle{shards}, which can run code when loaded; kzoo refuses it by default. Convert "
                "it to model.safetensors, or pass allow_pickle=True to load it with torch.load(weights_only=True)."
            )
    if present(bin_path):
        return _one_file(_read_torch_state(bin_path), bin_path)
    if present(bin_path + INDEX_SUFFIX):
        tensors, files = read_sharded(bin_path + INDEX_SUFFIX, _read_torch_shard)
        return tensors, {**files, "source": bin_path + INDEX_SUFFIX}
    raise FileNotFoundError(f"{directory} has neither model.safetensors nor pytorch_model.bin (nor a sharded "
                            f"checkpoint's model.safetensors{INDEX_SUFFIX}).")


def _one_file(tensors, path):
    return tensors, {**dict.fromkeys(tensors, path), "source": path}


def _read_torch_shard(path, names, index):
    """The tensors `names` of one `pytorch_model-*.bin` shard; one missing raises naming the shard and `index`."""
    state = _read_torch_state(path)
    missing = [name for name in names if name not in state]
    if missing:
        raise ValueError(f"{path} has no tensor {missing[0]!r} although {index} lists it there.")
    return {name: state[name] for name in names}


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
    Backbone = model_class("Backbone")
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

    Every tensor is checked for presence and shape before any is assigned; an error names the file and the
    tensor, and no half-loaded model is returned. The class follows `config.json`'s `architectures`: `BertModel`
    gives a `BertBackbone`, `BertForPreTraining` a `BertPretrainer`, `*ForSequenceClassification` a
    `TextClassifier` (with `id2label`'s names), and so on.

    Args:
        directory: a folder written by transformers' `save_pretrained` (`config.json`, `model.safetensors` or
            `model.safetensors.index.json` and its shards, in float32, float16 or bfloat16;
            optionally `vocab.txt` / `tokenizer.json` / `spiece.model`).
        allow_pickle: also read a `pytorch_model.bin` or its sharded index (pickles; loaded with
            `weights_only=True`) when there is no safetensors file.
        **overrides: backbone constructor arguments that replace the config's (e.g. `dropout=0.0`).

    Returns:
        A `Conversion` (`.model`, `.tokenizer`, `.summary()`).

    Example:
    >>> import os, tempfile
    >>> from kzoo.models import BertBackbone, TextClassifier
    >>> backbone = BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                         intermediate_dim=32, max_sequence_length=16)
    >>> folder = os.path.join(tempfile.mkdtemp(), "hf_classifier")
    >>> to_huggingface(TextClassifier(backbone, label_names=["no", "yes"]), folder)
    >>> conversion = from_huggingface(folder)   # or a folder of transformers' save_pretrained
    >>> print(conversion.summary())
    TextClassifier: 41 tensors mapped
    >>> conversion.model.label_names, conversion.tokenizer
    (['no', 'yes'], None)
    """
    config = read_hf_config(directory)
    config_path = os.path.join(directory, "config.json")
    model_type = config["model_type"]
    arch = of_model_type(model_type)
    architectures = config.get("architectures") or [arch.hf.base_class]
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
    tensors, files = _read_tensors(directory, allow_pickle)
    source = files.pop("source")  # the file or index named for the checkpoint; `files` names each tensor's
    prefix = arch.hf.prefix

    def unprefixed(mapping):
        return {name[len(prefix):] if name.startswith(prefix) else name: value for name, value in mapping.items()}

    tensors, files = unprefixed(tensors), unprefixed(files)

    class_name, pair_task = _HEADS[architecture]
    backbone_class = model_class(arch.backbone)
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
        model = model_class(class_name)(backbone, num_classes=num_labels, dropout=head_dropout,
                                        label_names=_label_names(config, num_labels))
    elif class_name == "SpanQuestionAnswerer":
        dropout_key = _classifier_dropout_key(model_type, class_name)
        model = model_class(class_name)(backbone, dropout=config.get(dropout_key, 0.0) if dropout_key else 0.0)
    else:
        model = model_class(class_name)(backbone)

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
            raise ValueError(f"{files[name]}: tensor {name!r} has shape {tuple(tensors[name].shape)}; "
                             f"{variable.path} needs {tuple(variable.shape)}"
                             f"{' (transposed)' if transpose else ''}.")
        assignments.append((variable, name, value))
    word_embeddings = tensors.get("embeddings.word_embeddings.weight")
    has_mlm_head = class_name is not None and class_name not in _TASK_SUFFIXES
    for decoder in _DECODERS:
        if has_mlm_head and decoder in tensors and word_embeddings is not None:
            if not np.array_equal(tensors[decoder], word_embeddings):
                raise ValueError(f"{files[decoder]}: {decoder!r} differs from the word embeddings; kzoo's MLM "
                                 "decoder is tied to them (tie_word_embeddings=False is not supported).")
    for variable, _, value in assignments:
        variable.assign(np.asarray(value, dtype="float32"))
    used = {name for _, name, _ in assignments}
    unused = [name for name in tensors if name not in used and name not in _TIED]
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
    return of_model_type(model_type).hf.head_dropout.get(class_name)


def _hf_config(model):
    Backbone = model_class("Backbone")
    backbone = model if isinstance(model, Backbone) else model.backbone
    hf = of_backbone(backbone).hf
    architecture = hf.base_class
    task = type(model).__name__
    if task in _TASK_SUFFIXES:
        architecture = architecture.replace("Model", _TASK_SUFFIXES[task])
    elif not isinstance(model, Backbone):
        architecture = next(a for a, (c, _) in _HEADS.items() if c == type(model).__name__)
    config = {"model_type": hf.model_type}
    for row in hf.config_keys:
        value = row.default if row.argument is None else getattr(backbone, row.argument)
        if row.argument == "activation":
            value = _HF_ACTIVATION.get(value, value)
        config.update(dict.fromkeys(row.keys, value))
    config["architectures"] = [architecture]
    if task in ("TextClassifier", "TokenClassifier"):
        dropout_key = _classifier_dropout_key(config["model_type"], task)
        if dropout_key:
            config[dropout_key] = backbone.dropout if model.dropout is None else model.dropout
        names = model.label_names or [f"LABEL_{i}" for i in range(model.num_classes)]
        config["id2label"] = {str(i): name for i, name in enumerate(names)}
        config["label2id"] = {name: i for i, name in enumerate(names)}
    qa_dropout_key = _classifier_dropout_key(hf.model_type, task) if task == "SpanQuestionAnswerer" else None
    if qa_dropout_key:  # DistilBERT's alone
        config[qa_dropout_key] = model.dropout
    return config, architecture


def to_huggingface(model, directory, overwrite=False, assets=()):
    """Write `model` as a Hugging Face directory (`config.json` + `model.safetensors`, plus copies of `assets`
    such as `vocab.txt`) that `transformers.AutoModel*.from_pretrained` loads. Written to a temporary folder,
    then renamed into place.

    Args:
        model: a kzoo backbone, pretrainer or task model (its `architectures` entry follows: `BertModel`,
            `BertForPreTraining`, `BertForSequenceClassification`, ...).
        directory: the folder to write; it must not exist unless `overwrite`.
        overwrite: replace an existing folder.
        assets: paths of files to copy into the folder (the tokenizer's `vocab.txt`, `tokenizer_config.json`).

    Example:
    >>> import json, os, tempfile
    >>> from kzoo.models import DistilBertBackbone
    >>> backbone = DistilBertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                               intermediate_dim=32, max_sequence_length=16)
    >>> folder = os.path.join(tempfile.mkdtemp(), "hf_distilbert")
    >>> to_huggingface(backbone, folder)
    >>> sorted(os.listdir(folder)), json.load(open(os.path.join(folder, "config.json")))["architectures"]
    (['config.json', 'model.safetensors'], ['DistilBertModel'])
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
