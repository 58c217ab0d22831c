"""Export: a SavedModel that takes raw strings (tokenizer inside) or token ids; TFLite and ONNX files (fp32, int8).

Each format is written on its exporter's backend (SavedModel and TFLite: TensorFlow; ONNX: torch); from another
backend the export goes through a subprocess (`backend_process.py`). `HostTokenizer` makes an id file's inputs from
strings on the host.
"""

from kzoo.export.host_text import HostTokenizer
from kzoo.export.onnx import OnnxRunner, onnx
from kzoo.export.saved_model import saved_model
from kzoo.export.tflite import TFLiteRunner, tflite

__all__ = ["HostTokenizer", "OnnxRunner", "TFLiteRunner", "onnx", "saved_model", "tflite"]
