"""Reading and writing preset directories: `config.json` (class + config) and `model.weights.h5`.

The weights file is Keras' own `.weights.h5` (HDF5, no pickles), so one file loads on every backend.
Writes go to a temporary sibling folder that is renamed into place, so a failed save leaves nothing behind.
"""

import json
import os

from kzoo.atomic import atomic_directory

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
FORMAT = "kzoo"


def save_preset(model, directory, overwrite=False, assets=(), extra=None):
    """Write `model`'s class, config and weights (and copies of `assets`, e.g. a vocab.txt) atomically;
    `extra(staging_folder)` may add files before the folder is moved into place."""
    with atomic_directory(directory, overwrite=overwrite, assets=assets) as staging:
        if extra is not None:
            extra(staging)
        record = {"format": FORMAT, "class_name": type(model).__name__, "config": model.get_config()}
        with open(os.path.join(staging, CONFIG_FILE), "w") as f:
            json.dump(record, f, indent=2)
        model.save_weights(os.path.join(staging, WEIGHTS_FILE))


def read_preset_config(directory):
    """Return the `{"class_name", "config"}` record of a preset directory, with errors naming the file."""
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{directory} is not a kzoo preset directory: {CONFIG_FILE} is missing.")
    with open(path) as f:
        try:
            record = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
    if record.get("format") != FORMAT or "class_name" not in record or "config" not in record:
        raise ValueError(f"{path} is not a kzoo preset config (expected format={FORMAT!r}, class_name, config).")
    return record


def is_huggingface_directory(directory):
    """True for a Hugging Face model directory (its config.json names a `model_type`, not kzoo's format)."""
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        try:
            record = json.load(f)
        except json.JSONDecodeError:
            return False
    return "model_type" in record and record.get("format") != FORMAT


def load_huggingface(directory, **overrides):
    """The kzoo model converted from a Hugging Face directory (see `kzoo.convert.from_huggingface`)."""
    from kzoo.convert import from_huggingface

    return from_huggingface(directory, **overrides).model


def weights_path(directory):
    path = os.path.join(directory, WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: the preset directory has a config but no weights.")
    return path
