"""The import graph of mstoolkit's own modules, read statically from the source (``ast``; nothing is imported).

    $ python tests/import_graph.py            # one line per module, then the cycles
    $ python tests/import_graph.py --dot      # Graphviz

Each edge is one of: ``load`` (a module-level import: runs when the importing module is imported) or
``deferred`` (an import inside a function or method: runs when that is called). Imports under
``if TYPE_CHECKING:`` are for type checkers only and are left out. ``widgets/`` is read as the package
``mstoolkit.widgets`` it is installed as. ``tests/test_layers.py`` checks the graph against the
layers the README's architecture section names.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"mstoolkit": ROOT / "mstoolkit", "mstoolkit.widgets": ROOT / "widgets"}


def module_files() -> dict[str, Path]:
    """``{"mstoolkit.train": path, "mstoolkit.widgets.gram_explorer": path, ...}`` (``__init__`` as the package)."""
    files = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.glob("*.py")):
            files[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return files


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The mstoolkit modules an import statement loads (``from mstoolkit import audio`` -> mstoolkit.audio)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from . import x, from ._common import y
            parts = module.split(".") if is_package else module.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    out = []
    for name in names:
        while name and name not in known:  # mstoolkit.piece.Piece -> mstoolkit.piece
            name = name.rpartition(".")[0]
        if name and name != module and name not in out:
            out.append(name)
    return out


def import_graph() -> dict[str, dict[str, set[str]]]:
    """``{module: {"load": {modules}, "deferred": {modules}}}`` over mstoolkit's modules.

    Importing ``mstoolkit.x`` also runs the package's ``__init__``; that implicit edge is not listed.
    """
    files = module_files()
    known = set(files)
    graph: dict[str, dict[str, set[str]]] = {}
    for module, path in files.items():
        edges: dict[str, set[str]] = {"load": set(), "deferred": set()}
        is_package = path.stem == "__init__"

        def visit(node: ast.AST, deferred: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child):
                    for sub in child.orelse:
                        visit(sub, deferred)
                    continue
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    edges["deferred" if deferred else "load"].update(_targets(child, module, is_package, known))
                inner = deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                visit(child, inner)

        visit(ast.parse(path.read_text(), str(path)), False)
        edges["deferred"] -= edges["load"]
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, set[str]]], kinds: tuple[str, ...] = ("load",)) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), over the edges of ``kinds``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def edges(v: str) -> set[str]:
        return set().union(*(graph[v][k] for k in kinds)) & set(graph)

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges(v)):
            if w not in index:
                strong(w)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def _short(module: str) -> str:
    return module.removeprefix("mstoolkit.").replace("widgets.", "widgets/")


def report(graph: dict[str, dict[str, set[str]]]) -> str:
    lines = ["module <- imports at load time   [+ deferred, inside functions]"]
    width = max(len(_short(m)) for m in graph)
    for module in sorted(graph):
        load = ", ".join(sorted(_short(m) for m in graph[module]["load"])) or "-"
        deferred = ", ".join(sorted(_short(m) for m in graph[module]["deferred"]))
        lines.append(f"{_short(module):<{width}} <- {load}" + (f"   [+ {deferred}]" if deferred else ""))
    for kinds, label in ((("load",), "load-time imports"), (("load", "deferred"), "all imports (deferred too)")):
        found = cycles(graph, kinds)
        lines.append(f"cycles in {label}: " + ("; ".join(" <-> ".join(_short(m) for m in c) for c in found)
                                                if found else "none"))
    return "\n".join(lines)


def dot(graph: dict[str, dict[str, set[str]]]) -> str:
    lines = ["digraph mstoolkit {", "  rankdir=BT;"]
    for module in sorted(graph):
        for kind, style in (("load", "solid"), ("deferred", "dashed")):
            lines += [f'  "{_short(module)}" -> "{_short(t)}" [style={style}];' for t in sorted(graph[module][kind])]
    return "\n".join(lines + ["}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dot", action="store_true", help="print Graphviz instead of the table")
    args = parser.parse_args(argv)
    graph = import_graph()
    print(dot(graph) if args.dot else report(graph))
    return 0


if __name__ == "__main__":
    sys.exit(main())
