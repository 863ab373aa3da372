"""The package's layering (ARCHITECTURE §5), read from the source: every import, at module level
or inside a function, of every module of ``hwgen/``.

* ``hwgen.dataflow`` (the IR) imports nothing from ``hdl``, ``lower``, ``frontend``, ``flows``, the
  CLI or the build: the IR stands alone;
* ``hwgen.hdl`` is generated from the IR alone (nothing from ``lower``, ``frontend``, ``flows``);
* the frontend stops at QONNX (nothing from ``lower``, ``dataflow``, ``hdl``);
* no circle between modules.
"""

import ast
import os
from pathlib import Path

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hwgen")


def _modules():
    """{dotted module name: path} of every module of the package (a package is its ``__init__``)."""
    mods = {}
    for dirpath, _, files in os.walk(ROOT):
        for fn in files:
            if fn.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, fn), os.path.dirname(ROOT))[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                mods[".".join(rel)] = os.path.join(dirpath, fn)
    return mods


def _imports(name, path, mods):
    """The hwgen modules that module ``name`` imports, anywhere in it, with the line of each."""
    is_pkg = path.endswith("__init__.py")
    package = name if is_pkg else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(Path(path).read_text(), path)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in mods:          # `import hwgen.x.y` names hwgen.x.y; a name inside a module names it
                t = t.rpartition(".")[0]
            if t and t.startswith("hwgen") and t != name:
                out.append((t, node.lineno))
    return out


MODS = _modules()
GRAPH = {m: _imports(m, p, MODS) for m, p in MODS.items()}

RULES = [
    ("hwgen.dataflow", ("hwgen.hdl", "hwgen.lower", "hwgen.frontend", "hwgen.flows", "hwgen.cli", "hwgen.build",
                        "hwgen.verify", "hwgen.explore", "hwgen.mixed")),
    ("hwgen.hdl", ("hwgen.lower", "hwgen.frontend", "hwgen.flows", "hwgen.cli", "hwgen.build", "hwgen.mixed")),
    ("hwgen.frontend", ("hwgen.lower", "hwgen.dataflow", "hwgen.hdl", "hwgen.flows", "hwgen.cli", "hwgen.build")),
]


def _under(mod, pkg):
    return mod == pkg or mod.startswith(pkg + ".")


@pytest.mark.parametrize("layer,forbidden", RULES, ids=[r[0] for r in RULES])
def test_layer_imports_nothing_above_it(layer, forbidden):
    bad = [f"{MODS[m]}:{line} imports {t}" for m, deps in GRAPH.items() if _under(m, layer)
           for t, line in deps if any(_under(t, f) for f in forbidden)]
    assert not bad, "\n".join(bad)


def test_no_import_circles():
    """Depth-first search for a back edge; the package ``hwgen`` (its ``__init__``, which
    re-exports the API) is left out as a target: a submodule that reaches it reaches everything."""
    edges = {m: sorted({t for t, _ in deps if t != "hwgen"}) for m, deps in GRAPH.items()}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in edges.get(m, ()):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(cycles)


def test_the_checker_sees_function_level_imports(tmp_path):
    """The reader finds an import inside a function (the way layering used to be dodged)."""
    path = tmp_path / "fake.py"
    path.write_text("def f():\n    from ..hdl.top import COMPONENTS\n")
    assert _imports("hwgen.dataflow.fake", str(path), {**MODS, "hwgen.dataflow.fake": str(path)}) == [("hwgen.hdl.top", 2)]
