"""Atomic writes of whole directories: a failed write leaves nothing half-written at the destination."""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_directory(directory, overwrite=False, assets=()):
    """Yield a staging folder beside `directory`; on success it replaces `directory` in one rename.

    An existing destination needs `overwrite=True`. `assets` (file paths) are copied into the staging folder.

    Example:
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "out")
    >>> with atomic_directory(target) as staging:
    ...     open(os.path.join(staging, "a.txt"), "w").close()
    >>> os.listdir(target)
    ['a.txt']
    """
    directory = os.path.abspath(directory)
    if os.path.exists(directory) and not overwrite:
        raise FileExistsError(f"{directory} already exists; pass overwrite=True to replace it.")
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".kzoo-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would make the result private to this user
    try:
        for asset in assets:
            shutil.copy2(asset, os.path.join(staging, os.path.basename(asset)))
        yield staging
        # Replacing: move the old folder aside first, so a crash never leaves the destination missing or mixed.
        backup = None
        if os.path.exists(directory):
            backup = tempfile.mkdtemp(prefix=".kzoo-old-", dir=parent)
            os.replace(directory, os.path.join(backup, "old"))
        os.replace(staging, directory)
        if backup:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path, mode="w"):
    """Yield an open temporary file beside `path`; on success it replaces `path` in one rename.

    Example:
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> with atomic_file(target) as f:
    ...     _ = f.write("[PAD]\\n")
    >>> open(target).read()
    '[PAD]\\n'
    """
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".kzoo-", dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, mode) as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o666 & ~umask)
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise
