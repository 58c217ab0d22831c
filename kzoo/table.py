"""Plain-text tables for the CLI and the benchmarks."""


def format_table(headers, rows):
    """Render `rows` (lists of cells) under `headers` as an aligned text table; numbers align right.

    Example:
    >>> print(format_table(["name", "n"], [["a", 1], ["bb", 22]]))
    name   n
    ----  --
    a      1
    bb    22
    """
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in rows) and rows for i in range(len(headers))]

    def line(row):
        return "  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]
    return "\n".join(s.rstrip() for s in out)


def _is_number(value):
    return isinstance(value, (int, float)) or str(value).replace(",", "").replace(".", "").replace("x", "").isdigit()
