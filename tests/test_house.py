"""The house rules of kzoo's layout: no import cycle among its modules, one architecture record that the model
classes agree with, old module paths still importable. Read with `ast` and without Keras: fast."""

import ast
import importlib
import pathlib

import pytest

KZOO = pathlib.Path(__file__).resolve().parent.parent / "kzoo"


def module_name(path, root=KZOO):
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree, modules):
    """The kzoo modules a parsed module imports, at module level or inside functions: `import kzoo.a.b`,
    `from kzoo.a import b` (module b when it is one, else the package kzoo.a) and `importlib.import_module("kzoo.a")`
    (the old names' aliases)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(node.args[0].value)
    return found & set(modules)


def import_graph(root=KZOO):
    """{module: sorted kzoo modules it imports}. Importing kzoo.a.b also runs kzoo/a/__init__.py; that implicit
    edge is left out, or every module would form a cycle with its package's re-exports."""
    modules = {module_name(path, root): path for path in root.rglob("*.py")}
    return {name: sorted(_imported(ast.parse(path.read_text(encoding="utf-8")), modules) - {name})
            for name, path in modules.items()}


def find_cycle(graph):
    """One cycle of `graph` as a list of nodes [a, b, ..., a], or None (an iterative depth-first search)."""
    state = {}  # node -> "open" while on the current path, "done" once all it reaches is explored
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(graph[start])]
        state[start] = "open"
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = "done"
                stack.pop()
            elif state.get(following) == "open":
                return path[path.index(following):] + [following]
            elif following not in state:
                state[following] = "open"
                path.append(following)
                stack.append(iter(graph.get(following, ())))
    return None


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_kzoo_modules_import_no_cycle():
    graph = import_graph()
    assert "kzoo.models.preset_io" in graph and "kzoo.recipes.pretrain" in graph  # the walk saw the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_graph_sees_an_import_inside_a_function(tmp_path):
    package = tmp_path / "kzoo"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("from kzoo.low.io import read\n")
    (package / "low" / "io.py").write_text("def read():\n    from kzoo import high\n    return high\n")
    (package / "high.py").write_text("from kzoo.low import io\n")
    assert find_cycle(import_graph(package)) == ["kzoo.high", "kzoo.low.io", "kzoo.high"]


def test_every_architecture_record_matches_its_classes():
    from kzoo import models
    from kzoo.architectures import ARCHITECTURES, of_backbone, of_model_type

    for name, arch in ARCHITECTURES.items():
        backbone = getattr(models, arch.backbone)
        assert of_backbone(backbone) is arch and of_model_type(arch.hf.model_type) is arch
        assert backbone.uses_segments == arch.segments and backbone.has_pooler == (arch.hf.pooler is not None)
        for task in (arch.pretrainer, arch.masked_lm):
            assert getattr(models, task).backbone_class is backbone
        assert (getattr(models, arch.pretrainer).pair_task or "mlm") == arch.pretraining_task
        assert models.PRESETS[arch.tiny_preset][0] == arch.backbone


@pytest.mark.parametrize("old, new", [
    ("kzoo.train.pretrain", "kzoo.recipes.pretrain"), ("kzoo.train.finetune", "kzoo.recipes.finetune"),
    ("kzoo.train.finetune_tasks", "kzoo.recipes.finetune_tasks"), ("kzoo.train.distill_run", "kzoo.recipes.distill"),
    ("kzoo.train.mlm_scoring", "kzoo.evaluation.mlm_scoring")])
def test_an_old_module_path_is_the_new_module(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_old_names_still_import():
    from kzoo.data.labelled_files import read_rows
    from kzoo.evaluation import paired_accuracy_difference
    from kzoo.layers import embeddings, initializers
    from kzoo.timing import median_seconds
    from kzoo.train import labelled_data

    assert (labelled_data.read_rows, labelled_data.paired_accuracy_difference) == (read_rows,
                                                                                   paired_accuracy_difference)
    assert (embeddings.truncated_normal, embeddings.zero_init) == (initializers.truncated_normal,
                                                                    initializers.zero_init)
    assert importlib.import_module("kzoo.export.timing").median_seconds is median_seconds


def test_a_key_error_is_a_bug_not_bad_input(monkeypatch):
    from kzoo import cli

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "_presets", broken)
    with pytest.raises(KeyError):  # its traceback is kept, not turned into "kzoo presets: error: ..." (exit 2)
        cli.main(["presets"])
