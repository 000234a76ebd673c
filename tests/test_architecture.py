"""The house drawn from the code (tests/import_graph.py): every unit of mindspore_acmix has a
floor in docs/architecture.md, no import runs to a higher floor, no units or modules import
each other in a circle, data knows no model or engine, no private name crosses modules, and
the package imports none of the repository's scripts. No MindSpore: the source is parsed."""
import ast
import os

import import_graph as ig

PACKAGE_DIR = os.path.join(ig.REPO, ig.PACKAGE)


def test_every_unit_has_one_floor_in_the_docs():
    units, floor_of = ig.unit_graph(ig.module_graph()), ig.floors()
    assert sorted(set(units) - set(floor_of)) == [], "units missing from docs/architecture.md"
    assert sorted(set(floor_of) - set(units)) == [], "docs/architecture.md names no such unit"


def test_no_import_runs_up_a_floor():
    assert ig.upward_imports(ig.unit_graph(ig.module_graph()), ig.floors()) == []


def test_no_circles():
    graph = ig.module_graph()
    assert ig.cycles(graph) == []
    units = ig.unit_graph(graph)
    assert ig.cycles({a: set(b) for a, b in units.items()}) == []


def test_data_reaches_no_model_or_engine():
    units = ig.unit_graph(ig.module_graph())
    seen, todo = set(), ["data"]
    while todo:
        for b in units[todo.pop()]:
            if b not in seen:
                seen.add(b)
                todo.append(b)
    assert seen.isdisjoint({"layers", "models", "factory", "segmentation", "detection",
                            "engine", "tools", "config"}), sorted(seen)


def test_the_check_catches_an_upward_import_inside_a_function(tmp_path):
    """A package whose data module imports the engine at call time: reported, with the
    module and line."""
    root = tmp_path / ig.PACKAGE
    for folder in ("data", "engine"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "data" / "pipe.py").write_text("def seed():\n    from ..engine.run import x\n")
    (root / "engine" / "run.py").write_text("from ..data.pipe import seed\nx = 1\n")
    graph = ig.module_graph(str(root))
    bad = ig.upward_imports(ig.unit_graph(graph), {"data": 1, "engine": 6})
    assert bad == [f"data (floor 1) -> engine (floor 6): {ig.PACKAGE}.data.pipe imports "
                   f"{ig.PACKAGE}.engine.run (line 2)"]
    assert ig.cycles(graph) == [[f"{ig.PACKAGE}.data.pipe", f"{ig.PACKAGE}.engine.run"]]


def package_imports():
    for folder, _, names in os.walk(PACKAGE_DIR):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as fh:
                    tree = ast.parse(fh.read(), path)
                for node in ast.walk(tree):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        yield os.path.relpath(path, ig.REPO), node


def test_no_private_name_is_imported_from_another_module():
    """A helper used by two modules is a public name of the one that owns it."""
    private = [f"{path}:{node.lineno} {alias.name}" for path, node in package_imports()
               if isinstance(node, ast.ImportFrom)
               and (node.level or (node.module or "").split(".")[0] == ig.PACKAGE)
               for alias in node.names
               if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert private == []


def test_the_package_imports_no_script_benchmark_or_test():
    scripts = {n[:-3] for n in os.listdir(ig.REPO) if n.endswith(".py")}
    scripts |= {"benchmarks", "tests", "scripts", "conftest"}
    found = [f"{path}:{node.lineno}" for path, node in package_imports()
             if (isinstance(node, ast.Import)
                 and any(a.name.split(".")[0] in scripts for a in node.names))
             or (isinstance(node, ast.ImportFrom) and not node.level
                 and (node.module or "").split(".")[0] in scripts)]
    assert found == []
