"""Native (C++) log lines that Python's logging cannot reach.

TensorFlow 2.21 writes INFO lines at import (oneDNN, the CUDA stub) through absl, ignoring TF_CPP_MIN_LOG_LEVEL,
and LiteRT prints "Created TensorFlow Lite XNNPACK delegate" to stderr on a model's first allocation; neither
has a Python switch. `native_stderr_quieted` holds what the process writes to file descriptor 2 during such a
call, then writes it back without those known lines: anything else (a Python warning, an error) still shows.
Set KZOO_NATIVE_LOGS=1 to see everything.
"""

import contextlib
import os
import re
import sys
import tempfile

# The lines held back: absl's preamble, and INFO lines ("I" + date) of the named native sources.
KNOWN_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} [^\n]*\] .*"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)\n",
    re.MULTILINE)


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


@contextlib.contextmanager
def native_stderr_quieted():
    """Hold file descriptor 2 inside the block; write back what it received, less `KNOWN_NOISE`.

    Example:

    >>> with native_stderr_quieted():
    ...     _ = os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    """
    if os.environ.get("KZOO_NATIVE_LOGS") == "1":
        yield
        return
    try:
        held = tempfile.TemporaryFile()
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no stderr to hold (closed), or no temporary file: say everything
        yield
        return
    with held:
        try:
            os.dup2(held.fileno(), 2)
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            _write_all(2, KNOWN_NOISE.sub(b"", held.read()))


def import_tensorflow_quietly():
    """Import TensorFlow (once per process) without its import-time native INFO lines; None when absent."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    try:
        with native_stderr_quieted():
            import tensorflow
    except ImportError:
        return None
    return tensorflow
