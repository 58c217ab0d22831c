"""Export: a SavedModel that takes raw strings (tokenizer inside) or token ids; TFLite and ONNX files (fp32, int8).

Export runs on the TensorFlow backend; from JAX or torch it goes through a TensorFlow-backend subprocess.
"""

from kzoo.export.host_text import HostTokenizer
from kzoo.export.onnx import OnnxRunner, onnx
from kzoo.export.saved_model import saved_model
from kzoo.export.tflite import TFLiteRunner, tflite

__all__ = ["HostTokenizer", "OnnxRunner", "TFLiteRunner", "onnx", "saved_model", "tflite"]
