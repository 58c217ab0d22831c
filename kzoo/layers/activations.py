"""Named activations, so a block's GELU variant is a plain string in its config."""

import keras


def gelu_exact(x):
    """GELU with the erf: Hugging Face BERT and DistilBERT (`hidden_act="gelu"`)."""
    return keras.activations.gelu(x, approximate=False)


def gelu_approximate(x):
    """GELU with the tanh approximation: ALBERT (`"gelu_new"`), original BERT code and keras-hub's BERT."""
    return keras.activations.gelu(x, approximate=True)


_NAMED = {
    "gelu": gelu_exact,
    "gelu_exact": gelu_exact,
    "gelu_approximate": gelu_approximate,
    "gelu_new": gelu_approximate,
    "gelu_pytorch_tanh": gelu_approximate,
}


def get_activation(name):
    """Resolve `name` ("gelu" = exact, "gelu_approximate"/"gelu_new" = tanh, or any Keras activation)."""
    if callable(name):
        return name
    if name in _NAMED:
        return _NAMED[name]
    try:
        return keras.activations.get(name)
    except ValueError as error:
        raise ValueError(
            f"Unknown activation {name!r}; use one of {sorted(_NAMED)} or a Keras activation name."
        ) from error
