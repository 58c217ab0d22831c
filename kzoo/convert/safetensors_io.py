"""Reading safetensors checkpoints, one file or sharded, into float32 numpy arrays; no Keras, JAX or TensorFlow.

safetensors' numpy loader builds a bfloat16 array only when `ml_dtypes` is importable and already imported
(Keras, JAX and TensorFlow import it), so what loads would depend on which library came first. Here the raw
bytes come from `safetensors.deserialize` and the floating dtypes are cast to float32 by hand (`_to_array`):
float16 and bfloat16 exactly, float64 rounded. Importing this module imports numpy and safetensors only.
"""

import json
import os

import numpy as np

from kzoo.file_checks import check_readable, one_line, present, read_json

INDEX_SUFFIX = ".index.json"
# safetensors dtype codes -> numpy dtypes (stored little-endian). BF16 is absent: numpy has no bfloat16.
_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
                 "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def _to_array(path, name, spec):
    """One tensor of `safetensors.deserialize`'s output as numpy: floating dtypes as float32, others kept."""
    dtype, shape, data = spec["dtype"], tuple(spec["shape"]), spec["data"]
    if dtype == "BF16":
        # bfloat16 is the top half of a float32: shifting its 16 bits up is the exact cast, and needs no
        # ml_dtypes (see the module docstring).
        bits = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    if dtype not in _NUMPY_DTYPES:
        raise ValueError(f"{path}: tensor {name!r} is stored as {dtype}, which kzoo does not read (it reads "
                         f"BF16 and {', '.join(_NUMPY_DTYPES)}).")
    array = np.frombuffer(data, dtype=_NUMPY_DTYPES[dtype]).reshape(shape)
    return array.astype(np.float32) if array.dtype.kind == "f" else array.astype(array.dtype.newbyteorder("="))


def read_safetensors(path, names=None, index=None):
    """`{name: numpy array}` of one safetensors file, floating tensors cast to float32 (float16 and bfloat16
    exactly). Errors name the file (and the tensor).

    Args:
        path: a `.safetensors` file.
        names: the tensors to return, each of which must be in the file (a shard's names in its index); None:
            every tensor.
        index: the index file listing `names`, for the message when one is missing.

    Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from safetensors.numpy import save_file
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> save_file({"w": np.array([1.5, -2.0], "float16")}, path)
    >>> read_safetensors(path)
    {'w': array([ 1.5, -2. ], dtype=float32)}
    """
    from safetensors import SafetensorError, deserialize

    check_readable(path, "safetensors file")
    with open(path, "rb") as f:
        data = f.read()
    try:
        stored = dict(deserialize(data))
    except (SafetensorError, ValueError) as error:
        raise ValueError(f"{path} is not a readable safetensors file (truncated or corrupt?): "
                         f"{one_line(error)}") from error
    del data
    wanted = list(stored) if names is None else list(names)
    missing = [name for name in wanted if name not in stored]
    if missing:
        listed = f" although {index} lists it there" if index else ""
        raise ValueError(f"{path} has no tensor {missing[0]!r}{listed}"
                         f"{f' ({len(missing) - 1} more missing)' if len(missing) > 1 else ''}.")
    return {name: _to_array(path, name, stored[name]) for name in wanted}


def read_index(path):
    """`{shard path: [tensor names]}` of a sharded checkpoint's index (`model.safetensors.index.json` or
    `pytorch_model.bin.index.json`: `{"metadata": ..., "weight_map": {tensor: shard file}}`), the shards checked
    to be files of the index's folder that exist. Errors name the index (and the shard and a tensor in it).

    Args:
        path: the index file.

    Example:
    >>> import json, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
    ...     json.dump({"weight_map": {"a": "model-00001-of-00002.safetensors"}}, f)
    >>> read_index(os.path.join(folder, "model.safetensors.index.json"))
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...model-00001-of-00002.safetensors is missing; ...index.json lists tensor 'a' in it.
    """
    weight_map = read_json(path, "sharded checkpoint index").get("weight_map")
    if not (isinstance(weight_map, dict) and weight_map and
            all(isinstance(shard, str) for shard in weight_map.values())):
        raise ValueError(f"{path}: weight_map must be a non-empty object of tensor name: shard file; got "
                         f"{json.dumps(weight_map)[:80]}.")
    folder = os.path.dirname(path)
    shards = {}
    for name, shard in weight_map.items():
        if os.path.basename(shard) != shard or shard in ("", ".", ".."):
            raise ValueError(f"{path}: tensor {name!r} is in {shard!r}; a shard must be a file name in the "
                             "index's folder.")
        shards.setdefault(os.path.join(folder, shard), []).append(name)
    for shard, names in shards.items():
        if not present(shard):
            raise FileNotFoundError(f"{shard} is missing; {path} lists tensor {names[0]!r} in it.")
    return shards


def read_sharded(path, read_shard=None):
    """(`{name: array}`, `{name: the shard holding it}`) of every tensor an index lists (see `read_index`).

    Args:
        path: the index file.
        read_shard: `read_shard(shard, names, index)` -> `{name: array}`; default `read_safetensors`.
    """
    read_shard = read_shard or read_safetensors
    tensors, files = {}, {}
    for shard, names in read_index(path).items():
        tensors.update(read_shard(shard, names, path))
        files.update(dict.fromkeys(names, shard))
    return tensors, files
