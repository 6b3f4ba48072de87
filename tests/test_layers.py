"""The package layout is the architecture: a layer imports only the layers below it, and no
module imports itself back through others. Function-level imports count; imports under
`if TYPE_CHECKING:` do not (they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

# Lowest first. The ground modules sit at the top of the package; every other layer is a
# package of its own (trainables/ lives beside src/ so Ray workers can import it).
LAYERS = [
    ("ground", ["errors", "atomic", "options", "tasks", "paths", "layout", "genres"]),
    ("audio", ["audio"]),
    ("data", ["data"]),
    ("models", ["models"]),
    ("training", ["training"]),
    ("trainables", ["trainables"]),
    ("tuning", ["tuning"]),
    ("reporting", ["reporting"]),
    ("serving", ["serving"]),
    ("commands", ["commands", "__init__", "__main__"]),
]


def module_files(src: Path, trainables: Path) -> dict[str, Path]:
    """Dotted name (without the `musictune.` prefix; trainables keep theirs) -> file."""
    found = {}
    for path in src.rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        found[".".join(parts)] = path
    for path in trainables.rglob("*.py"):
        parts = ["trainables", *path.relative_to(trainables).with_suffix("").parts]
        found[".".join(parts)] = path
    return found


def layer_of(module: str) -> int:
    head = module.split(".")[0]
    for rank, (_, names) in enumerate(LAYERS):
        if head in names:
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")


def _short(dotted: str) -> str:
    return dotted.removeprefix("musictune.").removeprefix("musictune") or "__init__"


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            candidates = [f"{name}.{alias.name}" for alias in node.names]
            candidates = [c if _short(c) in known else name for c in candidates]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            if not candidate.startswith(("musictune", "trainables")):
                continue
            short = _short(candidate)
            if short in known:
                targets.add(short)
            elif f"{short}.__init__" in known:
                targets.add(f"{short}.__init__")
    targets.discard(module)
    return targets


def import_graph(src: Path, trainables: Path) -> dict[str, set[str]]:
    files = module_files(src, trainables)
    return {m: imports_of(p, m, set(files)) for m, p in files.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_layer_imports_a_higher_one():
    graph = import_graph(ROOT / "src" / "musictune", ROOT / "trainables")
    assert len(graph) > 50
    assert upward_imports(graph) == []


def test_no_import_cycle():
    graph = import_graph(ROOT / "src" / "musictune", ROOT / "trainables")
    assert cycles(graph) == []


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path):
    """The two rules on a tree that breaks both, function-level import included."""
    src, trainables = tmp_path / "musictune", tmp_path / "trainables"
    for folder in (src / "data", src / "commands", trainables):
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
    (src / "errors.py").write_text("")
    (src / "data" / "files.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from musictune.commands import cli\n"
        "def f():\n    from musictune.commands.cli import main\n"
    )
    (src / "commands" / "cli.py").write_text("from musictune.commands import lab\n")
    (src / "commands" / "lab.py").write_text("from musictune.commands.cli import main\n")
    graph = import_graph(src, trainables)
    assert upward_imports(graph) == ["data.files (data) imports commands.cli (commands)"]
    assert cycles(graph) == [["commands.cli", "commands.lab"]]
