"""Reading the files kzoo loads, with one-line errors that name the file and what is wrong with it.

Missing files raise `FileNotFoundError`; files that are there but unusable (a directory, unreadable, a symbolic
link loop, not UTF-8, not JSON, the wrong JSON type) raise `ValueError`: the two errors the `kzoo` command reports
as "kzoo <command>: error: ...". `describe` says what a value of the wrong type is, for such messages.
"""

import json
import os


def looks_like_path(name):
    """True for a string meant as a path rather than a preset name: it has a path separator or starts with
    '.' or '~'.

    Args:
        name: a preset name or a path.

    Example:
    >>> looks_like_path("bert_tiny_en_uncased"), looks_like_path("runs/best"), looks_like_path("./best")
    (False, True, True)
    """
    separators = {os.sep, os.altsep or os.sep, "/"}
    return any(sep in name for sep in separators) or name.startswith((".", "~"))


def present(path):
    """True when something is at `path`, even a directory, a broken symbolic link or a link loop (which
    `os.path.isfile` calls absent): the loader then reports what is wrong instead of skipping it.

    Args:
        path: a path.
    """
    return os.path.lexists(path)


def check_readable(path, what="file"):
    """Raise unless `path` is a regular file this process can open: `FileNotFoundError` when it is missing,
    else a `ValueError` naming the file and the problem.

    Args:
        path: the file.
        what: what the file should be, for the message ("safetensors file").
    """
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError as error:
        broken = " (a broken symbolic link)" if os.path.islink(path) else ""
        raise FileNotFoundError(f"{path} does not exist{broken}.") from error
    except IsADirectoryError as error:
        raise ValueError(f"{path} is a directory, not a {what}.") from error
    except OSError as error:  # permission denied, a symbolic link loop, ...
        raise ValueError(f"{path} cannot be read: {error.strerror or error}.") from error


def read_bytes(path, what="file"):
    """The file's bytes, after `check_readable(path, what)`."""
    check_readable(path, what)
    with open(path, "rb") as f:
        return f.read()


def not_utf8(path, line, offset, reason, start=b"", replace_hint=False, what=None):
    """The one-line message for bytes of `path` that are not UTF-8, at `line` (1-based) and byte `offset` of the
    file. `start`: the file's first bytes, to recognise UTF-16; `replace_hint`: mention encoding_errors='replace';
    `what`: what the file should have been ("WordPiece vocabulary")."""
    if start[:2] in (b"\xff\xfe", b"\xfe\xff"):
        hint = "it looks like UTF-16: re-encode it, e.g. `iconv -f utf-16 -t utf-8`"
    else:
        hint = "re-encode the file, e.g. `iconv -f latin1 -t utf-8`" + (
            ", or read such bytes as U+FFFD with encoding_errors='replace' (--encoding-errors replace)"
            if replace_hint else "")
    so = f", so not a {what}" if what else ""
    return f"{path}, line {line}: not UTF-8 ({reason} at byte {offset} of the file){so}; {hint}."


def decode_text(data, path, errors="strict", replace_hint=False, what=None):
    """A whole file's bytes as text, without a UTF-8 byte-order mark; a ValueError from `not_utf8` otherwise.

    Args:
        data: the file's bytes.
        path: the file, for the message.
        errors: `bytes.decode`'s `errors`: "strict", or "replace" (bad bytes become U+FFFD).
        replace_hint, what: as in `not_utf8`.
    """
    try:
        return data.decode("utf-8", errors).removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(not_utf8(path, line, error.start, error.reason, data[:2], replace_hint, what)) from error


def read_text(path, what="text file"):
    """The file's text (see `decode_text`); a ValueError when it is not UTF-8 or holds NUL bytes (a binary file
    given where text belongs).

    Args:
        path: the file.
        what: what the file should be, for the messages.
    """
    text = decode_text(read_bytes(path, what), path, what=what)
    if "\x00" in text:
        raise ValueError(f"{path} is a binary file (it holds NUL bytes), not a {what}.")
    return text


def read_json(path, what="JSON file"):
    """The JSON object (dict) in `path`, or a ValueError naming the file: empty, not JSON, or another JSON type.

    Args:
        path: the file.
        what: what the file should be, for the messages ("preprocessor config").

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "config.json")
    >>> with open(path, "w") as f:
    ...     _ = f.write("[1, 2]")
    >>> read_json(path, "model config")
    Traceback (most recent call last):
    ...
    ValueError: ... holds a JSON array; a model config holds a JSON object.
    """
    text = read_text(path, what)
    if not text.strip():
        raise ValueError(f"{path} is empty; a {what} holds a JSON object.")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}.") from error
    if not isinstance(value, dict):
        raise ValueError(f"{path} holds {describe(value, as_json=True)}; a {what} holds a JSON object.")
    return value


_JSON_NAMES = ((dict, "a JSON object"), (list, "a JSON array"), (str, "a JSON string"), (bool, "a JSON boolean"),
               ((int, float), "a JSON number"), (type(None), "JSON null"))


def describe(value, as_json=False):
    """What `value` is, for a message: Python's name and its start ("None", "an int (3)", "a list (['a'])"), or
    with `as_json`, the JSON name of a parsed value ("a JSON array", "JSON null").

    Args:
        value: any value.
        as_json: name it as JSON, for a value parsed from a JSON file.

    Example:
    >>> describe(3), describe(None), describe([1], as_json=True)
    ('an int (3)', 'None', 'a JSON array')
    """
    if as_json:
        return next((name for kind, name in _JSON_NAMES if isinstance(value, kind)), type(value).__name__)
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} ({str(value)[:20]})"


def one_line(error, limit=200):
    """The first line of a library's error message (at most `limit` characters), for quoting in a one-line
    message.

    Args:
        error: an exception (or any object: its `str`).
        limit: the most characters; a longer line is cut, ending with "…".

    Example:
    >>> one_line(ValueError("bad shape\\n  details"))
    'bad shape'
    """
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= limit else line[:limit - 1] + "…"
