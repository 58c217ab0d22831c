"""The backbone base class: a functional `keras.Model` with keras-hub's dict inputs and outputs."""

import os

import keras

from kzoo.layers import Pooler
from kzoo.models import preset_io
from kzoo.models.batch_checks import BatchChecksMixin
from kzoo.models.named_inputs import NamedInputsMixin
from kzoo.models.presets import PRESETS, preset_names


class Backbone(BatchChecksMixin, NamedInputsMixin, keras.Model):
    """An encoder: `{"token_ids", "segment_ids", "padding_mask"}` → `{"sequence_output", "pooled_output"}`.

    Subclasses make the embedding and the stack and call `_build_graph`; the graph, presets, hidden states
    and the config round trip live here once (Keras itself names a missing input key). `with_hidden_states()`
    returns a model that shares these weights and also outputs `"hidden_states"`: the L + 1 hidden states,
    the embedding output first.

    Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from kzoo.models import BertBackbone
    >>> backbone = BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                         intermediate_dim=32, max_sequence_length=16)
    >>> x = {"token_ids": np.array([[2, 5, 3]]), "segment_ids": np.zeros((1, 3), "int32"),
    ...      "padding_mask": np.ones((1, 3), "int32")}
    >>> len(backbone.with_hidden_states()(x)["hidden_states"])
    3
    >>> folder = os.path.join(tempfile.mkdtemp(), "my_bert")
    >>> backbone.save_to_preset(folder)
    >>> reloaded = Backbone.from_preset(folder)  # the class its config.json names
    >>> type(reloaded).__name__, bool(np.allclose(reloaded(x)["pooled_output"], backbone(x)["pooled_output"]))
    ('BertBackbone', True)
    >>> BertBackbone.presets()[:2]
    ['bert_tiny_en_uncased', 'bert_small_en_uncased']
    """

    has_pooler = True
    uses_segments = True

    def _build_graph(self, embedding, encoder, dtype=None, name=None, **kwargs):
        inputs = {
            "token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
            "padding_mask": keras.Input(shape=(None,), dtype="int32", name="padding_mask"),
        }
        if self.uses_segments:
            inputs["segment_ids"] = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        x = embedding(inputs["token_ids"], inputs.get("segment_ids"))
        hidden_states = encoder(x, inputs["padding_mask"], return_hidden_states=True)
        outputs = {"sequence_output": hidden_states[-1]}
        pooler = None
        if self.has_pooler:
            pooler = Pooler(encoder.block_kwargs["hidden_dim"], dtype=embedding.dtype_policy, name="pooler")
            outputs["pooled_output"] = pooler(hidden_states[-1])
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        # Functional models drop `dtype`; keep the layers' policy so get_config round-trips mixed precision.
        self.dtype_policy = embedding.dtype_policy
        self.embedding = embedding
        self.encoder = encoder
        self.pooler = pooler
        self._symbolic_outputs = outputs
        self._hidden_state_tensors = hidden_states
        self._hidden_states_model = None

    @property
    def token_embedding(self):
        """The word-embedding layer (a `keras.layers.Embedding`) that MLM heads tie to."""
        return self.embedding.token_embedding

    @property
    def input_keys(self):
        return ("token_ids", "segment_ids", "padding_mask") if self.uses_segments else ("token_ids", "padding_mask")

    def last_hidden_state_at(self, inputs, positions, training=None):
        """The last hidden state at `positions` (batch, P) only: (batch, P, H), equal to
        `self(inputs)["sequence_output"]` gathered there, with the last layer computed at those rows alone.

        A pretraining loss reads the last layer only at the masked tokens and [CLS]; the lower layers still
        run at every position, because the last layer's keys and values need them. Calls the layers directly,
        not through this functional graph (same weights).
        """
        x = self.embedding(inputs["token_ids"], inputs.get("segment_ids"), training=training)
        return self.encoder(x, inputs["padding_mask"], training=training, query_positions=positions)

    def with_hidden_states(self):
        """A model sharing these weights whose outputs add `"hidden_states"` (a list of L + 1 tensors, the
        embedding output first). Built once, then cached."""
        if self._hidden_states_model is None:
            outputs = dict(self._symbolic_outputs, hidden_states=list(self._hidden_state_tensors))
            self._hidden_states_model = keras.Model(self.input, outputs, name=f"{self.name}_hidden_states")
        return self._hidden_states_model

    # Presets -------------------------------------------------------------------------------------------
    @classmethod
    def presets(cls):
        """The names of this class's presets (every preset's on `Backbone`)."""
        return preset_names(cls.__name__ if cls is not Backbone else None)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build from a preset name (architecture, random init), a directory written by `save_to_preset`, a
        Hugging Face model directory, or a keras-hub preset folder (both converted on the fly; heads, if any,
        are dropped).

        Args:
            preset: a name in `PRESETS` (see `presets()`), or a folder.
            load_weights: load a `save_to_preset` or keras-hub folder's weights; False keeps the random initial
                ones. (A Hugging Face folder's weights are converted either way.)
            **kwargs: override the preset's config (e.g. `dropout=0.0`, `dtype="mixed_bfloat16"`).

        Returns:
            The backbone; on `Backbone` itself, of the class the preset names.
        """
        preset = preset_io.resolve_preset(preset)
        if isinstance(preset, str) and preset_io.is_huggingface_directory(preset):
            model = preset_io.load_huggingface(preset, **kwargs)
            backbone = model if isinstance(model, Backbone) else model.backbone
            if cls is not Backbone and type(backbone) is not cls:
                raise ValueError(f"{preset} holds a {type(backbone).__name__}, not a {cls.__name__}.")
            return backbone
        if isinstance(preset, str) and preset_io.is_keras_hub_directory(preset):
            class_name = preset_io.keras_hub_class_name(preset)
            if cls is not Backbone and class_name != cls.__name__:
                raise ValueError(f"{preset} holds a keras-hub {class_name}, not a {cls.__name__}.")
            return preset_io.load_keras_hub(preset, load_weights=load_weights, **kwargs)
        if isinstance(preset, str) and os.path.isdir(preset):
            record = preset_io.read_preset_config(preset)
            if record["class_name"] != cls.__name__ and cls is not Backbone:
                raise ValueError(
                    f"{preset} holds a {record['class_name']}, not a {cls.__name__}."
                )
            target = _backbone_class(record["class_name"])
            if not (isinstance(target, type) and issubclass(target, Backbone)):
                raise ValueError(f"{preset} holds a {record['class_name']}, not a backbone; load it with "
                                 f"{record['class_name']}.from_preset, or a task's from_preset.")
            model = preset_io.build(lambda: target(**{**record["config"], **kwargs}), preset, record["class_name"])
            if load_weights:
                preset_io.load_weights(model, preset)
            return model
        if preset not in PRESETS:
            raise ValueError(
                f"Unknown preset {preset!r}. Known presets for {cls.__name__}: {cls.presets()} "
                "(or pass a directory written by save_to_preset)."
            )
        class_name, config, _ = PRESETS[preset]
        if cls is not Backbone and class_name != cls.__name__:
            raise ValueError(f"Preset {preset!r} is a {class_name}, not a {cls.__name__}.")
        return _backbone_class(class_name)(**{**config, **kwargs})

    def save_to_preset(self, directory, overwrite=False, assets=()):
        """Write `config.json` and `model.weights.h5` to `directory` (atomically), for `from_preset`.

        Args:
            directory: the folder to write; it must not exist unless `overwrite`.
            overwrite: replace an existing folder.
            assets: paths of files to copy into the folder (e.g. a `vocab.txt`).
        """
        preset_io.save_preset(self, directory, overwrite=overwrite, assets=assets)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "dtype": keras.dtype_policies.serialize(
            self.dtype_policy)}


def _backbone_class(class_name):
    return preset_io.model_class(class_name)
