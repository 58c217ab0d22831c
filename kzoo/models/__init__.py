"""kzoo models: backbones, pretrainers and task models."""

from kzoo.models.albert import AlbertBackbone
from kzoo.models.backbone import Backbone
from kzoo.models.bert import BertBackbone
from kzoo.models.classifier import TextClassifier
from kzoo.models.distil_bert import DistilBertBackbone
from kzoo.models.presets import PRESETS
from kzoo.models.question_answerer import SpanQuestionAnswerer
from kzoo.models.task import Task
from kzoo.models.token_classifier import TokenClassifier
from kzoo.models.pretrainers import (AlbertMaskedLM, AlbertPretrainer, BertMaskedLM, BertPretrainer,
                                     DistilBertMaskedLM, Pretrainer)


def load_preset_folder(directory, **kwargs):
    """The kzoo model saved in `directory` by `save_to_preset`, as the class its `config.json` names (a task
    gets the folder's tokenizer as its preprocessor).

    Example:
        model = load_preset_folder("runs/tweets/best")     # a TextClassifier
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
    "Task", "TextClassifier", "TokenClassifier", "load_preset_folder",
]
