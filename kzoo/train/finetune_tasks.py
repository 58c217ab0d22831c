"""The old name of `kzoo.recipes.finetune_tasks`: the same module object, so monkeypatching either path changes both."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("kzoo.recipes.finetune_tasks")
