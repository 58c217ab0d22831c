"""The one table between kzoo variables and Hugging Face tensor names, used in both directions.

Each entry is `(variable, hf_name, transpose)`: a torch `Linear.weight` is (out, in) where a Keras kernel is
(in, out), so kernels transpose; everything else copies as it is. HF names are given without the model prefix
("bert.", "distilbert.", "albert."); heads keep their own names.
"""


def _dense(layer, name):
    return [(layer.kernel, f"{name}.weight", True), (layer.bias, f"{name}.bias", False)]


def _layer_norm(layer, name):
    return [(layer.gamma, f"{name}.weight", False), (layer.beta, f"{name}.bias", False)]


def _embedding(layer, name):
    return [(layer.embeddings, f"{name}.weight", False)]


# Per architecture: HF names of a block's pieces, relative to the block's prefix.
_BLOCK_NAMES = {
    "bert": dict(query="attention.self.query", key="attention.self.key", value="attention.self.value",
                 attention_output="attention.output.dense", attention_norm="attention.output.LayerNorm",
                 intermediate="intermediate.dense", output="output.dense", output_norm="output.LayerNorm"),
    "distilbert": dict(query="attention.q_lin", key="attention.k_lin", value="attention.v_lin",
                       attention_output="attention.out_lin", attention_norm="sa_layer_norm",
                       intermediate="ffn.lin1", output="ffn.lin2", output_norm="output_layer_norm"),
    "albert": dict(query="attention.query", key="attention.key", value="attention.value",
                   attention_output="attention.dense", attention_norm="attention.LayerNorm",
                   intermediate="ffn", output="ffn_output", output_norm="full_layer_layer_norm"),
}


def block_entries(block, prefix, model_type):
    names = {key: f"{prefix}.{value}" for key, value in _BLOCK_NAMES[model_type].items()}
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
    if model_type == "albert":
        entries += _dense(embedding.projection, "encoder.embedding_hidden_mapping_in")
        K = encoder.num_inner_repetitions
        for index, block in enumerate(encoder.unique_blocks):
            entries += block_entries(
                block, f"encoder.albert_layer_groups.{index // K}.albert_layers.{index % K}", model_type)
        entries += _dense(backbone.pooler.dense, "pooler")
    else:
        layer_prefix = "transformer.layer" if model_type == "distilbert" else "encoder.layer"
        for index, block in enumerate(encoder.unique_blocks):
            entries += block_entries(block, f"{layer_prefix}.{index}", model_type)
        if backbone.pooler is not None:
            entries += _dense(backbone.pooler.dense, "pooler.dense")
    return entries


# HF names of the MLM head pieces (the decoder weight is tied to the word embeddings and not listed).
_MLM_NAMES = {
    "bert": ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias"),
    "distilbert": ("vocab_transform", "vocab_layer_norm", "vocab_projector.bias"),
    "albert": ("predictions.dense", "predictions.LayerNorm", "predictions.bias"),
}
_PAIR_NAMES = {"nsp": "cls.seq_relationship", "sop": "sop_classifier.classifier"}


def mlm_head_entries(head, model_type):
    dense, norm, bias = _MLM_NAMES[model_type]
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
