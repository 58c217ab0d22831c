"""Reading and writing preset directories: `config.json` (class + config) and `model.weights.h5`.

The weights file is Keras' own `.weights.h5` (HDF5, no pickles), so one file loads on every backend.
Writes go to a temporary sibling folder that is renamed into place, so a failed save leaves nothing behind.
Loads check every file first and fail with one line naming it (see `kzoo.file_checks`).
"""

import inspect
import json
import os
import tempfile

from kzoo.atomic import atomic_directory
from kzoo.file_checks import check_readable, looks_like_path, one_line, present, read_json
from kzoo.models.registry import model_class, model_class_names

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
FORMAT = "kzoo"
_BASE_ARGUMENTS = {"name", "trainable", "dtype"}  # what every Keras model takes besides its own arguments
# Backbone sizes without a default to take the type from (see `check_arguments`).
_SIZES = {"vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "embedding_dim"}


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


def resolve_preset(preset):
    """A preset folder as a path (with `~` expanded), or a preset name unchanged. A path-looking string
    (see `looks_like_path`) that is not a folder raises here rather than as an unknown preset name."""
    if isinstance(preset, os.PathLike):
        preset = os.fspath(preset)
    if not isinstance(preset, str):
        return preset
    path = os.path.expanduser(preset)
    if os.path.isdir(path):
        return path
    if looks_like_path(preset) or present(path):
        from kzoo.models.presets import PRESETS

        if preset in PRESETS:  # a stray file named like a preset does not hide the preset
            return preset
        if not present(path):
            raise FileNotFoundError(f"{preset} does not exist.")
        raise ValueError(f"{preset} is not a folder; pass a preset name, a kzoo preset folder (config.json, "
                         f"{WEIGHTS_FILE}) or a Hugging Face model folder.")
    return preset


def check_arguments(cls, config, path, where="config"):
    """Raise naming `path` when `config` misses an argument `cls` needs, has one it does not take, or gives a
    size that is no integer or a value of another type than the argument's default (a number, a string)."""
    parameters = inspect.signature(cls.__init__).parameters
    named = {name: parameter for name, parameter in parameters.items() if name != "self" and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    missing = [name for name, parameter in named.items() if parameter.default is parameter.empty and name not in config]
    if missing:
        raise ValueError(f"{path}: {where} lacks {', '.join(map(repr, missing))}, which {cls.__name__} needs.")
    unknown = sorted(set(config) - set(named) - _BASE_ARGUMENTS)
    if unknown:
        raise ValueError(f"{path}: {where} has {', '.join(map(repr, unknown))}, which {cls.__name__} does not take "
                         f"(it takes {', '.join(sorted(named))}).")
    for name, value in config.items():
        default = named[name].default if name in named else None
        if name in _SIZES or type(default) is int:
            kind, valid = "an integer", isinstance(value, int) and not isinstance(value, bool)
        elif type(default) is float:
            kind, valid = "a number", isinstance(value, (int, float)) and not isinstance(value, bool)
        elif type(default) is str:
            kind, valid = "a string", isinstance(value, str)
        else:
            continue
        if not valid:
            raise ValueError(f"{path}: {where}.{name} is {value!r}; it must be {kind}.")


def read_preset_config(directory):
    """Return the `{"class_name", "config"}` record of a preset directory, checked: a kzoo model class, with the
    arguments it takes (and, for a task, a kzoo backbone's); every error names the folder or the file."""
    if not os.path.exists(directory):
        raise FileNotFoundError(f"{directory} does not exist.")
    if not os.path.isdir(directory):
        raise ValueError(f"{directory} is not a folder; a kzoo preset is a folder with {CONFIG_FILE} and "
                         f"{WEIGHTS_FILE}.")
    path = os.path.join(directory, CONFIG_FILE)
    if not present(path):
        raise FileNotFoundError(f"{directory} is not a kzoo preset directory: {CONFIG_FILE} is missing.")
    record = read_json(path, "kzoo preset config")
    if str(record.get("registered_name", "")).startswith("keras_hub>"):
        raise ValueError(f"{path} is a keras-hub preset ({record['registered_name']}); load it with "
                         "keras_hub.models.Backbone.from_preset and convert it with kzoo.convert.from_keras_hub.")
    if record.get("format") != FORMAT or "class_name" not in record or not isinstance(record.get("config"), dict):
        raise ValueError(f"{path} is neither a kzoo preset config (format={FORMAT!r}, class_name, config: an "
                         "object) nor a Hugging Face one (model_type).")
    Backbone = model_class("Backbone")
    cls = model_class(record["class_name"])
    if cls is None:
        raise ValueError(f"{path}: class_name {record['class_name']!r} is not a kzoo model class; known: "
                         f"{', '.join(model_class_names('Backbone') + model_class_names('Task'))}.")
    config = record["config"]
    check_arguments(cls, config, path)
    if not issubclass(cls, Backbone):
        backbone = config["backbone"]
        backbone_class = model_class(backbone.get("class_name")) if isinstance(backbone, dict) else None
        if not (backbone_class and issubclass(backbone_class, Backbone) and isinstance(backbone.get("config"), dict)):
            raise ValueError(f"{path}: config.backbone is not a saved kzoo backbone (an object with class_name one "
                             f"of {', '.join(model_class_names('Backbone'))}, and config).")
        check_arguments(backbone_class, backbone["config"], path, "config.backbone.config")
    return record


def build(make, directory, class_name):
    """`make()`, with the errors a model's constructor raises on bad values (a wrong type, an impossible
    size) re-raised as one line naming the folder's config.json."""
    try:
        return make()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{os.path.join(directory, CONFIG_FILE)}: cannot build {class_name} from it: "
                         f"{one_line(error)}") from error


def is_huggingface_directory(directory):
    """True for a Hugging Face model directory (its config.json names a `model_type`, not kzoo's format)."""
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        return False
    try:
        record = read_json(path)
    except ValueError:  # not JSON, or not an object: read_preset_config names the problem
        return False
    return "model_type" in record and record.get("format") != FORMAT


def load_huggingface(directory, **overrides):
    """The kzoo model converted from a Hugging Face directory (see `kzoo.convert.from_huggingface`)."""
    from kzoo.convert.huggingface import from_huggingface

    return from_huggingface(directory, **overrides).model


def load_weights(model, directory):
    """Load the folder's `model.weights.h5` into `model` (built from its config.json). One-line errors for a
    missing, unreadable, truncated or corrupt file, and for weights that do not fit the config, naming the
    first variable that differs (its path in the file, the shape the config builds, the shape found)."""
    path = os.path.join(directory, WEIGHTS_FILE)
    if not present(path):
        raise FileNotFoundError(f"{path} is missing: the preset directory has a config but no weights.")
    check_readable(path, "weights file")
    found = _saved_shapes(path)
    try:
        model.load_weights(path)
    except OSError as error:  # h5py, reading a damaged dataset
        raise ValueError(f"{path} is corrupt: {one_line(error)}.") from error
    except ValueError as error:  # Keras: "A total of N objects could not be loaded ..."
        raise ValueError(_difference(model, path, found) or
                         f"{path} does not fit the model {CONFIG_FILE} builds: {one_line(error)}") from error
    if sum(name.startswith("layers/") for name in found) > len(model.weights):  # Keras skips what it does not use
        raise ValueError(_difference(model, path, found) or
                         f"{path} holds more variables than the model {CONFIG_FILE} builds.")


def _saved_shapes(path):
    """`{dataset path: shape}` of a `.weights.h5` file; a ValueError when HDF5 cannot read it."""
    import h5py

    shapes = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            shapes[name] = tuple(item.shape)

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except OSError as error:
        raise ValueError(f"{path} is truncated or corrupt: not a readable HDF5 weights file "
                         f"({one_line(error)}).") from error
    return shapes


def _difference(model, path, found):
    """One line on the first variable where `path` differs from what `model` saves, or None."""
    with tempfile.TemporaryDirectory() as scratch:
        expected_path = os.path.join(scratch, WEIGHTS_FILE)
        model.save_weights(expected_path)
        expected = _saved_shapes(expected_path)
    config = os.path.join(os.path.dirname(path), CONFIG_FILE)
    for name, shape in expected.items():
        if name not in found:
            return f"{path} does not match {config}: it lacks {name}, shape {shape} from the config."
        if found[name] != shape:
            return f"{path} does not match {config}: {name} has shape {found[name]}; the config builds {shape}."
    extra = [name for name in found if name.startswith("layers/") and name not in expected]
    if extra:
        return (f"{path} does not match {config}: it holds {len(extra)} variables the config does not build, "
                f"the first {extra[0]} of shape {found[extra[0]]}.")
    return None
