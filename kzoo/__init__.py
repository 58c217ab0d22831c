"""kzoo: a Keras 3 multi-backend model zoo of the BERT family.

Example:
    >>> from kzoo.models import BertBackbone
    >>> backbone = BertBackbone.from_preset("bert_tiny_en_uncased")
    >>> backbone.count_params()
    4385920
"""

__version__ = "0.1.0"
