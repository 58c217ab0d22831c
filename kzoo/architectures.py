"""One record per architecture: what BERT, DistilBERT and ALBERT are, for every part of kzoo that branches on it.

The data pipeline (`ARCH_TASKS`), the pretraining recipe (pretrainer, preset, tokenizer, optimizer and masking
defaults), the student builder, the CLI's `--arch` / `--student-arch` choices and both converters read these
records; adding an architecture means adding a record (and its model classes). Classes are named, not imported:
this module imports nothing, so the CLI reads it without loading Keras (docs/design.md §1).

>>> ARCHITECTURES["albert"].pretraining_task, ARCHITECTURES["albert"].vocabulary_file
('sop', 'spiece.model')
>>> of_model_type("distilbert").name
'distil_bert'
"""

import dataclasses

REQUIRED = None  # a config.json key without a default: converting a config that lacks it is an error


@dataclasses.dataclass(frozen=True)
class ConfigKey:
    """One backbone argument in a Hugging Face config.json: read from `keys[0]` (`default` when absent, unless
    REQUIRED), written to every key in `keys`. `argument=None` is a constant, written as `default`, never read."""

    argument: str | None
    keys: tuple
    default: object = REQUIRED


def _keys(*rows):
    return tuple(ConfigKey(argument, (keys,) if isinstance(keys, str) else keys, *default)
                 for argument, keys, *default in rows)


@dataclasses.dataclass(frozen=True)
class HuggingFace:
    """How transformers names the architecture: its config.json and tensor names, both ways (kzoo/convert)."""

    model_type: str  # config.json's model_type; "bert." etc. prefixes the backbone's tensor names
    class_prefix: str  # transformers' classes: BertModel, BertForPreTraining, BertForMaskedLM, ...
    config_keys: tuple  # ConfigKey rows, in config.json's order
    layer: str  # a block's tensor prefix; ALBERT's name the shared group and the block within it
    block: dict  # a block's pieces, relative to `layer`
    pooler: str | None
    mlm: tuple  # the MLM head: transform dense, its LayerNorm, output bias, and the decoder tied to the embeddings
    head_dropout: dict  # task class name -> config.json key of its head's dropout (absent: none written)

    @property
    def prefix(self):
        return self.model_type + "."

    @property
    def base_class(self):
        return self.class_prefix + "Model"


@dataclasses.dataclass(frozen=True)
class Architecture:
    name: str  # the --arch value
    title: str
    backbone: str  # kzoo.models class names (keras-hub's backbone has the same name)
    pretrainer: str
    masked_lm: str  # the MLM head alone (Hugging Face's *ForMaskedLM)
    tiny_preset: str  # `kzoo pretrain`'s default preset
    tokenizer: str  # "wordpiece" or "sentencepiece"
    segments: bool  # takes segment ids
    shares_layers: bool  # ALBERT's shared groups and factorized embeddings: students stay within the same kind
    pretraining_task: str  # the sentence-pair objective beside MLM ("nsp", "sop"), or "mlm" alone
    optimizer: str  # the pretraining defaults (docs/design.md §5)
    masking: str
    keras_hub_activation: str  # the GELU keras-hub's backbone fixes (docs/design.md §4)
    keras_hub_embedding_scope: str  # keras-hub's variable path of the token and position tables
    hf: HuggingFace

    @property
    def vocabulary_file(self):
        return "spiece.model" if self.tokenizer == "sentencepiece" else "vocab.txt"

    @property
    def objectives(self):
        """"MLM+NSP", "MLM+SOP" or "MLM"."""
        return "MLM" if self.pretraining_task == "mlm" else f"MLM+{self.pretraining_task.upper()}"


_BERT_CONFIG = _keys(
    ("vocabulary_size", "vocab_size"), ("num_layers", "num_hidden_layers"), ("num_heads", "num_attention_heads"),
    ("hidden_dim", "hidden_size"), ("intermediate_dim", "intermediate_size"),
    ("dropout", ("hidden_dropout_prob", "attention_probs_dropout_prob"), 0.1),
    ("max_sequence_length", "max_position_embeddings"), ("num_segments", "type_vocab_size", 2),
    ("activation", "hidden_act", "gelu"), ("layer_norm_epsilon", "layer_norm_eps", 1e-12),
    ("initializer_range", "initializer_range", 0.02), (None, "pad_token_id", 0))
_CLASSIFIER_DROPOUT = {"TextClassifier": "classifier_dropout", "TokenClassifier": "classifier_dropout"}

ARCHITECTURES = {arch.name: arch for arch in (
    Architecture(
        name="bert", title="BERT", backbone="BertBackbone", pretrainer="BertPretrainer", masked_lm="BertMaskedLM",
        tiny_preset="bert_tiny_en_uncased", tokenizer="wordpiece", segments=True, shares_layers=False,
        pretraining_task="nsp", optimizer="adamw", masking="token", keras_hub_activation="gelu_approximate",
        keras_hub_embedding_scope="",
        hf=HuggingFace(
            model_type="bert", class_prefix="Bert", config_keys=_BERT_CONFIG, layer="encoder.layer.{index}",
            block=dict(query="attention.self.query", key="attention.self.key", value="attention.self.value",
                       attention_output="attention.output.dense", attention_norm="attention.output.LayerNorm",
                       intermediate="intermediate.dense", output="output.dense", output_norm="output.LayerNorm"),
            pooler="pooler.dense", head_dropout=_CLASSIFIER_DROPOUT,
            mlm=("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias",
                 "cls.predictions.decoder"))),
    Architecture(
        name="distil_bert", title="DistilBERT", backbone="DistilBertBackbone", pretrainer="DistilBertMaskedLM",
        masked_lm="DistilBertMaskedLM", tiny_preset="distil_bert_tiny_en_uncased", tokenizer="wordpiece",
        segments=False, shares_layers=False, pretraining_task="mlm", optimizer="adamw", masking="token",
        keras_hub_activation="gelu", keras_hub_embedding_scope="token_and_position_embedding/",
        hf=HuggingFace(
            model_type="distilbert", class_prefix="DistilBert", layer="transformer.layer.{index}",
            config_keys=_keys(
                ("vocabulary_size", "vocab_size"), ("num_layers", "n_layers"), ("num_heads", "n_heads"),
                ("hidden_dim", "dim"), ("intermediate_dim", "hidden_dim"),
                ("dropout", ("dropout", "attention_dropout"), 0.1),
                ("max_sequence_length", "max_position_embeddings"),
                ("activation", "activation", "gelu"), ("initializer_range", "initializer_range", 0.02),
                (None, "sinusoidal_pos_embds", False), (None, "pad_token_id", 0)),
            block=dict(query="attention.q_lin", key="attention.k_lin", value="attention.v_lin",
                       attention_output="attention.out_lin", attention_norm="sa_layer_norm",
                       intermediate="ffn.lin1", output="ffn.lin2", output_norm="output_layer_norm"),
            pooler=None,  # DistilBERT has none
            head_dropout={"TextClassifier": "seq_classif_dropout", "TokenClassifier": None,
                          "SpanQuestionAnswerer": "qa_dropout"},
            mlm=("vocab_transform", "vocab_layer_norm", "vocab_projector.bias", "vocab_projector"))),
    Architecture(
        name="albert", title="ALBERT", backbone="AlbertBackbone", pretrainer="AlbertPretrainer",
        masked_lm="AlbertMaskedLM", tiny_preset="albert_tiny_en_uncased", tokenizer="sentencepiece",
        segments=True, shares_layers=True, pretraining_task="sop", optimizer="lamb", masking="ngram",
        keras_hub_activation="gelu_approximate", keras_hub_embedding_scope="",
        hf=HuggingFace(
            model_type="albert", class_prefix="Albert",
            layer="encoder.albert_layer_groups.{group}.albert_layers.{inner}",
            config_keys=_BERT_CONFIG + _keys(("embedding_dim", "embedding_size"),
                                             ("num_groups", "num_hidden_groups", 1),
                                             ("num_inner_repetitions", "inner_group_num", 1)),
            block=dict(query="attention.query", key="attention.key", value="attention.value",
                       attention_output="attention.dense", attention_norm="attention.LayerNorm",
                       intermediate="ffn", output="ffn_output", output_norm="full_layer_layer_norm"),
            pooler="pooler",
            head_dropout={"TextClassifier": "classifier_dropout_prob", "TokenClassifier": "classifier_dropout_prob"},
            mlm=("predictions.dense", "predictions.LayerNorm", "predictions.bias", "predictions.decoder"))),
)}


def of_model_type(model_type):
    """The record whose Hugging Face `model_type` this is, or None."""
    return next((arch for arch in ARCHITECTURES.values() if arch.hf.model_type == model_type), None)


def of_backbone(backbone):
    """The record of a backbone (or its class): its own kzoo class, or the nearest it derives from (DistilBERT's
    class derives from BERT's; its own record comes first). A class kzoo does not know is a ValueError."""
    cls = backbone if isinstance(backbone, type) else type(backbone)
    names = {arch.backbone: arch for arch in ARCHITECTURES.values()}
    record = next((names[base.__name__] for base in cls.__mro__ if base.__name__ in names), None)
    if record is None:
        raise ValueError(f"{cls.__name__} is none of kzoo's backbones ({', '.join(sorted(names))}) nor derives from "
                         "one.")
    return record


def is_keras_hub_record(record):
    """True for a JSON record keras-hub wrote (a preset's config.json, tokenizer.json or preprocessor.json): its
    `registered_name` is "keras_hub>...".

    >>> is_keras_hub_record({"registered_name": "keras_hub>BertBackbone"}), is_keras_hub_record({"model_type": "bert"})
    (True, False)
    """
    return str(record.get("registered_name", "")).startswith("keras_hub>")
