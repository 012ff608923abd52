"""The zoo's modules import each other one way: no module imports one that imports it back, lazy
imports inside functions included."""

import ast
from pathlib import Path

import actbench.zoo

ZOO = Path(actbench.zoo.__file__).parent
MODULES = {path.stem for path in ZOO.glob("*.py")} - {"__init__"}


def _zoo_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("actbench.zoo."):
            found.add(node.module.split(".")[2])
    return found & MODULES


def test_no_import_cycles_between_zoo_modules():
    graph = {name: _zoo_imports(ZOO / f"{name}.py") for name in MODULES}

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    assert [name for name in sorted(graph) if name in reachable(name)] == []
    assert "registry" not in reachable("definitions")  # the zoo's specs do not know who loads them
