"""Named architectures. Offline and weight-free: `from_preset(name)` builds the architecture with random init;
a directory written by `save_to_preset` (or a converter) brings weights.

`PRESETS` maps each name to (backbone class name, constructor arguments, description); `kzoo presets` lists
them with their parameter counts. Counts in docs/design.md §3 are asserted by tests/test_presets.py.

>>> class_name, config, description = PRESETS["bert_tiny_en_uncased"]
>>> class_name, config["num_layers"], config["hidden_dim"]
('BertBackbone', 2, 128)
"""

_BERT_VOCAB = 30522  # bert-base-uncased vocab.txt
_ALBERT_VOCAB = 30000  # albert spiece.model

PRESETS = {
    # name: (backbone class name, constructor arguments, description)
    "bert_tiny_en_uncased": ("BertBackbone", dict(
        vocabulary_size=_BERT_VOCAB, num_layers=2, num_heads=2, hidden_dim=128, intermediate_dim=512),
        "BERT tiny (Turc et al. 2019): 2 layers, 128 hidden"),
    "bert_small_en_uncased": ("BertBackbone", dict(
        vocabulary_size=_BERT_VOCAB, num_layers=4, num_heads=8, hidden_dim=512, intermediate_dim=2048),
        "BERT small (Turc et al. 2019): 4 layers, 512 hidden"),
    "bert_base_en_uncased": ("BertBackbone", dict(
        vocabulary_size=_BERT_VOCAB, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072),
        "BERT base: 12 layers, 768 hidden"),
    "bert_large_en_uncased": ("BertBackbone", dict(
        vocabulary_size=_BERT_VOCAB, num_layers=24, num_heads=16, hidden_dim=1024, intermediate_dim=4096),
        "BERT large: 24 layers, 1024 hidden"),
    "distil_bert_tiny_en_uncased": ("DistilBertBackbone", dict(
        vocabulary_size=_BERT_VOCAB, num_layers=2, num_heads=2, hidden_dim=128, intermediate_dim=512),
        "DistilBERT-shaped tiny model: 2 layers, 128 hidden"),
    "distil_bert_base_en_uncased": ("DistilBertBackbone", dict(
        vocabulary_size=_BERT_VOCAB, num_layers=6, num_heads=12, hidden_dim=768, intermediate_dim=3072),
        "DistilBERT base: 6 layers, 768 hidden"),
    "albert_tiny_en_uncased": ("AlbertBackbone", dict(
        vocabulary_size=_ALBERT_VOCAB, num_layers=4, num_heads=2, hidden_dim=128, intermediate_dim=512,
        embedding_dim=64), "ALBERT-shaped tiny model: 4 layers sharing 1 block, 128 hidden, E=64"),
    "albert_base_en_uncased": ("AlbertBackbone", dict(
        vocabulary_size=_ALBERT_VOCAB, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072,
        embedding_dim=128), "ALBERT base: 12 layers sharing 1 block, 768 hidden, E=128"),
    "albert_large_en_uncased": ("AlbertBackbone", dict(
        vocabulary_size=_ALBERT_VOCAB, num_layers=24, num_heads=16, hidden_dim=1024, intermediate_dim=4096,
        embedding_dim=128), "ALBERT large: 24 layers sharing 1 block, 1024 hidden"),
    "albert_extra_large_en_uncased": ("AlbertBackbone", dict(
        vocabulary_size=_ALBERT_VOCAB, num_layers=24, num_heads=16, hidden_dim=2048, intermediate_dim=8192,
        embedding_dim=128), "ALBERT xlarge: 24 layers sharing 1 block, 2048 hidden"),
    "albert_extra_extra_large_en_uncased": ("AlbertBackbone", dict(
        vocabulary_size=_ALBERT_VOCAB, num_layers=12, num_heads=64, hidden_dim=4096, intermediate_dim=16384,
        embedding_dim=128), "ALBERT xxlarge: 12 layers sharing 1 block, 4096 hidden"),
}


def preset_names(backbone_class_name=None):
    """All preset names, or those of one backbone class.

    Args:
        backbone_class_name: e.g. "AlbertBackbone"; None: every preset.

    Example:
    >>> preset_names("DistilBertBackbone")
    ['distil_bert_tiny_en_uncased', 'distil_bert_base_en_uncased']
    """
    return [name for name, (cls, _, _) in PRESETS.items()
            if backbone_class_name is None or cls == backbone_class_name]


def count_preset_params(name):
    """The parameter count of a preset's backbone, built with zero weights (fast) and then freed.

    Args:
        name: a preset name (see `PRESETS`).
    """
    from kzoo.layers.initializers import zero_init
    from kzoo.models.registry import model_class

    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; known: {list(PRESETS)}.")
    class_name, config, _ = PRESETS[name]
    with zero_init():  # the class by name, as Backbone.from_preset builds it: backbone.py imports this module
        model = model_class(class_name)(**config)
    count = model.count_params()
    del model
    return count
