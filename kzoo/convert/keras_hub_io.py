"""Weights to and from keras-hub's `BertBackbone`, `DistilBertBackbone` and `AlbertBackbone`.

keras-hub keeps attention kernels per head — query (H, N, D), output (N, D, H) — where kzoo keeps (H, H);
both are row-major over (N, D), so a reshape maps one onto the other. Activations differ by reference:
keras-hub BERT and ALBERT use tanh GELU, its DistilBERT exact GELU; conversions carry that over.
"""

import keras
import numpy as np

from kzoo.architectures import ARCHITECTURES, of_backbone

# keras-hub's backbone classes carry kzoo's names.
_KERAS_HUB_ACTIVATION = {arch.backbone: arch.keras_hub_activation for arch in ARCHITECTURES.values()}


def _block_pairs(ours, prefix):
    attention = ours.attention
    pairs = []
    for layer, name in ((attention.query_dense, "query"), (attention.key_dense, "key"),
                        (attention.value_dense, "value"), (attention.output_dense, "attention_output")):
        pairs += [(layer.kernel, f"{prefix}/self_attention_layer/{name}/kernel"),
                  (layer.bias, f"{prefix}/self_attention_layer/{name}/bias")]
    for layer, name in ((ours.attention_layer_norm, "self_attention_layer_norm"),
                        (ours.output_layer_norm, "feedforward_layer_norm")):
        pairs += [(layer.gamma, f"{prefix}/{name}/gamma"), (layer.beta, f"{prefix}/{name}/beta")]
    for layer, name in ((ours.intermediate_dense, "feedforward_intermediate_dense"),
                        (ours.output_dense, "feedforward_output_dense")):
        pairs += [(layer.kernel, f"{prefix}/{name}/kernel"), (layer.bias, f"{prefix}/{name}/bias")]
    return pairs


def variable_pairs(backbone):
    """(kzoo variable, keras-hub variable path) for every weight of `backbone`."""
    embedding = backbone.embedding
    token_prefix = of_backbone(backbone).keras_hub_embedding_scope
    pairs = [(embedding.token_embedding.embeddings, f"{token_prefix}token_embedding/embeddings"),
             (embedding.position_embedding.embeddings, f"{token_prefix}position_embedding/embeddings")]
    if embedding.segment_embedding is not None:
        pairs.append((embedding.segment_embedding.embeddings, "segment_embedding/embeddings"))
    pairs += [(embedding.layer_norm.gamma, "embeddings_layer_norm/gamma"),
              (embedding.layer_norm.beta, "embeddings_layer_norm/beta")]
    encoder = backbone.encoder
    if hasattr(encoder, "num_groups"):
        pairs += [(embedding.projection.kernel, "embedding_projection/kernel"),
                  (embedding.projection.bias, "embedding_projection/bias")]
        K = encoder.num_inner_repetitions
        for index, block in enumerate(encoder.unique_blocks):
            pairs += _block_pairs(block, f"group_{index // K}_inner_layer_{index % K}")
    else:
        for index, block in enumerate(encoder.unique_blocks):
            pairs += _block_pairs(block, f"transformer_layer_{index}")
    if backbone.pooler is not None:
        pairs += [(backbone.pooler.dense.kernel, "pooled_dense/kernel"),
                  (backbone.pooler.dense.bias, "pooled_dense/bias")]
    return pairs


def _copy(pairs, source_of, target_of):
    """Check every size first, then assign (reshaping per-head kernels): a mismatch leaves the target untouched."""
    plan = []
    for ours, path in pairs:
        source, target = source_of(ours, path), target_of(ours, path)
        value = np.asarray(keras.ops.convert_to_numpy(source))
        if value.size != int(np.prod(target.shape)):
            raise ValueError(f"{path}: {tuple(value.shape)} does not fit {target.path} {tuple(target.shape)}.")
        plan.append((target, value.reshape(tuple(target.shape))))
    for target, value in plan:
        target.assign(value)


def _hub_variables(hub_backbone):
    return {variable.path: variable for variable in hub_backbone.weights}


def from_keras_hub(hub_backbone, **overrides):
    """A kzoo backbone with the weights (and GELU variant) of a keras-hub backbone. (A keras-hub preset folder
    loads directly with `kzoo.models.Backbone.from_preset(folder)`, which calls this.)

    Args:
        hub_backbone: a keras-hub `BertBackbone`, `DistilBertBackbone` or `AlbertBackbone` object (a task's
            `.backbone`, or `keras_hub.models.Backbone.from_preset(...)`).
        **overrides: kzoo backbone arguments that replace the converted ones (e.g. `dropout=0.0`).

    Returns:
        The kzoo backbone of the same class name, config and weights.

    Example:
    >>> import keras_hub
    >>> import numpy as np
    >>> hub = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                                     intermediate_dim=32, max_sequence_length=16)
    >>> backbone = from_keras_hub(hub)
    >>> type(backbone).__name__, backbone.activation
    ('BertBackbone', 'gelu_approximate')
    >>> bool(np.array_equal(backbone.token_embedding.embeddings, hub.token_embedding.embeddings))
    True
    """
    import os

    from kzoo.models.config_checks import check_arguments
    from kzoo.models.registry import model_class  # not `kzoo.models`: preset_io calls this (an import cycle)

    class_name = type(hub_backbone).__name__
    if isinstance(hub_backbone, (str, os.PathLike)):
        raise ValueError(f"{hub_backbone}: from_keras_hub takes a keras-hub backbone object, not a path; load the "
                         "folder with keras_hub.models.Backbone.from_preset(path) and pass that.")
    if class_name not in _KERAS_HUB_ACTIVATION:
        hint = "; pass its .backbone" if hasattr(hub_backbone, "backbone") else ""
        raise ValueError(f"{class_name} is not a keras-hub backbone kzoo converts ({sorted(_KERAS_HUB_ACTIVATION)})"
                         f"{hint}.")
    config = {key: value for key, value in hub_backbone.get_config().items()
              if key not in ("name", "trainable", "dtype")}
    check_arguments(model_class(class_name), config, f"keras-hub {class_name}", "its get_config()")
    backbone = model_class(class_name)(**{**config, "activation": _KERAS_HUB_ACTIVATION[class_name], **overrides})
    variables = _hub_variables(hub_backbone)
    missing = [path for _, path in variable_pairs(backbone) if path not in variables]
    if missing:
        raise ValueError(f"keras-hub {class_name} lacks variables {missing[:5]}.")
    _copy(variable_pairs(backbone), lambda ours, path: variables[path], lambda ours, path: ours)
    return backbone


def to_keras_hub(backbone):
    """The keras-hub backbone of the same architecture with `backbone`'s weights.

    keras-hub fixes the activation (tanh GELU for BERT and ALBERT, exact for DistilBERT); a kzoo backbone with
    another activation would give different outputs there, so it is refused.

    Args:
        backbone: a kzoo `BertBackbone`, `DistilBertBackbone` or `AlbertBackbone` with keras-hub's activation
            and `layer_norm_epsilon=1e-12`.

    Returns:
        The keras-hub backbone (`keras_hub.models.<same class name>`).

    Example:
    >>> from kzoo.models import BertBackbone
    >>> backbone = BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
    ...                         max_sequence_length=16, activation="gelu_approximate")   # keras-hub BERT's GELU
    >>> hub = to_keras_hub(backbone)
    >>> type(hub).__module__.split(".")[0], type(hub).__name__, hub.count_params() == backbone.count_params()
    ('keras_hub', 'BertBackbone', True)
    """
    import keras_hub

    from kzoo.layers import get_activation

    class_name = type(backbone).__name__
    if class_name not in _KERAS_HUB_ACTIVATION:
        raise ValueError(f"{class_name} has no keras-hub counterpart ({sorted(_KERAS_HUB_ACTIVATION)}).")
    expected = _KERAS_HUB_ACTIVATION[class_name]
    if get_activation(backbone.activation) is not get_activation(expected):
        raise ValueError(f"keras-hub's {class_name} uses activation {expected!r}; this backbone uses "
                         f"{backbone.activation!r}, so its outputs would differ there.")
    if backbone.layer_norm_epsilon != 1e-12:
        raise ValueError(f"keras-hub's {class_name} uses layer_norm_epsilon=1e-12; this backbone uses "
                         f"{backbone.layer_norm_epsilon}.")
    config = backbone.get_config()
    for key in ("name", "trainable", "dtype", "activation", "layer_norm_epsilon", "initializer_range"):
        config.pop(key, None)
    hub = getattr(keras_hub.models, class_name)(**config)
    variables = _hub_variables(hub)
    _copy(variable_pairs(backbone), lambda ours, path: ours, lambda ours, path: variables[path])
    return hub
