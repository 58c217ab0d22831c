"""Named activations, so a block's GELU variant is a plain string in its config."""

import keras


def gelu_exact(x):
    """GELU with the erf: Hugging Face BERT and DistilBERT (`hidden_act="gelu"`).

    Args:
        x: a tensor.

    Example:
    >>> import numpy as np
    >>> round(float(gelu_exact(np.array(1.0, "float32"))), 4)
    0.8413
    """
    return keras.activations.gelu(x, approximate=False)


def gelu_approximate(x):
    """GELU with the tanh approximation: ALBERT (`"gelu_new"`), original BERT code and keras-hub's BERT.

    Args:
        x: a tensor.

    Example:
    >>> import numpy as np
    >>> round(float(gelu_approximate(np.array(1.0, "float32"))), 4)
    0.8412
    """
    return keras.activations.gelu(x, approximate=True)


_NAMED = {
    "gelu": gelu_exact,
    "gelu_exact": gelu_exact,
    "gelu_approximate": gelu_approximate,
    "gelu_new": gelu_approximate,
    "gelu_pytorch_tanh": gelu_approximate,
}


def get_activation(name):
    """The activation function called `name`; a `ValueError` lists the known names.

    Args:
        name: "gelu" / "gelu_exact" (erf), "gelu_approximate" / "gelu_new" / "gelu_pytorch_tanh" (tanh), any
            Keras activation name ("relu"), or a callable, returned as is.

    Example:
    >>> get_activation("gelu_new") is gelu_approximate, get_activation("relu").__name__
    (True, 'relu')
    """
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
