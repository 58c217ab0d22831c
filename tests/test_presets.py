"""Parameter counts: docs/design.md §3 (the papers' and keras-hub's numbers) for every named preset."""

import keras_hub
import pytest

from kzoo.layers.initializers import zero_init
from kzoo.models import (PRESETS, AlbertPretrainer, Backbone, BertBackbone, BertPretrainer, DistilBertMaskedLM)
from kzoo.models.presets import count_preset_params

DESIGN_COUNTS = {
    "bert_base_en_uncased": 109_482_240,
    "bert_large_en_uncased": 335_141_888,
    "distil_bert_base_en_uncased": 66_362_880,
    "albert_base_en_uncased": 11_683_584,
    "albert_large_en_uncased": 17_683_968,
    "albert_extra_large_en_uncased": 58_724_864,
    "albert_extra_extra_large_en_uncased": 222_595_584,
}

PRETRAINER_COUNTS = [
    (BertPretrainer, "bert_base_en_uncased", 110_106_428),
    (DistilBertMaskedLM, "distil_bert_base_en_uncased", 66_985_530),
    (AlbertPretrainer, "albert_base_en_uncased", 11_813_810),
]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DESIGN_COUNTS))
def test_named_preset_counts_equal_design(name):
    assert count_preset_params(name) == DESIGN_COUNTS[name]


@pytest.mark.parametrize("cls,preset,expected", PRETRAINER_COUNTS, ids=[p for _, p, _ in PRETRAINER_COUNTS])
def test_pretrainer_counts_equal_design(cls, preset, expected):
    with zero_init():
        model = cls.from_preset(preset)
    assert model.count_params() == expected


def _keras_hub_twin(class_name, config):
    """The keras-hub backbone of the same architecture: an independent count for the tiny presets."""
    return getattr(keras_hub.models, class_name)(**config)


@pytest.mark.parametrize("name", [n for n in PRESETS if n not in DESIGN_COUNTS])
def test_small_preset_counts_equal_keras_hub(name):
    class_name, config, _ = PRESETS[name]
    assert count_preset_params(name) == _keras_hub_twin(class_name, config).count_params()


def test_from_preset_checks_class_and_name():
    with pytest.raises(ValueError, match="albert_base_en_uncased.*AlbertBackbone, not a BertBackbone"):
        BertBackbone.from_preset("albert_base_en_uncased")
    with pytest.raises(ValueError, match="Unknown preset 'bert_huge'"):
        Backbone.from_preset("bert_huge")


def test_from_preset_overrides_config():
    model = BertBackbone.from_preset("bert_tiny_en_uncased", dropout=0.0, max_sequence_length=64)
    assert model.dropout == 0.0 and model.max_sequence_length == 64 and model.num_layers == 2
