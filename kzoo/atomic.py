"""Atomic writes of whole directories: a failed write leaves nothing half-written at the destination."""

import contextlib
import os
import shutil
import tempfile

STAGING_PREFIX = ".kzoo-"


@contextlib.contextmanager
def atomic_directory(directory, overwrite=False, assets=()):
    """Yield a staging folder beside `directory`; on success it replaces `directory` in one rename.

    If the block raises, the staging folder is removed and `directory` is left as it was.

    Args:
        directory: the folder to write.
        overwrite: replace an existing `directory` (moved aside first, so it is never a mix of old and new);
            False: an existing one raises `FileExistsError` before anything is written.
        assets: paths of files to copy into the staging folder.

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
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would make the result private to this user
    try:
        for asset in assets:
            shutil.copy2(asset, os.path.join(staging, os.path.basename(asset)))
        yield staging
        # Replacing: move the old folder aside first, so the destination is never a mix of the two; a kill between
        # the two renames leaves it aside, where `remove_stale_staging` puts it back.
        backup = None
        if os.path.exists(directory):
            backup = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}old-{os.path.basename(directory)}-", dir=parent)
            os.replace(directory, os.path.join(backup, "old"))
        os.replace(staging, directory)
        if backup:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def sync_file(path):
    """Flush `path`'s data to disk (what a rename that commits it must not overtake).

    Args:
        path: a file.
    """
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def sync_directory(path):
    """Flush `path`'s entries (a rename into it) to disk.

    Args:
        path: a folder.
    """
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def remove_stale_staging(folder):
    """Clean up after writes killed in `folder`: staging files and folders of `atomic_directory` and
    `atomic_file` are removed, and a destination moved aside by a replacement killed between its two renames
    is put back. Call it when a run starts or resumes (never while another process writes to `folder`).

    Args:
        folder: the folder the writes were in (a missing folder is fine).

    Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, STAGING_PREFIX + "abc"), "w").close()   # what a killed atomic_file leaves
    >>> remove_stale_staging(folder)
    >>> os.listdir(folder)
    []
    """
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if not name.startswith(STAGING_PREFIX):
            continue
        if name.startswith(f"{STAGING_PREFIX}old-") and os.path.isdir(os.path.join(path, "old")):
            destination = os.path.join(folder, name[len(f"{STAGING_PREFIX}old-"):].rsplit("-", 1)[0])
            if not os.path.exists(destination):
                os.replace(os.path.join(path, "old"), destination)
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


@contextlib.contextmanager
def atomic_file(path, mode="w"):
    """Yield an open temporary file beside `path`; on success it replaces `path` in one rename.

    The data is flushed to disk before the rename. If the block raises, the temporary file is removed and
    `path` is left as it was.

    Args:
        path: the file to write (its folder is created when missing).
        mode: the `open` mode: "w" (text) or "wb" (bytes).

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
    handle, staging = tempfile.mkstemp(prefix=STAGING_PREFIX, dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename commits it, should the machine itself go down
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o666 & ~umask)
        os.replace(staging, path)
        sync_directory(os.path.dirname(path))
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise
