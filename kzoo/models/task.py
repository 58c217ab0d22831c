"""The task-model base: a functional `keras.Model` on a backbone, with presets and a config round trip."""

import inspect
import os

import keras

from kzoo.models import preset_io
from kzoo.models.backbone import Backbone


class Task(keras.Model):
    """A backbone plus heads. Subclasses build the graph in `__init__(backbone, ...)` and store their own
    constructor arguments in `get_config`; presets, saving and the backbone's serialization live here."""

    backbone_class = Backbone

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
        """This task on `backbone_class.from_preset(preset)`, a directory saved with `save_to_preset`, or a
        converted Hugging Face directory (its heads are kept when they are this class's, else fresh heads are
        made). Keyword arguments go to the task when it takes them (e.g. `num_classes`), else to the backbone.
        """
        task_kwargs, backbone_kwargs = cls._split_kwargs(kwargs)
        if isinstance(preset, (str, os.PathLike)) and preset_io.is_huggingface_directory(preset):
            model = preset_io.load_huggingface(preset, **backbone_kwargs)
            if type(model) is cls and not task_kwargs:
                return model
            backbone = model if isinstance(model, Backbone) else model.backbone
            return cls(backbone, **task_kwargs)
        if isinstance(preset, (str, os.PathLike)) and os.path.isdir(preset):
            record = preset_io.read_preset_config(preset)
            same_class = record["class_name"] == cls.__name__
            if same_class or "backbone" in record["config"]:  # this task's folder, or another task's
                saved_class = cls if same_class else keras.saving.get_registered_object(f"kzoo>{record['class_name']}")
                if saved_class is None:
                    raise ValueError(f"{preset} holds an unknown kzoo class {record['class_name']!r}.")
                record["config"]["backbone"]["config"].update(backbone_kwargs)
                model = saved_class.from_config({**record["config"], **(task_kwargs if same_class else {})})
                if load_weights:
                    model.load_weights(preset_io.weights_path(preset))
                # Another task's folder: keep its backbone, make fresh heads.
                return model if same_class else cls(model.backbone, **task_kwargs)
        backbone = cls.backbone_class.from_preset(preset, load_weights=load_weights, **backbone_kwargs)
        return cls(backbone, **task_kwargs)

    def save_to_preset(self, directory, overwrite=False, assets=()):
        """Write `config.json` and `model.weights.h5` (and copies of `assets`) to `directory`, atomically."""
        preset_io.save_preset(self, directory, overwrite=overwrite, assets=assets)

    def get_config(self):
        return {"backbone": keras.saving.serialize_keras_object(self.backbone), "name": self.name,
                **self._task_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
