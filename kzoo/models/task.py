"""The task-model base: a functional `keras.Model` on a backbone, with presets and a config round trip."""

import inspect
import json
import os

import keras

from kzoo.architectures import is_keras_hub_record
from kzoo.file_checks import present, read_json
from kzoo.models import preset_io
from kzoo.models.backbone import Backbone
from kzoo.models.batch_checks import BatchChecksMixin
from kzoo.models.named_inputs import NamedInputsMixin
from kzoo.models.string_inputs import StringInputsMixin

PREPROCESSOR_FILE = "preprocessor.json"


class Task(StringInputsMixin, BatchChecksMixin, NamedInputsMixin, keras.Model):
    """A backbone plus heads. Subclasses build the graph in `__init__(backbone, ...)` and store their own
    constructor arguments in `get_config`; presets, saving and the backbone's serialization live here.

    A task may carry a `preprocessor` (`kzoo.data.TextPreprocessor`): then `fit`, `evaluate` and `predict` also
    take raw strings, and `save_to_preset` writes its tokenizer beside the weights. It is not part of
    `get_config`; `from_preset` of a folder holding a tokenizer attaches one.

    Args:
        preprocessor: a `kzoo.data.task_inputs.TextPreprocessor`, or None (token ids only).
        *args, **kwargs: `keras.Model`'s functional arguments (`inputs`, `outputs`, `name`).
    """

    backbone_class = Backbone

    def __init__(self, *args, preprocessor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.preprocessor = preprocessor

    @property
    def input_keys(self):
        return tuple(self.backbone.input_keys)

    @classmethod
    def check_backbone(cls, backbone):
        """Raise unless `backbone` is exactly `backbone_class` (DistilBERT subclasses BERT but is not one)."""
        if cls.backbone_class is not Backbone and type(backbone) is not cls.backbone_class:
            raise ValueError(f"{cls.__name__} needs backbone class {cls.backbone_class.__name__}, "
                             f"got {type(backbone).__name__}.")

    def _task_config(self):
        """The subclass's own constructor arguments (besides the backbone)."""
        return {}

    @classmethod
    def _split_kwargs(cls, kwargs):
        own = set(inspect.signature(cls.__init__).parameters) - {"self", "backbone", "kwargs"}
        return ({k: v for k, v in kwargs.items() if k in own}, {k: v for k, v in kwargs.items() if k not in own})

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """This task on `backbone_class.from_preset(preset)`, a directory saved with `save_to_preset`, a
        converted Hugging Face directory (its heads are kept when they are this class's, else fresh heads are
        made), or a keras-hub preset folder (its backbone converted, fresh heads, its tokenizer).

        Args:
            preset: a preset name (a fresh, randomly initialised backbone) or a folder.
            load_weights: load a `save_to_preset` or keras-hub folder's weights; False keeps the random initial
                ones. (A Hugging Face folder's weights are converted either way.)
            **kwargs: `preprocessor` (else the folder's tokenizer, if it has one), `sequence_length` (of the
                folder's preprocessor), then arguments of the task (e.g. `num_classes`, `label_names`) and
                overrides of the backbone's config (e.g. `dropout=0.0`).
        """
        preprocessor = kwargs.pop("preprocessor", None)
        sequence_length = kwargs.pop("sequence_length", None)
        preset = preset_io.resolve_preset(preset)
        if preprocessor is None and isinstance(preset, str) and os.path.isdir(preset):
            preprocessor = directory_preprocessor(preset, sequence_length)  # first: broken files fail fast
        model = cls._from_preset(preset, load_weights, **kwargs)
        if preprocessor is not None:
            model.preprocessor = preprocessor
        return model

    @classmethod
    def _from_preset(cls, preset, load_weights=True, **kwargs):
        task_kwargs, backbone_kwargs = cls._split_kwargs(kwargs)
        if isinstance(preset, str) and preset_io.is_huggingface_directory(preset):
            model = preset_io.load_huggingface(preset, **backbone_kwargs)
            if type(model) is cls and not task_kwargs:
                return model
            backbone = model if isinstance(model, Backbone) else model.backbone
            return cls._on_loaded_backbone(backbone, preset, type(model).__name__, task_kwargs)
        if isinstance(preset, str) and os.path.isdir(preset) and not preset_io.is_keras_hub_directory(preset):
            record = preset_io.read_preset_config(preset)
            same_class = record["class_name"] == cls.__name__
            if same_class or "backbone" in record["config"]:  # this task's folder, or another task's
                saved_class = cls if same_class else preset_io.model_class(record["class_name"])
                record["config"]["backbone"]["config"].update(backbone_kwargs)
                model = preset_io.build(lambda: saved_class.from_config(
                    {**record["config"], **(task_kwargs if same_class else {})}), preset, record["class_name"])
                if load_weights:
                    preset_io.load_weights(model, preset)
                # Another task's folder: keep its backbone, make fresh heads.
                return model if same_class else cls._on_loaded_backbone(model.backbone, preset,
                                                                        record["class_name"], task_kwargs)
        # A preset name, or a keras-hub folder (its task heads, if any, are not converted: fresh ones are made).
        backbone = cls.backbone_class.from_preset(preset, load_weights=load_weights, **backbone_kwargs)
        return cls(backbone, **task_kwargs)

    @classmethod
    def _on_loaded_backbone(cls, backbone, preset, saved_class_name, task_kwargs):
        """This task with fresh heads on the backbone of a folder holding another model; a backbone it cannot
        take (e.g. ALBERT's for a BERT pretrainer) raises naming the folder."""
        try:
            return cls(backbone, **task_kwargs)
        except ValueError as error:
            raise ValueError(f"{preset} holds a {saved_class_name}; {cls.__name__}.from_preset keeps its "
                             f"backbone under new heads, but {error}") from error

    def feature_model(self, hidden_states=False):
        """A model sharing these weights that returns `{"outputs": this model's outputs, "sequence_output": the
        backbone's last hidden states}` (what a distillation hidden-state loss reads), plus `"hidden_states"`
        (the backbone's L + 1, embedding output first) with `hidden_states=True`. Not cached here: an
        attribute holding it would become part of this model's saved weights layout."""
        features = dict(self._backbone_features)  # a plain dict: Keras tracks the attribute as its own type
        if not hidden_states:
            outputs = {"outputs": self.output, "sequence_output": features["sequence_output"]}
            return keras.Model(self.input, outputs, name=f"{self.name}_features")
        # The backbone is a single node of this graph, so its inner tensors are out of reach here: run its
        # hidden-states view instead and the layers after it (this graph from the backbone's outputs on).
        heads = keras.Model([self.input, features], self.output, name=f"{self.name}_heads")
        inner = self.backbone.with_hidden_states()({key: self.input[key] for key in self.backbone.input_keys})
        outputs = {"outputs": heads([self.input, {key: inner[key] for key in sorted(features)}]),
                   "sequence_output": inner["sequence_output"], "hidden_states": inner["hidden_states"]}
        return keras.Model(self.input, outputs, name=f"{self.name}_features")

    def enable_lora(self, rank, lora_alpha=None):
        """Low-rank adaptation: LoRA (rank `rank`) on every Dense kernel of the backbone's Transformer blocks —
        attention query/key/value/output and both feed-forward layers — via Keras' `Dense.enable_lora`; the
        rest of the backbone (embeddings, LayerNorms, pooler) is frozen; the task heads stay trainable.
        Saving merges the low-rank update into the kernels, so a saved model loads as a plain one.

        Args:
            rank: the rank of the low-rank update (≥ 1).
            lora_alpha: Keras' scale numerator (the update is scaled by `lora_alpha / rank`); None: `rank`.
        """
        from kzoo.layers.transformer import TransformerBlock

        if int(rank) < 1:
            raise ValueError(f"LoRA rank must be ≥ 1; got {rank}.")
        adapted = {id(layer): layer for block in self.backbone._flatten_layers(include_self=False)
                   if isinstance(block, TransformerBlock) for layer in block._flatten_layers(include_self=False)
                   if isinstance(layer, keras.layers.Dense)}
        for layer in self.backbone._flatten_layers(include_self=False):
            if id(layer) in adapted:
                layer.enable_lora(int(rank), lora_alpha=lora_alpha)
            elif not list(layer._flatten_layers(include_self=False)):
                layer.trainable = False
        self.lora_rank = int(rank)

    def quantize(self, mode, **kwargs):
        """Keras' `Model.quantize` (e.g. "int8": Dense and Embedding weights), without its warning for every
        layer that has nothing to quantize (LayerNorm, Dropout, inputs)."""
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")
            super().quantize(mode, **kwargs)

    def save_to_preset(self, directory, overwrite=False, assets=()):
        """Write `config.json` and `model.weights.h5` (and copies of `assets`) to `directory`, atomically; with
        a preprocessor also its tokenizer files and `preprocessor.json`.

        Args:
            directory: the folder to write; it must not exist unless `overwrite`.
            overwrite: replace an existing folder.
            assets: paths of extra files to copy into the folder.
        """
        def write_own_preprocessor(staging):
            if self.preprocessor is not None:
                write_preprocessor(self.preprocessor, staging)

        preset_io.save_preset(self, directory, overwrite=overwrite, assets=assets, extra=write_own_preprocessor)

    def get_config(self):
        return {"backbone": keras.saving.serialize_keras_object(self.backbone), "name": self.name,
                **self._task_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


def write_preprocessor(preprocessor, directory):
    """Write a `TextPreprocessor`'s tokenizer files and `preprocessor.json` into a preset folder (what
    `directory_preprocessor` reads back)."""
    preprocessor.save_assets(directory)
    with open(os.path.join(directory, PREPROCESSOR_FILE), "w") as f:
        json.dump(preprocessor.get_config(), f, indent=2)


def directory_preprocessor(directory, sequence_length=None):
    """The `TextPreprocessor` of a preset or Hugging Face folder (settings from `preprocessor.json`), or None
    when it has no tokenizer files (the model then takes token ids only). Broken tokenizer files or a broken
    `preprocessor.json` raise, naming the file."""
    from kzoo.data.task_inputs import TextPreprocessor

    config = {}
    path = os.path.join(directory, PREPROCESSOR_FILE)
    if present(path):
        config = read_json(path, "preprocessor config")
        if is_keras_hub_record(config):  # a keras-hub task's
            config = _keras_hub_preprocessor_settings(config)
        _check_preprocessor_config(config, path)
    if sequence_length is not None:
        config["sequence_length"] = sequence_length
    return TextPreprocessor.from_directory(directory, **config)


def _keras_hub_preprocessor_settings(record):
    """The settings kzoo's `TextPreprocessor` shares with a keras-hub preprocessor's saved config (its
    `sequence_length` and `truncate`); its tokenizer is read from the folder's tokenizer files."""
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    return {key: config[key] for key in ("sequence_length", "truncate") if config.get(key) is not None}


def _check_preprocessor_config(config, path):
    """Raise naming `path` for a setting `TextPreprocessor` does not take or a value of the wrong kind."""
    kinds = {"sequence_length": "an integer of at least 3", "truncate": "'round_robin' or 'waterfall'"}
    for key, value in config.items():
        if key not in kinds:
            raise ValueError(f"{path}: unknown setting {key!r}; a preprocessor takes {', '.join(kinds)}.")
        valid = (isinstance(value, int) and not isinstance(value, bool) and value >= 3 if key == "sequence_length"
                 else value in ("round_robin", "waterfall"))
        if not valid:
            raise ValueError(f"{path}: {key} is {value!r}; it must be {kinds[key]}.")
