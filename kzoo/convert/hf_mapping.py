"""The one table between kzoo variables and Hugging Face tensor names, used in both directions.

Each entry is `(variable, hf_name, transpose)`: a torch `Linear.weight` is (out, in) where a Keras kernel is
(in, out), so kernels transpose; everything else copies as it is. HF names are given without the model prefix
("bert.", "distilbert.", "albert."); heads keep their own names.
"""

from kzoo.architectures import of_model_type


def _dense(layer, name):
    return [(layer.kernel, f"{name}.weight", True), (layer.bias, f"{name}.bias", False)]


def _layer_norm(layer, name):
    return [(layer.gamma, f"{name}.weight", False), (layer.beta, f"{name}.bias", False)]


def _embedding(layer, name):
    return [(layer.embeddings, f"{name}.weight", False)]


def block_entries(block, prefix, model_type):
    names = {key: f"{prefix}.{value}" for key, value in of_model_type(model_type).hf.block.items()}
    attention = block.attention
    return (
        _dense(attention.query_dense, names["query"]) + _dense(attention.key_dense, names["key"])
        + _dense(attention.value_dense, names["value"])
        + _dense(attention.output_dense, names["attention_output"])
        + _layer_norm(block.attention_layer_norm, names["attention_norm"])
        + _dense(block.intermediate_dense, names["intermediate"]) + _dense(block.output_dense, names["output"])
        + _layer_norm(block.output_layer_norm, names["output_norm"])
    )


def backbone_entries(backbone, model_type):
    """Every backbone variable with its HF name."""
    embedding = backbone.embedding
    entries = _embedding(embedding.token_embedding, "embeddings.word_embeddings")
    entries += _embedding(embedding.position_embedding, "embeddings.position_embeddings")
    if embedding.segment_embedding is not None:
        entries += _embedding(embedding.segment_embedding, "embeddings.token_type_embeddings")
    entries += _layer_norm(embedding.layer_norm, "embeddings.LayerNorm")
    encoder = backbone.encoder
    hf = of_model_type(model_type).hf
    if getattr(embedding, "projection", None) is not None:  # ALBERT's E → H
        entries += _dense(embedding.projection, "encoder.embedding_hidden_mapping_in")
    K = getattr(encoder, "num_inner_repetitions", 1)  # ALBERT: block i is group i // K's (i % K)-th
    for index, block in enumerate(encoder.unique_blocks):
        entries += block_entries(block, hf.layer.format(index=index, group=index // K, inner=index % K), model_type)
    if backbone.pooler is not None:
        entries += _dense(backbone.pooler.dense, hf.pooler)
    return entries


_PAIR_NAMES = {"nsp": "cls.seq_relationship", "sop": "sop_classifier.classifier"}


def mlm_head_entries(head, model_type):
    dense, norm, bias, _ = of_model_type(model_type).hf.mlm  # the decoder is tied to the word embeddings
    return _dense(head.dense, dense) + _layer_norm(head.layer_norm, norm) + [(head.bias, bias, False)]


def pair_head_entries(head, task):
    return _dense(head.dense, _PAIR_NAMES[task])


def task_head_entries(model):
    """Fine-tuning heads: `classifier` (sequence and token classification; DistilBERT's sequence classifier also
    has `pre_classifier`) or `qa_outputs` (span QA)."""
    if hasattr(model, "qa_outputs"):
        return _dense(model.qa_outputs, "qa_outputs")
    entries = _dense(model.classifier, "classifier")
    if getattr(model, "pre_classifier", None) is not None:
        entries = _dense(model.pre_classifier, "pre_classifier") + entries
    return entries
