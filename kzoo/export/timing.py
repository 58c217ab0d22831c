"""Sizes of exported files (for `make demo` and `bench/serve.py`)."""

import os

from kzoo.timing import median_seconds  # noqa: F401 (its home was here)


def path_bytes(path):
    """Bytes of a file, or of every file under a folder (a SavedModel)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(path) for name in names)
