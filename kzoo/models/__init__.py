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

__all__ = [
    "AlbertBackbone", "AlbertMaskedLM", "AlbertPretrainer", "Backbone", "BertBackbone", "BertMaskedLM",
    "BertPretrainer", "DistilBertBackbone", "DistilBertMaskedLM", "PRESETS", "Pretrainer", "SpanQuestionAnswerer",
    "Task", "TextClassifier", "TokenClassifier",
]
