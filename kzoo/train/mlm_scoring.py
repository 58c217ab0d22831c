"""The old name of `kzoo.evaluation.mlm_scoring`: the same module object, so monkeypatching either path changes both."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("kzoo.evaluation.mlm_scoring")
