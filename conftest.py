"""pytest, collecting kzoo's doctests (`--doctest-modules`): leave out the old module paths that alias a moved
module. Importing one gives the module of another file, which pytest refuses; its doctests run at the new path.
(At the repository root, so it is not installed with the package.)"""

import pathlib


def _is_alias(path):
    return any(line.startswith("sys.modules[__name__] = ") for line in path.read_text(encoding="utf-8").splitlines())


collect_ignore = [str(path) for path in (pathlib.Path(__file__).parent / "kzoo").rglob("*.py") if _is_alias(path)]
