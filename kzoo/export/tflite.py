"""TFLite (LiteRT) export of the token-id model, fp32 or dynamic-range int8, with built-in ops only."""

import os
import tempfile

import numpy as np

from kzoo.atomic import atomic_file
from kzoo.export import serving
from kzoo.export.backend_process import export_in_process, on_backend
from kzoo.native_logs import native_stderr_quieted

QUANTIZE_MODES = (None, "int8")
SIGNATURE = "serve_ids"


def default_sequence_length(model):
    """The preprocessor's sequence length, else the backbone's `max_sequence_length`."""
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is not None:
        return preprocessor.sequence_length
    return int(serving.backbone_of(model).max_sequence_length)


def tflite(model, path, quantize=None, sequence_length=None, top_k=5, with_preprocessing=False, overwrite=False):
    """Write `model` as a `.tflite` file: token ids in (batch, `sequence_length`), the task's outputs out.

    The tokenizer is not inside: its ops (tensorflow-text's WordPiece and SentencePiece) are not TFLite
    built-ins, so the file would need the Flex delegate and custom ops. Tokenize on the host with the model's
    `preprocessor`, to at most `sequence_length` tokens (default: the preprocessor's, else the backbone's
    maximum); `TFLiteRunner` pads to it. `quantize="int8"` stores weights as int8 (dynamic-range
    quantization: activations stay float, no calibration data needed). Conversion uses built-in ops only.
    The write is atomic; an existing file needs `overwrite=True`. On the JAX or torch backend the model is
    exported by a TensorFlow-backend process.

    Args:
        model: a kzoo backbone, pretrainer or task model.
        path: the file to write; its name ends with `.tflite`.
        quantize: None (float32 weights) or "int8".
        sequence_length: the file's fixed input length, from 3 to the backbone's `max_sequence_length`; None:
            the preprocessor's `sequence_length`, else the backbone's maximum.
        top_k: how many MLM predictions a pretrainer's file returns at each position.
        with_preprocessing: True is refused, saying why (the tokenizer's ops are not TFLite built-ins).
        overwrite: replace an existing file.

    Returns:
        `path`.

    Example (run on the TensorFlow backend only here: from JAX it would start a TensorFlow process):
    >>> import os, tempfile
    >>> import keras, pytest
    >>> if keras.backend.backend() != "tensorflow":
    ...     pytest.skip("the export examples run on the TensorFlow backend")
    >>> from kzoo.data import BertWordPieceTokenizer
    >>> from kzoo.data.task_inputs import TextPreprocessor
    >>> from kzoo.models import BertBackbone, TextClassifier
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "day"])
    >>> backbone = BertBackbone(vocabulary_size=6, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
    ...                         max_sequence_length=32)
    >>> classifier = TextClassifier(backbone, label_names=["negative", "positive"],
    ...                             preprocessor=TextPreprocessor(tokenizer, sequence_length=16))
    >>> path = tflite(classifier, os.path.join(tempfile.mkdtemp(), "sentiment.tflite"), quantize="int8")
    >>> runner = TFLiteRunner(path)
    >>> runner.sequence_length, runner.input_keys
    (16, ('padding_mask', 'segment_ids', 'token_ids'))
    >>> outputs = runner(classifier.preprocessor(["a good day"]))   # tokenized on the host, padded to 16
    >>> sorted(outputs), outputs["probabilities"].shape
    (['logits', 'probabilities'], (1, 2))
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}; got {quantize!r}.")
    if with_preprocessing:
        raise ValueError("TFLite export takes token ids only: the tokenizer's tensorflow-text ops are not TFLite "
                         "built-in ops. Export the id model (with_preprocessing=False) and tokenize on the host, "
                         "or use saved_model(...) for a model that takes raw strings.")
    serving.check_exportable(model)
    if not str(path).endswith(".tflite"):
        raise ValueError(f"A TFLite file name ends with .tflite; got {path}.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{os.path.abspath(path)} already exists; pass overwrite=True to replace it.")
    sequence_length = int(sequence_length or default_sequence_length(model))
    limit = serving.backbone_of(model).max_sequence_length
    if not 3 <= sequence_length <= limit:
        raise ValueError(f"sequence_length must be in [3, max_sequence_length={limit}]; got {sequence_length}.")
    if not on_backend("tensorflow"):
        return export_in_process(model, "tflite", path, quantize=quantize, sequence_length=sequence_length,
                                 top_k=top_k, overwrite=overwrite)
    flatbuffer = convert(model, sequence_length, quantize, top_k)
    with atomic_file(path, "wb") as f:
        f.write(flatbuffer)
    return path


def convert(model, sequence_length, quantize=None, top_k=5):
    """The TFLite flatbuffer (bytes): Keras' `ExportArchive` writes the id signature as a SavedModel, which
    `TFLiteConverter` turns into built-in ops (Keras' own `format="litert"` also allows Flex TF ops)."""
    import keras
    import tensorflow as tf

    from kzoo.export.saved_model import id_signature

    archive = keras.export.ExportArchive()
    archive.add_endpoint(SIGNATURE, serving.output_function(model, top_k),
                         input_signature=[id_signature(model, sequence_length)])
    with tempfile.TemporaryDirectory(prefix="kzoo-tflite-") as scratch:
        archive.write_out(scratch, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=[SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: dynamic range
        return converter.convert()


class TFLiteRunner:
    """Runs an exported `.tflite` file with ai-edge-litert's interpreter (`tf.lite.Interpreter` is deprecated).

    Call it with the id inputs (int32 (batch, length ≤ the file's sequence length)); they are padded to the
    file's fixed length, and per-token outputs are cut back to `length`. It returns the outputs as a dict of
    numpy arrays. `sequence_length` and `input_keys` say what the file takes.

    Args:
        path: a file written by `tflite`.
        num_threads: the interpreter's CPU threads; None: its default.

    Example (a whole run, from export to outputs, is in `tflite`'s docstring):
        runner = TFLiteRunner("saved_models/sentiment.tflite")
        runner(classifier.preprocessor(["what a lovely day"]))["probabilities"]
    """

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        if not os.path.isfile(path):
            raise FileNotFoundError(f"TFLite file {path} does not exist.")
        self.path = path
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        with native_stderr_quieted():  # LiteRT announces its XNNPACK delegate here, on stderr (kzoo/native_logs.py)
            self.interpreter.allocate_tensors()
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        details = self.runner.get_input_details()
        self.input_keys = tuple(sorted(details))
        self.sequence_length = int(next(iter(details.values()))["shape"][1])

    def __call__(self, inputs):
        serving.check_input_keys(self.path, self.input_keys, inputs)
        arrays = {key: np.asarray(inputs[key], "int32") for key in self.input_keys}
        length = arrays["token_ids"].shape[1]
        if length > self.sequence_length:
            raise ValueError(f"token_ids has sequence length {length}, longer than the TFLite file's fixed "
                             f"{self.sequence_length}.")
        # Padding slots carry padding_mask 0, so they change no real position's output.
        arrays = {key: np.pad(value, [(0, 0), (0, self.sequence_length - length)]) for key, value in arrays.items()}
        outputs = self.runner(**arrays)
        return {name: value[:, :length] if serving.is_per_token(name, value) else value
                for name, value in outputs.items()}
