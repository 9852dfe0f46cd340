"""Structure of bincount.model: imports at the top of modules, no import cycles, the integer
reference torch-free, folding below both the layers and the exporter."""

import ast
from pathlib import Path

MODEL = Path(__file__).resolve().parent.parent / "model"

#: Imports inside functions that stay, with their reason.
LAZY_IMPORTS = {
    # modules that must stay importable without torch (the torch-free integer reference and
    # the golden-vector tools beside it) import torch only where a float model is involved
    "network_reference.py": {"torch"},
    "vectors.py": {"torch"},
    "engine_golden.py": {"torch"},
}


def _imports(path):
    tree = ast.parse(path.read_text())
    top, inner = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""])
            (top if node in tree.body else inner).update(names)
    return top, inner


def _graph():
    graph = {}
    for path in sorted(MODEL.glob("*.py")):
        top, inner = _imports(path)
        if not path.name.endswith("_cli.py"):     # verbs import inside run(): --help speed
            allowed = LAZY_IMPORTS.get(path.name, set())
            assert inner <= allowed, f"model/{path.name} imports {inner - allowed} inside functions"
        graph[path.stem] = {m.split(".")[2] for m in top | inner
                            if m.startswith("bincount.model.")}
    return graph


def test_model_imports_at_the_top_and_without_cycles():
    graph = _graph()
    done = set()

    def visit(node, stack):
        assert node not in stack, f"import cycle: {' -> '.join(stack + [node])}"
        if node in done:
            return
        for dep in graph.get(node, ()):
            visit(dep, stack + [node])
        done.add(node)

    for node in graph:
        visit(node, [])


def test_layers_fold_without_the_exporter():
    graph = _graph()
    for layer in ("blocks", "stem", "head", "shortcut", "binary_conv", "net_binary_conv"):
        assert "network_export" not in graph[layer], layer
        assert "networks" not in graph[layer], layer
    assert "networks" not in graph["network_export"]
    assert "folding" in graph["network_export"]


def test_integer_reference_is_torch_free():
    top, _ = _imports(MODEL / "network_reference.py")
    assert not any(m == "torch" or m.startswith("torch.") for m in top)
