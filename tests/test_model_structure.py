"""Structure of bincount.model: imports at the top of modules, no import cycles, the integer
reference torch-free, folding below both the layers and the exporter."""

from pathlib import Path

from import_graph import assert_no_cycle, import_graph, module_imports

MODEL = Path(__file__).resolve().parent.parent / "model"

#: Imports inside functions that stay, with their reason.
LAZY_IMPORTS = {
    # modules that must stay importable without torch (the torch-free integer reference and
    # the golden-vector tools beside it) import torch only where a float model is involved
    "network_reference.py": {"torch"},
    "vectors.py": {"torch"},
    "engine_golden.py": {"torch"},
}


def _graph():
    # the verbs' *_cli.py modules import inside run(): bincount --help imports them all
    return import_graph(MODEL, "bincount.model", LAZY_IMPORTS,
                        exempt=lambda name: name.endswith("_cli.py"))


def test_model_imports_at_the_top_and_without_cycles():
    assert_no_cycle(_graph())


def test_layers_fold_without_the_exporter():
    graph = _graph()
    for layer in ("blocks", "stem", "head", "shortcut", "binary_conv", "net_binary_conv"):
        assert "export.network_export" not in graph[f"layers.{layer}"], layer
        assert "nets.networks" not in graph[f"layers.{layer}"], layer
    assert "nets.networks" not in graph["export.network_export"]
    assert "export.folding" in graph["export.network_export"]


def test_model_folders_by_role():
    """The folder shows the data path: layers -> nets -> export (integers, reference) ->
    hardware; data and training beside; the verbs' modules in cli/. No flat modules."""
    assert sorted(p.name for p in MODEL.glob("*.py")) == ["__init__.py"]
    roles = {p.name for p in MODEL.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert roles == {"layers", "nets", "export", "data", "training", "cli"}
    graph = _graph()
    for module, deps in graph.items():
        for dep in deps:
            a, b = module.split(".")[0], dep.split(".")[0]
            # the integer side (export) never needs the float layers, nets or training
            if a == "export" and b in ("training", "cli"):
                raise AssertionError(f"{module} imports {dep}")
            assert b != "cli" or a == "cli", f"{module} imports the command line module {dep}"


def test_integer_reference_is_torch_free():
    top, _ = module_imports(MODEL / "export" / "network_reference.py")
    assert not any(m == "torch" or m.startswith("torch.") for m in top)
