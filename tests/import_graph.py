"""The import graph of mindspore_acmix, read from the source (ast, nothing imported), and its
floors (docs/architecture.md). Every `import` and `from ... import` counts, the ones inside
functions too: an import deferred to call time is still an arrow.

    python tests/import_graph.py            # unit -> the units it imports, floor by floor

A unit is a subpackage (ops, layers, ...) or a top-level module (checks, config, ...); the
package's own __init__ is its front door, not a unit (it imports only `startup`, and its
public names load lazily from the units).
"""
import argparse
import ast
import collections
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "mindspore_acmix"
ARCHITECTURE = os.path.join(REPO, "docs", "architecture.md")


def module_name(path, root):
    rel = os.path.relpath(path, os.path.dirname(root))[:-len(".py")].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def imported_names(tree, module, is_package):
    """(names, line) of each import of PACKAGE in `tree`: the absolute name imported, and for
    `from X import a` both X.a (`a` may be a module) and X, the caller keeps what exists."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield [alias.name], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == PACKAGE:
                for alias in node.names:
                    yield [f"{target}.{alias.name}", target], node.lineno


def module_graph(root=os.path.join(REPO, PACKAGE)):
    """{module: {imported module: first line}} over the package's modules."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                files[module_name(path, root)] = path
    graph = {}
    for module, path in files.items():
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
        edges = {}
        for names, line in imported_names(tree, module, path.endswith("__init__.py")):
            # the first that is a module: X.a when `a` is a submodule, else X (or its parent
            # package, for `import X.a.b` of a name that is not a module)
            target = next((n for n in names if n in files), names[-1])
            while target not in files and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def unit(module):
    """ops for mindspore_acmix.ops.halo, config for mindspore_acmix.config; None for the
    package's __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def unit_graph(graph):
    """{unit: {imported unit: [(module, imported module, line)]}} between distinct units."""
    units = collections.defaultdict(lambda: collections.defaultdict(list))
    for module, edges in graph.items():
        for target, line in edges.items():
            a, b = unit(module), unit(target)
            if a is not None and b is not None and a != b:
                units[a][b].append((module, target, line))
    for module in graph:
        if unit(module) is not None:
            units[unit(module)]  # every unit, importing nothing or not
    return units


def floors(path=ARCHITECTURE):
    """{unit: floor} from the table of docs/architecture.md (rows `| N | unit, unit | ... |`)."""
    found = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            match = re.match(r"\|\s*(\d+)\s*\|([^|]+)\|", line)
            if match:
                for name in re.findall(r"`([\w.]+)/?`", match.group(2)):
                    found[name] = int(match.group(1))
    return found


def cycles(graph):
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def upward_imports(units, floor_of):
    """'a (floor i) -> b (floor j): module imports target (line N)' for every import from a unit
    to one on a higher floor (a unit may import its own floor: the circles are checked apart)."""
    bad = []
    for a, targets in sorted(units.items()):
        for b, sites in sorted(targets.items()):
            if floor_of[b] > floor_of[a]:
                module, target, line = sites[0]
                bad.append(f"{a} (floor {floor_of[a]}) -> {b} (floor {floor_of[b]}): "
                           f"{module} imports {target} (line {line})")
    return bad


def main(argv=None):
    parser = argparse.ArgumentParser(description="The units of mindspore_acmix by floor, with "
                                                 "the units each imports.")
    parser.parse_args(argv)
    units, floor_of = unit_graph(module_graph()), floors()
    for floor in sorted(set(floor_of.values())):
        for name in sorted(u for u in units if floor_of.get(u) == floor):
            print(f"{floor:2d} {name:<15} -> {', '.join(sorted(units[name])) or '-'}")
    missing = sorted(set(units) - set(floor_of))
    if missing:
        print("not in docs/architecture.md:", ", ".join(missing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
