"""Dict inputs matched by name, not by position."""


class NamedInputsMixin:
    """Mixed into kzoo's functional models: a dict input is matched to the model's inputs by key.

    Keras flattens a dict input by sorted key and matches the flat list to the model's inputs by position, with
    only a warning when the dict has extra keys. A DistilBERT model (no `segment_ids`) handed a BERT-style dict
    of three would read `segment_ids` as its `token_ids` and answer silently wrong. Here extra keys are dropped;
    a missing key is left to Keras, whose error names it.
    """

    def _standardize_inputs(self, inputs):
        expected = getattr(self, "_inputs_struct", None)
        if isinstance(inputs, dict) and isinstance(expected, dict) and set(expected) < set(inputs):
            inputs = {key: inputs[key] for key in expected}
        return super()._standardize_inputs(inputs)
