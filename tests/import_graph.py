"""Import structure of a package folder, for the structure tests: which modules a module
imports at its top and inside functions, and a check that the imports form no cycle."""

import ast

__all__ = ["module_imports", "import_graph", "assert_no_cycle"]


def _module_level(body):
    """The statements of ``body`` run at import time, into top-level ``if`` / ``try``."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try)):
            for part in (node.body, node.orelse, getattr(node, "finalbody", []),
                         *[h.body for h in getattr(node, "handlers", [])]):
                yield from _module_level(part)


def module_imports(path):
    """``(top, inner)``: module names imported at the top of ``path`` (also under a top-level
    ``if`` or ``try``) and inside functions."""
    tree = ast.parse(path.read_text())
    level = {id(n) for n in _module_level(tree.body)}
    top, inner = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""])
            (top if id(node) in level else inner).update(names)
    return top, inner


def _package_deps(path, package, folder):
    """Modules of ``package`` (dotted, relative to it) that ``path`` imports anywhere: for
    ``from package.sub import name`` the module ``sub.name`` when it is a file of ``folder``,
    else ``sub``."""
    deps = set()
    prefix = package + "."
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = []
            for a in node.names:
                full = f"{node.module}.{a.name}"
                rel = full[len(prefix):] if full.startswith(prefix) else None
                names.append(full if rel and (folder / (rel.replace(".", "/") + ".py")).exists()
                             else node.module)
        else:
            continue
        deps |= {n[len(prefix):] for n in names if n.startswith(prefix)}
    return deps


def import_graph(folder, package, lazy, exempt=lambda name: False):
    """``{module: {modules of package it imports}}`` for every ``*.py`` under ``folder``
    (modules named by their dotted path below ``package``; ``__init__.py`` files left out);
    asserts that a module imports inside functions only what ``lazy[file name]`` allows
    (``None``: anything; ``exempt(file name)``: not checked)."""
    graph = {}
    for path in sorted(folder.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        top, inner = module_imports(path)
        allowed = lazy.get(path.name, set())
        if allowed is not None and not exempt(path.name):
            assert inner <= allowed, f"{path.name} imports {inner - allowed} inside functions"
        key = ".".join(path.relative_to(folder).with_suffix("").parts)
        graph[key] = _package_deps(path, package, folder)
    return graph


def assert_no_cycle(graph):
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
