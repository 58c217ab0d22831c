"""ONNX export of the token-id model (float32, or int8 by ONNX Runtime's dynamic quantization) and a runner.

The graph comes from torch's exporter (`torch.onnx.export(dynamo=True)`, torch.export underneath) run on the
torch backend, with dynamic batch and sequence axes. Keras' own `model.export(format="onnx")` was tried on each
backend with the pinned versions:
- TensorFlow (tf2onnx 1.17): a correct graph only with one of tf2onnx's passes switched off, and a slow one:
  every Dense becomes a reshape / MatMul / reshape with its shape computed at run time and LayerNorm a chain of
  pooling and arithmetic; ONNX Runtime fuses little of it (475 nodes after its optimizations for the 3-layer
  tweets student, against 141 from torch).
- JAX: needs jax2onnx, which pulls flax, orbax and optax.
- torch: with dynamic axes Keras takes the TorchScript exporter, which fails on Keras' LayerNormalization (a
  traced size in a Python list); the dynamo exporter, which Keras uses only for static shapes, works with
  dynamic ones given `torch.export.Dim`s, and gives the graph ONNX Runtime fuses as it does Hugging Face's
  (SkipLayerNormalization, FusedMatMul). kzoo calls it directly, on its serving outputs
  (`kzoo.export.serving.output_function`: probabilities, top-k, embeddings), which are not `model.call`'s.
From TensorFlow or JAX the export runs in a torch-backend process (`kzoo/export/backend_process.py`).
"""

import contextlib
import json
import os
import tempfile
import warnings

import numpy as np

from kzoo.atomic import atomic_file
from kzoo.export import serving
from kzoo.export.backend_process import export_in_process, on_backend

QUANTIZE_MODES = (None, "int8")
# Opset 18: what torch's exporter writes natively; onnxruntime 1.31 runs up to opset 23.
OPSET = 18
METADATA_KEY = "kzoo"
PACKAGES = ("onnx", "onnxruntime", "onnxscript", "torch")
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]  # see OnnxRunner


def onnx(model, path, quantize=None, top_k=5, overwrite=False):
    """Write `model` as an `.onnx` file: int32 token ids in (any batch, any length up to the backbone's
    `max_sequence_length`), the task's serving outputs out (as the SavedModel's `serve_ids`).

    The tokenizer stays on the host, as for TFLite: tokenize with `HostTokenizer(model.preprocessor)` (or the
    preprocessor) and run the file with `OnnxRunner` or any ONNX Runtime. `quantize="int8"` quantizes the
    weights of every MatMul and Gather to int8 (a scale per output channel) with ONNX Runtime's dynamic
    quantization (activations are quantized per call: no calibration data). The file carries the model's class,
    input keys, label names and limits in its metadata (key "kzoo"). The write is atomic; an existing file needs
    `overwrite=True`. On the TensorFlow or JAX backend the model is exported by a torch-backend process.

    Args:
        model: a kzoo backbone, pretrainer or task model.
        path: the file to write; its name ends with `.onnx`.
        quantize: None (float32) or "int8".
        top_k: how many MLM predictions a pretrainer's file returns at each position.
        overwrite: replace an existing file.

    Returns:
        `path`.

    Example (from TensorFlow or JAX it starts a torch process, a few seconds):
    >>> import os, tempfile
    >>> from kzoo.data import BertWordPieceTokenizer
    >>> from kzoo.data.task_inputs import TextPreprocessor
    >>> from kzoo.models import BertBackbone, TextClassifier
    >>> tokenizer = BertWordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "day"])
    >>> backbone = BertBackbone(vocabulary_size=6, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
    ...                         max_sequence_length=32)
    >>> classifier = TextClassifier(backbone, label_names=["negative", "positive"],
    ...                             preprocessor=TextPreprocessor(tokenizer, sequence_length=16))
    >>> path = onnx(classifier, os.path.join(tempfile.mkdtemp(), "sentiment.onnx"), quantize="int8")
    >>> runner = OnnxRunner(path)
    >>> runner.input_keys, runner.label_names
    (('padding_mask', 'segment_ids', 'token_ids'), ['negative', 'positive'])
    >>> outputs = runner(classifier.preprocessor(["a good day"]))   # tokenized on the host
    >>> sorted(outputs), outputs["probabilities"].shape
    (['logits', 'probabilities'], (1, 2))
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}; got {quantize!r}.")
    serving.check_exportable(model)
    if not str(path).endswith(".onnx"):
        raise ValueError(f"An ONNX file name ends with .onnx; got {path}.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{os.path.abspath(path)} already exists; pass overwrite=True to replace it.")
    _require(*PACKAGES)
    if not on_backend("torch"):
        return export_in_process(model, "onnx", path, quantize=quantize, top_k=top_k, overwrite=overwrite)
    serialized = convert(model, quantize, top_k)
    with atomic_file(path, "wb") as f:
        f.write(serialized)
    return path


def _require(*modules):
    """Name the optional extra when an ONNX package is missing (one line, before any work)."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"ONNX export needs {', '.join(missing)}: pip install 'kzoo[onnx]'.")


def metadata(model):
    """What the file says about itself (its "kzoo" metadata entry): the model's class, id inputs, label names and
    limits.

    Args:
        model: the kzoo model being exported.
    """
    from kzoo.models.batch_checks import input_limits

    return {"class_name": type(model).__name__, "input_keys": list(serving.input_keys(model)),
            "label_names": getattr(model, "label_names", None),
            "input_limits": {key: int(value) for key, value in input_limits(model).items()}}


def _sample_inputs(model, batch=2, length=11):
    """Id inputs to trace with: sizes that are neither 1 (which torch.export would fix) nor any model width."""
    backbone = serving.backbone_of(model)
    length = min(length, int(backbone.max_sequence_length))
    ids = np.full((batch, length), min(5, backbone.vocabulary_size - 1), "int32")
    mask = np.ones_like(ids)
    mask[1, length // 2:] = 0
    ids[1, length // 2:] = 0
    values = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}
    return {key: values[key] for key in serving.input_keys(model)}


def convert(model, quantize=None, top_k=5):
    """The serialized ONNX model (bytes) of `serving.output_function(model)` with dynamic batch and sequence
    axes (torch.onnx's dynamo exporter, on the torch backend); with `quantize="int8"`, after ONNX Runtime's
    `quantize_dynamic` with a scale per output channel.

    Args:
        model: a built kzoo backbone, pretrainer or task model on the torch backend.
        quantize: None or "int8".
        top_k: how many MLM predictions a pretrainer's file returns at each position.
    """
    import onnx as onnx_lib
    import torch

    keys = list(serving.input_keys(model))
    outputs = serving.output_function(model, top_k)
    sample = {key: torch.as_tensor(value) for key, value in _sample_inputs(model).items()}
    with torch.no_grad():
        names = sorted(outputs(sample))

    class Serving(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model  # registers the weights as the module's parameters

        def forward(self, token_ids, padding_mask, segment_ids=None):  # a DistilBERT has no segment_ids
            ids = {"token_ids": token_ids, "padding_mask": padding_mask, "segment_ids": segment_ids}
            values = outputs({key: ids[key] for key in keys})
            return tuple(values[name] for name in names)

    batch = torch.export.Dim("batch")
    sequence = torch.export.Dim("sequence", min=2, max=int(serving.backbone_of(model).max_sequence_length))
    with tempfile.TemporaryDirectory(prefix="kzoo-onnx-") as scratch, _quiet():
        float_path = os.path.join(scratch, "float32.onnx")
        program = torch.onnx.export(Serving().eval(), (), kwargs=sample, input_names=keys, output_names=names,
                                    opset_version=OPSET, dynamo=True, verbose=False,
                                    dynamic_shapes={key: {0: batch, 1: sequence} for key in keys})
        program.optimize()
        proto = program.model_proto
        proto.doc_string = f"kzoo {type(model).__name__}"
        onnx_lib.helper.set_model_props(proto, {METADATA_KEY: json.dumps(metadata(model))})
        if quantize != "int8":
            return proto.SerializeToString()
        from onnxruntime.quantization import QuantType, quantize_dynamic

        onnx_lib.save(proto, float_path)
        int8_path = os.path.join(scratch, "int8.onnx")
        # Per-channel scales: on the 3,646 test tweets the distilled tweets student's int8 file gave float32's
        # class for 99.6% of them and lost 0.03 points; with one scale per tensor 98.8% and 0.17 points, at the
        # same speed (docs/RESULTS.md, Serving).
        quantize_dynamic(float_path, int8_path, weight_type=QuantType.QInt8, per_channel=True)
        with open(int8_path, "rb") as f:
            return f.read()


@contextlib.contextmanager
def _quiet():
    """torch's exporter reports each step on stdout and warns about its own internals; a user sees neither."""
    import io
    import logging

    logger = logging.getLogger("torch.onnx")  # "torchvision is not installed. Skipping torchvision::nms", ...
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class OnnxRunner:
    """Runs an exported `.onnx` file with ONNX Runtime on the CPU: the same inputs and outputs as `TFLiteRunner`.

    Call it with the id inputs (int32 (batch, length), any length up to the model's maximum; from raw strings,
    `kzoo.export.HostTokenizer(preprocessor)` makes them in about 0.05 ms a tweet); it returns the outputs as a
    dict of numpy arrays. `input_keys`, `label_names` and `class_name` say what the file holds.

    Args:
        path: a file written by `onnx`.
        num_threads: ONNX Runtime's intra-op threads; None: its default (all cores).

    Example (a whole run, from export to outputs, is in `onnx`'s docstring):
        runner = OnnxRunner("saved_models/sentiment.onnx", num_threads=1)
        runner(classifier.preprocessor(["what a lovely day"]))["probabilities"]
    """

    def __init__(self, path, num_threads=None):
        _require("onnxruntime")
        import onnxruntime

        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX file {path} does not exist.")
        self.path = path
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: ONNX Runtime warns about unused initializers it removed
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
            options.inter_op_num_threads = 1
        # ONNX Runtime's SkipLayerNormalization fusion makes this graph slower on the CPU: the distilled tweets
        # student answered one tweet in 1.75 ms with it and 1.20 ms without (int8; float32 3.96 and 3.22 ms), and
        # 684 against 773 tweets/s in batches of 32. Pass the same `disabled_optimizers` to your own session.
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"],
                                                    disabled_optimizers=DISABLED_OPTIMIZERS)
        described = json.loads(self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY, "{}"))
        self.class_name = described.get("class_name")
        self.label_names = described.get("label_names")
        self.input_limits = described.get("input_limits", {})  # as kzoo's models check their own inputs
        self.input_keys = tuple(sorted(node.name for node in self.session.get_inputs()))
        self.output_names = [node.name for node in self.session.get_outputs()]

    def __call__(self, inputs):
        from kzoo.models.batch_checks import check_batch

        serving.check_input_keys(self.path, self.input_keys, inputs)
        inputs = {key: inputs[key] for key in self.input_keys}
        check_batch(inputs, self.input_limits)  # whole numbers, ids in range, length (ONNX Runtime's own error
        # for a bad gather index names no input)
        length = np.shape(inputs["token_ids"])[-1]
        if length < 2:
            raise ValueError(f"token_ids has sequence length {length}; a packed text has at least 2 ([CLS] [SEP]).")
        arrays = {key: np.asarray(value, "int32") for key, value in inputs.items()}
        return dict(zip(self.output_names, self.session.run(self.output_names, arrays)))
