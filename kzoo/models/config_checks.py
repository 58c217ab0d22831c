"""Checking a saved config against the constructor it is for, before building: one line naming the file and the
argument. Below `preset_io` and the converters, which both check configs (keras-hub's too) with it."""

import inspect

_BASE_ARGUMENTS = {"name", "trainable", "dtype"}  # what every Keras model takes besides its own arguments
# Backbone sizes without a default to take the type from (see `check_arguments`).
_SIZES = {"vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "embedding_dim"}


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
