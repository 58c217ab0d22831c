"""kzoo models: backbones, pretrainers and task models."""

from kzoo.models.albert import AlbertBackbone
from kzoo.models.backbone import Backbone
from kzoo.models.bert import BertBackbone
from kzoo.models.classifier import TextClassifier
from kzoo.models.distil_bert import DistilBertBackbone
from kzoo.models.presets import PRESETS
from kzoo.models.question_answerer import SpanQuestionAnswerer
from kzoo.models.task import Task
from kzoo.models.text_embedder import TextEmbedder
from kzoo.models.token_classifier import TokenClassifier
from kzoo.models.pretrainers import (AlbertMaskedLM, AlbertPretrainer, BertMaskedLM, BertPretrainer,
                                     DistilBertMaskedLM, Pretrainer)
from kzoo.models.registry import register


def load_preset_folder(directory, **kwargs):
    """The kzoo model saved in `directory` by `save_to_preset`, as the class its `config.json` names (a task
    gets the folder's tokenizer as its preprocessor).

    Args:
        directory: a folder written by `save_to_preset` (e.g. a `kzoo finetune` run's `best/`).
        **kwargs: passed to that class's `from_preset` (e.g. `load_weights=False`, `dropout=0.0`).

    Example:
    >>> import os, tempfile
    >>> backbone = BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                         intermediate_dim=32, max_sequence_length=16)
    >>> folder = os.path.join(tempfile.mkdtemp(), "tagger")
    >>> TokenClassifier(backbone, label_names=["O", "NAME"]).save_to_preset(folder)
    >>> model = load_preset_folder(folder)
    >>> type(model).__name__, model.label_names
    ('TokenClassifier', ['O', 'NAME'])
    """
    from kzoo.models import preset_io

    record = preset_io.read_preset_config(directory)
    cls = globals().get(record["class_name"])
    if not (isinstance(cls, type) and issubclass(cls, (Backbone, Task))):
        raise ValueError(f"{directory} holds a {record['class_name']!r}, which is not a kzoo model class.")
    return cls.from_preset(directory, **kwargs)


__all__ = [
    "AlbertBackbone", "AlbertMaskedLM", "AlbertPretrainer", "Backbone", "BertBackbone", "BertMaskedLM",
    "BertPretrainer", "DistilBertBackbone", "DistilBertMaskedLM", "PRESETS", "Pretrainer", "SpanQuestionAnswerer",
    "Task", "TextClassifier", "TextEmbedder", "TokenClassifier", "load_preset_folder",
]

# Classes by name for the modules below this one (preset_io, the Hugging Face reader): see registry.py.
register({name: cls for name, cls in globals().items()
          if name in __all__ and isinstance(cls, type) and issubclass(cls, (Backbone, Task))})
