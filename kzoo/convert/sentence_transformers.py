"""A sentence-transformers folder's own embedding settings: its pooling, normalisation and sequence length.

Such a folder is a Hugging Face model folder (config.json, weights, tokenizer) plus `modules.json`, which lists
the modules applied in turn: the Transformer, then `Pooling` (settings in its folder's `config.json`), then
optionally `Normalize`. kzoo reads these files itself (sentence-transformers is not needed); it takes the
Transformer → Pooling (→ Normalize) pipelines that all-MiniLM-L6-v2 and most models of its kind use, and refuses
others (a `Dense` projection, several pooling modes at once) naming the file. Like the Hugging Face reader it
sits below the models and imports none of them (docs/design.md §10).
"""

import json
import os

from kzoo.file_checks import present, read_json, read_text

MODULES_FILE = "modules.json"
_MODULE = "sentence_transformers.models."
# 1_Pooling/config.json keys → kzoo pooling modes.
_POOLING_KEYS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
                 "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len"}
_UNSUPPORTED_POOLING = ("pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")


def is_sentence_transformers_folder(directory):
    """True when `directory` holds a sentence-transformers `modules.json`."""
    return isinstance(directory, str) and present(os.path.join(directory, MODULES_FILE))


def embedding_settings(directory):
    """`{"pooling_mode", "normalize", "sequence_length"}` of a sentence-transformers folder (sequence_length None
    when `sentence_bert_config.json` gives none). Every error names the file and the setting.

    Args:
        directory: a folder with `modules.json` (e.g. all-MiniLM-L6-v2's).

    Example:
    >>> import json, os, tempfile
    >>> folder = tempfile.mkdtemp(); os.mkdir(os.path.join(folder, "1_Pooling"))
    >>> json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    ...            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}],
    ...           open(os.path.join(folder, "modules.json"), "w"))
    >>> json.dump({"pooling_mode_cls_token": True}, open(os.path.join(folder, "1_Pooling", "config.json"), "w"))
    >>> embedding_settings(folder)
    {'pooling_mode': 'cls', 'normalize': False, 'sequence_length': None}
    """
    path = os.path.join(directory, MODULES_FILE)
    try:
        modules = json.loads(read_text(path, "sentence-transformers modules list"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}.") from error
    if not (isinstance(modules, list) and all(isinstance(m, dict) and isinstance(m.get("type"), str)
                                              for m in modules)):
        raise ValueError(f"{path} must be a list of modules, each an object with a \"type\".")
    kinds = [module["type"].removeprefix(_MODULE) for module in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        raise ValueError(f"{path} lists modules {kinds}; kzoo's TextEmbedder reads Transformer, Pooling and an "
                         "optional Normalize, in that order.")
    if modules[0].get("path", ""):
        raise ValueError(f"{path}: the Transformer is in {modules[0]['path']!r}; kzoo reads it from the folder itself "
                         "(modules.json's path \"\"), where sentence-transformers 2 and later save it.")
    if not isinstance(modules[1].get("path"), str) or not modules[1]["path"]:
        raise ValueError(f"{path}: the Pooling module has no \"path\" (its folder, e.g. \"1_Pooling\").")
    settings = {"pooling_mode": _pooling_mode(os.path.join(directory, modules[1]["path"], "config.json")),
                "normalize": kinds[2:] == ["Normalize"], "sequence_length": None}
    bert_config = os.path.join(directory, "sentence_bert_config.json")
    if present(bert_config):
        config = read_json(bert_config, "sentence-transformers config")
        length = config.get("max_seq_length")
        if length is not None and not (isinstance(length, int) and not isinstance(length, bool) and length >= 3):
            raise ValueError(f"{bert_config}: max_seq_length is {length!r}; it must be an integer of at least 3.")
        settings["sequence_length"] = length
    return settings


def _pooling_mode(path):
    """The one pooling mode a `Pooling` module's config.json turns on."""
    config = read_json(path, "sentence-transformers pooling config")
    unsupported = [key for key in _UNSUPPORTED_POOLING if config.get(key)]
    modes = [mode for key, mode in _POOLING_KEYS.items() if config.get(key)]
    if unsupported or len(modes) != 1:
        found = ", ".join(key for key in (*_POOLING_KEYS, *_UNSUPPORTED_POOLING) if config.get(key)) or "none"
        raise ValueError(f"{path} turns on pooling modes: {found}; kzoo's TextEmbedder takes exactly one of "
                         f"{', '.join(_POOLING_KEYS)}.")
    return modes[0]
