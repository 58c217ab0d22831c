"""Native (C++) log lines that Python's logging cannot reach.

TensorFlow 2.21 writes INFO lines at import (oneDNN, the CUDA stub) through absl before reading
TF_CPP_MIN_LOG_LEVEL, and LiteRT prints "Created TensorFlow Lite XNNPACK delegate" to stderr on a model's first
allocation; neither has a Python switch. `native_stderr_quieted` holds the process's stderr (file descriptor 2)
for the duration of such a call and gives back what it held only when the call fails, so an error keeps its
message.
"""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def native_stderr_quieted():
    """Hold what native code writes to file descriptor 2 inside the block; write it out if the block raises.

    Example:

    >>> with native_stderr_quieted():
    ...     _ = os.write(2, b"INFO: a native log line\\n")
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, held.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


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
