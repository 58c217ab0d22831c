"""What an exported model computes: the task's outputs from token ids, and raw strings → token ids in the graph.

Both are written once here. The output function serves the SavedModel's signatures and the TFLite file (traced by
`tf.function` on the TensorFlow backend) and the ONNX file (traced by torch.export on the torch backend); the
string function runs in the SavedModel's graph.
"""

import keras
from keras import ops

from kzoo.models.backbone import Backbone
from kzoo.models.classifier import TextClassifier
from kzoo.models.pooling import mean_pool
from kzoo.models.pretrainers import Pretrainer
from kzoo.models.question_answerer import SpanQuestionAnswerer
from kzoo.models.task import Task
from kzoo.models.text_embedder import TextEmbedder
from kzoo.models.token_classifier import TokenClassifier

MASK_TOKEN = "[MASK]"


def check_exportable(model):
    """Raise a ValueError naming the problem unless `model` is a built kzoo backbone or task model."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"export takes a kzoo model (a backbone or task), not a {type(model).__name__}.")
    if not model.built or not model.weights:
        raise ValueError(f"{type(model).__name__} {model.name!r} was never built: it has no weights to export. "
                         "Call it on a batch or load weights first.")
    if not isinstance(model, (Backbone, Task)):
        raise ValueError(f"export takes a kzoo backbone or task model; {type(model).__name__} is neither.")


def check_input_keys(path, input_keys, inputs):
    """Raise a ValueError naming the exported file and the inputs it needs that `inputs` lacks (the runners')."""
    missing = set(input_keys) - set(inputs)
    if missing:
        raise ValueError(f"{path} needs inputs {sorted(missing)} (it takes {list(input_keys)}).")


def backbone_of(model):
    return model if isinstance(model, Backbone) else model.backbone


def input_keys(model):
    """The id inputs of the exported model: the backbone's (a pretrainer's mask positions become every token)."""
    return tuple(backbone_of(model).input_keys)


def is_per_token(name, value):
    """True for a (batch, sequence, ...) serving output: token states, per-token logits, MLM top-k, span logits."""
    return len(value.shape) >= 3 or name in ("start_logits", "end_logits")


def _float32(outputs):
    return {name: ops.cast(value, "float32") if "float" in str(value.dtype) else value
            for name, value in outputs.items()}


def output_function(model, top_k=5):
    """`fn(inputs) -> dict of tensors`, the task's serving outputs:

    - `TextClassifier`, `TokenClassifier`: `logits` and `probabilities` (softmax over the classes);
    - `SpanQuestionAnswerer`: `start_logits` and `end_logits` (padding at -1e9);
    - `TextEmbedder`: `sentence_embedding` (its pooling, L2-normalised when it normalises);
    - pretrainers: `top_k_ids` and `top_k_probabilities` (batch, sequence, k) of the MLM head at every position,
      plus `nsp_probabilities` / `sop_probabilities` where the model has a sentence-pair head;
    - backbones: `sequence_output`, `pooled_output` (BERT, ALBERT) and `sentence_embedding` (the L2-normalised
      mean of the non-padding token states, as sentence-transformers).
    """
    if isinstance(model, Pretrainer):
        k = min(int(top_k), model.backbone.vocabulary_size)

        def pretrainer_outputs(inputs):
            features = model.backbone({key: inputs[key] for key in model.backbone.input_keys}, training=False)
            logits = ops.cast(model.mlm_head(features["sequence_output"]), "float32")
            probabilities, ids = ops.top_k(ops.softmax(logits, axis=-1), k)
            outputs = {"top_k_ids": ops.cast(ids, "int32"), "top_k_probabilities": probabilities}
            if model.pair_head is not None:
                pair_logits = ops.cast(model.pair_head(features["pooled_output"]), "float32")
                outputs[f"{model.pair_task}_probabilities"] = ops.softmax(pair_logits, axis=-1)
            return outputs

        return pretrainer_outputs
    if isinstance(model, (TextClassifier, TokenClassifier)):
        def classifier_outputs(inputs):
            logits = ops.cast(model(inputs, training=False), "float32")
            return {"logits": logits, "probabilities": ops.softmax(logits, axis=-1)}

        return classifier_outputs
    if isinstance(model, SpanQuestionAnswerer):
        return lambda inputs: _float32(model(inputs, training=False))
    if isinstance(model, TextEmbedder):
        return lambda inputs: {"sentence_embedding": ops.cast(model(inputs, training=False), "float32")}
    if isinstance(model, Backbone):
        def backbone_outputs(inputs):
            outputs = dict(model(inputs, training=False))
            outputs["sentence_embedding"] = mean_pool(ops.cast(outputs["sequence_output"], "float32"),
                                                      inputs["padding_mask"])
            return _float32(outputs)

        return backbone_outputs
    raise ValueError(f"kzoo cannot export a {type(model).__name__}: no serving outputs are defined for it.")


def tokenize_keeping_masks(tokenizer, texts, mask_id):
    """Token ids (ragged) of each string, with every literal "[MASK]" in the text kept as the mask id.

    The tokenizer alone would lower-case and split "[MASK]" into "[", "mask", "]"; a masked-LM serving input
    ("the [MASK] sat down") needs it whole, as Hugging Face's tokenizers keep special tokens whole.
    """
    import tensorflow as tf

    pieces = tf.strings.split(texts, MASK_TOKEN)  # (batch, pieces): n masks → n + 1 pieces
    tokens = tokenizer(pieces.flat_values)  # (all pieces, tokens)
    not_last = tf.cast(tf.range(tf.size(pieces.flat_values, out_type=tf.int64)) + 1
                       < tf.repeat(pieces.row_splits[1:], pieces.row_lengths()), tf.int32)
    masks = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(not_last)], tf.cast(mask_id, tokens.dtype)),
                                             tf.cast(not_last, tokens.row_splits.dtype))
    joined = tf.concat([tokens, masks], axis=1)  # each piece followed by a mask, except a text's last piece
    return tf.RaggedTensor.from_row_splits(joined, tf.cast(pieces.row_splits, joined.row_splits.dtype)).merge_dims(1, 2)


def checked_utf8(texts, name):
    """`texts` (a tf.string batch), after an assertion that fails naming the indices of the strings that are not
    valid UTF-8, which the tokenizer would silently drop or replace: "[text[i] is not valid UTF-8 at indices i =]
    [1 3]" (the first 20)."""
    import tensorflow as tf

    valid = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace") == texts
    bad = tf.reshape(tf.where(~valid), [-1])
    check = tf.debugging.Assert(tf.reduce_all(valid), [f"{name}[i] is not valid UTF-8 at indices i =", bad,
                                                       "(decode the text and encode it as UTF-8)"], summarize=20)
    with tf.control_dependencies([check]):
        return tf.identity(texts)


def text_function(preprocessor, keys, keep_masks=False):
    """`fn(texts[, pairs]) -> inputs`: tokenize and pack in the graph exactly as `TextPreprocessor.encode` does
    (`[CLS] A [SEP] (B [SEP])`, truncated by its packer), then trim the batch to its longest member.

    Strings that are not UTF-8 fail the call, naming their indices (`checked_utf8`). Every UTF-8 string is
    served: one with no tokens (empty, whitespace, control characters) as `[CLS] [SEP]`, where kzoo's Python
    `predict` refuses an empty or whitespace-only text; an empty batch gives empty outputs."""
    import tensorflow as tf

    special = preprocessor.special
    if keep_masks and special.mask is None:
        raise ValueError("The tokenizer has no [MASK] token, which a masked-LM export's text input needs.")

    def tokenize(texts):
        if keep_masks:
            return tokenize_keeping_masks(preprocessor.tokenizer, texts, special.mask)
        return preprocessor.tokenizer(texts)

    def encode(texts, pairs=None):
        texts = checked_utf8(texts, "text")
        if pairs is None:
            segments = tokenize(texts)
        else:
            pairs = checked_utf8(pairs, "text_pair")
            same = tf.debugging.assert_equal(tf.size(texts), tf.size(pairs),
                                             message="text and text_pair must hold as many strings")
            with tf.control_dependencies([same]):
                segments = (tokenize(texts), tokenize(pairs))
        token_ids, segment_ids = preprocessor.packer(segments)
        token_ids, segment_ids = tf.cast(token_ids, tf.int32), tf.cast(segment_ids, tf.int32)
        padding_mask = tf.cast(token_ids != special.pad, tf.int32)
        width = tf.maximum(tf.reduce_max(tf.reduce_sum(padding_mask, axis=1)), 2)  # an empty batch: 2 columns
        inputs = {"token_ids": token_ids[:, :width], "segment_ids": segment_ids[:, :width],
                  "padding_mask": padding_mask[:, :width]}
        return {key: inputs[key] for key in keys}

    return encode
