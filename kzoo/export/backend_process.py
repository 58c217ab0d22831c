"""Each export runs on the backend whose exporter it uses; a model on another backend gets there through a
subprocess.

SavedModel and TFLite files are written by TensorFlow, ONNX files by torch's exporter (`kzoo/export/onnx.py`
says why). A model on another backend is saved as a kzoo preset in a temporary folder, and `kzoo export` runs on
it with `KERAS_BACKEND` set to the exporter's backend (Keras picks its backend once per process, at import).
"""

import os
import subprocess
import sys
import tempfile

# The backend each `kzoo export --format` runs on.
FORMAT_BACKENDS = {"saved_model": "tensorflow", "tflite": "tensorflow", "onnx": "torch"}


def on_backend(name):
    import keras

    return keras.backend.backend() == name


def run_cli(argv, backend, check=True):
    """Run `kzoo <argv>` in a Python process on `backend` and return the `CompletedProcess`; with `check`, a
    failure raises a RuntimeError carrying the process's last error line.

    Args:
        argv: the command's arguments, after `kzoo`.
        backend: the process's `KERAS_BACKEND`.
        check: raise when the process fails.
    """
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = subprocess.run([sys.executable, "-m", "kzoo.cli", *argv], env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        message = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise RuntimeError(f"kzoo {' '.join(argv)} failed on the {backend} backend: "
                           f"{message[-1] if message else 'exit ' + str(result.returncode)}")
    return result


def export_in_process(model, kind, destination, preprocessor=None, with_preprocessing=True, top_k=5,
                      quantize=None, sequence_length=None, overwrite=False):
    """Save `model` (and its `preprocessor`) to a temporary preset and export it as `kind` from a process on
    the backend of `FORMAT_BACKENDS[kind]`; returns `destination`.

    Args:
        model: a kzoo model with `save_to_preset`.
        kind: "saved_model", "tflite" or "onnx".
        destination: the folder or file to write.
        preprocessor, with_preprocessing, top_k, quantize, sequence_length, overwrite: as `kzoo export` takes
            them (`--no-preprocessing`, `--top-k`, ...).
    """
    from kzoo.models.task import PREPROCESSOR_FILE, write_preprocessor

    backend = FORMAT_BACKENDS[kind]
    if not hasattr(model, "save_to_preset"):
        raise ValueError(f"{type(model).__name__} cannot be handed to a {backend} process (no save_to_preset); "
                         f"export it with KERAS_BACKEND={backend}.")
    with tempfile.TemporaryDirectory(prefix="kzoo-export-") as scratch:
        preset = os.path.join(scratch, "model")
        model.save_to_preset(preset)
        if preprocessor is not None and not os.path.isfile(os.path.join(preset, PREPROCESSOR_FILE)):
            write_preprocessor(preprocessor, preset)  # a backbone's preset has none of its own
        argv = ["export", preset, os.path.abspath(destination), "--format", kind, "--top-k", str(top_k)]
        if not with_preprocessing:
            argv.append("--no-preprocessing")
        if quantize:
            argv += ["--quantize", quantize]
        if sequence_length:
            argv += ["--sequence-length", str(sequence_length)]
        if overwrite:
            argv.append("--overwrite")
        run_cli(argv, backend)
    return destination
