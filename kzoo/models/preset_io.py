"""Reading and writing preset directories: `config.json` (class + config) and `model.weights.h5`; keras-hub's
preset folders (the same two files, in keras-hub's format) are read too, converted with `from_keras_hub`.

The weights file is Keras' own `.weights.h5` (HDF5, no pickles), so one file loads on every backend.
Writes go to a temporary sibling folder that is renamed into place, so a failed save leaves nothing behind.
Loads check every file first and fail with one line naming it (see `kzoo.file_checks`).
"""

import json
import os
import tempfile

from kzoo.architectures import is_keras_hub_record
from kzoo.atomic import atomic_directory
from kzoo.file_checks import check_readable, looks_like_path, one_line, present, read_json
from kzoo.models.config_checks import check_arguments
from kzoo.models.registry import model_class, model_class_names

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
    if is_keras_hub_record(record):
        raise ValueError(f"{path} is a keras-hub preset ({record['registered_name']}); load it with a kzoo "
                         "backbone's or task's from_preset (e.g. kzoo.models.Backbone.from_preset), which converts it.")
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


def is_keras_hub_directory(directory):
    """True for a preset folder written by keras-hub (its config.json's `registered_name` is "keras_hub>...")."""
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        return False
    try:
        return is_keras_hub_record(read_json(path))
    except ValueError:  # not JSON, or not an object: read_preset_config names the problem
        return False


def keras_hub_class_name(directory):
    """The kzoo backbone class a keras-hub preset folder converts to (its config.json's class), or a ValueError
    naming the file when kzoo converts no such backbone."""
    from kzoo.architectures import ARCHITECTURES

    path = os.path.join(directory, CONFIG_FILE)
    record = read_json(path, "keras-hub preset config")
    class_name = record.get("class_name")
    known = sorted(arch.backbone for arch in ARCHITECTURES.values())
    if class_name not in known:
        raise ValueError(f"{path}: {record['registered_name']} is not a keras-hub backbone kzoo converts "
                         f"(it converts {', '.join(known)}).")
    return class_name


def load_keras_hub(directory, load_weights=True, **overrides):
    """The kzoo backbone converted from a keras-hub preset folder: keras-hub builds its backbone
    (`keras_hub.models.Backbone.from_preset`), `kzoo.convert.from_keras_hub` converts it.

    Args:
        directory: a folder written by a keras-hub backbone's or task's `save_to_preset` (config.json,
            model.weights.h5).
        load_weights: read model.weights.h5; False keeps keras-hub's random initial weights.
        **overrides: kzoo backbone arguments that replace the converted config's (e.g. `dropout=0.0`).
    """
    import keras_hub

    from kzoo.convert.keras_hub_io import from_keras_hub

    class_name = keras_hub_class_name(directory)
    config_path = os.path.join(directory, CONFIG_FILE)
    config = read_json(config_path, "keras-hub preset config").get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: config must be an object of {class_name}'s arguments.")
    check_arguments(getattr(keras_hub.models, class_name), config, config_path)  # before keras-hub's own errors
    path = os.path.join(directory, WEIGHTS_FILE)
    if load_weights:
        if not present(path):
            raise FileNotFoundError(f"{path} is missing: the keras-hub preset folder has a config but no weights.")
        check_readable(path, "weights file")
    try:
        hub_backbone = keras_hub.models.Backbone.from_preset(directory, load_weights=load_weights)
    except OSError as error:  # h5py, on a damaged file
        raise ValueError(f"{path} is truncated or corrupt: {one_line(error)}") from error
    except (ValueError, TypeError, KeyError) as error:  # a config keras-hub rejects, weights that do not fit it
        where = f"{path} does not fit {config_path}" if load_weights else config_path
        raise ValueError(f"{where}: keras-hub cannot load it: {one_line(error)}") from error
    return from_keras_hub(hub_backbone, **overrides)


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
