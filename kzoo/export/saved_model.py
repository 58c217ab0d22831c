"""SavedModel export with the tokenizer inside the graph: serving raw strings with no kzoo installed."""

import json
import os

from kzoo.atomic import atomic_directory
from kzoo.export import serving
from kzoo.export.backend_process import export_in_process, on_backend

METADATA_FILE = "kzoo_export.json"


def saved_model(model, directory, with_preprocessing=True, preprocessor=None, top_k=5, overwrite=False):
    """Write `model` as a TensorFlow SavedModel whose signatures take raw strings and token ids.

    Signatures (the first is `serving_default`):
      - `serve_text(text)` and `serve_text_pair(text, text_pair)`: batches of strings, tokenized and packed
        in the graph exactly as kzoo's `TextPreprocessor` does (with `with_preprocessing`);
      - `serve_ids(token_ids, [segment_ids,] padding_mask)`: int32 (batch, sequence).
    Outputs are the task's (`kzoo.export.serving.output_function`): class `probabilities` and `logits` (plus
    `label` names when the classifier has them), span logits, MLM `top_k_ids` / `top_k_probabilities` /
    `top_k_tokens` (a literal "[MASK]" in the text stays a mask), or a backbone's `sentence_embedding`.

    It loads with `tf.saved_model.load(directory)` where only tensorflow and tensorflow-text are installed (the
    tokenizer's ops live in tensorflow-text: `import tensorflow_text` first). On the JAX or torch backend the
    model is saved to a temporary preset and exported by a TensorFlow-backend process. The write is atomic: a
    failure leaves nothing at `directory`; an existing `directory` needs `overwrite=True`.

    Args:
        model: a kzoo backbone, pretrainer or task model.
        directory: the SavedModel folder to write.
        with_preprocessing: add the raw-string signatures (needs a preprocessor); False: `serve_ids` only.
        preprocessor: the `TextPreprocessor` to put in the graph; None: the model's own.
        top_k: how many MLM predictions a pretrainer's signatures return at each position.
        overwrite: replace an existing `directory`.

    Returns:
        `directory`.

    Example (run on the TensorFlow backend only here: from JAX it would start a TensorFlow process):
    >>> import os, tempfile
    >>> import keras, pytest
    >>> if keras.backend.backend() != "tensorflow":
    ...     pytest.skip("the export examples run on the TensorFlow backend")
    >>> import tensorflow as tf
    >>> import tensorflow_text  # registers the tokenizer's ops
    >>> from kzoo.data import BertWordPieceTokenizer
    >>> from kzoo.data.task_inputs import TextPreprocessor
    >>> from kzoo.models import BertBackbone, TextClassifier
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "day"])
    >>> backbone = BertBackbone(vocabulary_size=6, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
    ...                         max_sequence_length=32)
    >>> classifier = TextClassifier(backbone, label_names=["negative", "positive"],
    ...                             preprocessor=TextPreprocessor(tokenizer, sequence_length=16))
    >>> directory = saved_model(classifier, os.path.join(tempfile.mkdtemp(), "sentiment"))
    >>> served = tf.saved_model.load(directory)    # where only tensorflow and tensorflow-text are installed
    >>> outputs = served.signatures["serve_text"](text=tf.constant(["a good day"]))
    >>> sorted(outputs), tuple(outputs["probabilities"].shape)
    (['label', 'logits', 'probabilities'], (1, 2))
    """
    serving.check_exportable(model)
    if os.path.exists(directory) and not overwrite:
        raise FileExistsError(f"{os.path.abspath(directory)} already exists; pass overwrite=True to replace it.")
    preprocessor = preprocessor or getattr(model, "preprocessor", None)
    if with_preprocessing and preprocessor is None:
        raise ValueError(f"{type(model).__name__} has no preprocessor (tokenizer) to put in the SavedModel; pass "
                         "preprocessor=TextPreprocessor(tokenizer) or with_preprocessing=False.")
    if not on_backend("tensorflow"):
        return export_in_process(model, "saved_model", directory, preprocessor=preprocessor,
                                 with_preprocessing=with_preprocessing, top_k=top_k, overwrite=overwrite)
    with atomic_directory(directory, overwrite=overwrite) as staging:
        archive, signatures = _archive(model, preprocessor if with_preprocessing else None, top_k)
        archive.write_out(staging, verbose=False)
        metadata = {"class_name": type(model).__name__, "signatures": signatures,
                    "input_keys": list(serving.input_keys(model)),
                    "sequence_length": preprocessor.sequence_length if with_preprocessing else None,
                    "label_names": getattr(model, "label_names", None)}
        os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
        with open(os.path.join(staging, "assets.extra", METADATA_FILE), "w") as f:
            json.dump(metadata, f, indent=2)
    return directory


def id_signature(model, sequence_length=None):
    """The id inputs' `tf.TensorSpec`s: int32 (batch, `sequence_length` or any)."""
    import tensorflow as tf

    return {key: tf.TensorSpec((None, sequence_length), tf.int32, name=key) for key in serving.input_keys(model)}


def _with_names(model, outputs_fn, preprocessor):
    """Add string outputs the graph can give directly: class `label` names, MLM `top_k_tokens` (which need the
    tokenizer's vocabulary)."""
    import tensorflow as tf

    label_names = getattr(model, "label_names", None)
    vocabulary = None
    if isinstance(model, serving.Pretrainer) and preprocessor is not None:
        vocabulary = tf.constant(preprocessor.tokenizer.get_vocabulary())

    def named(inputs):
        outputs = outputs_fn(inputs)
        if label_names and "probabilities" in outputs and len(outputs["probabilities"].shape) == 2:
            outputs["label"] = tf.gather(tf.constant(label_names), tf.argmax(outputs["probabilities"], axis=-1))
        if vocabulary is not None and "top_k_ids" in outputs:
            outputs["top_k_tokens"] = tf.gather(vocabulary, outputs["top_k_ids"])
        return outputs

    return named


def _archive(model, preprocessor, top_k):
    """A `keras.export.ExportArchive` with the serving endpoints. The model is not `track`ed: its endpoints
    capture its variables already, and tracking it too writes every weight twice (Keras 3.15). The tokenizer's
    lookup tables are not variables, so it is tracked."""
    import keras
    import tensorflow as tf

    outputs = _with_names(model, serving.output_function(model, top_k), preprocessor)
    archive = keras.export.ExportArchive()
    signatures = []
    if preprocessor is not None:
        encode = serving.text_function(preprocessor, serving.input_keys(model),
                                       keep_masks=isinstance(model, serving.Pretrainer))
        # A traced call builds the tokenizer and packer layers, which `track` needs.
        tf.function(encode).get_concrete_function(tf.TensorSpec((None,), tf.string), tf.TensorSpec((None,), tf.string))
        archive.track(preprocessor.tokenizer)
        archive.track(preprocessor.packer)
        text = tf.TensorSpec((None,), tf.string, name="text")
        archive.add_endpoint("serve_text", lambda texts: outputs(encode(texts)), input_signature=[text])
        archive.add_endpoint("serve_text_pair", lambda texts, pairs: outputs(encode(texts, pairs)),
                             input_signature=[text, tf.TensorSpec((None,), tf.string, name="text_pair")])
        signatures += ["serve_text", "serve_text_pair"]
    archive.add_endpoint("serve_ids", outputs, input_signature=[id_signature(model)])
    signatures.append("serve_ids")
    return archive, signatures
