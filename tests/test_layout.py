"""The package's shape: layers import only downwards, no import cycles, small one-concept modules."""

import ast
from pathlib import Path

import separ_eval

ROOT = Path(separ_eval.__file__).parent
# Each layer may import from the layers listed after it, never from those before it.
LAYERS = ["cli", "run", "lm_eval_ext", "report", "engine", "base"]
BASE = {"data", "models", "targets", "testing", "io", "resources", "distributed", "errors", "__init__"}
MAX_LINES = 350


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__") or "__init__"


def _layer(module: str) -> str:
    top = module.split(".")[0]
    if top == "__main__":  # `python -m separ_eval` is the command line
        return "cli"
    return "base" if top in BASE else top


def _imports(path: Path) -> set[str]:
    """separ_eval modules imported by the file (relative imports resolved)."""
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("separ_eval"):
                target = node.module.removeprefix("separ_eval").lstrip(".")
            else:
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}" if target else alias.name
                found.add(candidate if _exists(candidate) else target)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("separ_eval.") for a in node.names if a.name.startswith("separ_eval.")}
    return {f for f in found if f}


def _exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _modules() -> list[Path]:
    """The package's Python modules; `tasks/` is lm-eval task data (its utils.py is loaded by lm-eval by path)."""
    return [p for p in ROOT.rglob("*.py") if "tasks" not in p.relative_to(ROOT).parts[:1]]


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in _modules()}


def test_layers_import_only_downwards():
    order = {name: i for i, name in enumerate(LAYERS)}
    upward = [
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in _graph().items() for target in targets
        if order[_layer(target)] < order[_layer(module)]
    ]
    # The base layer's own modules (data, models, targets) may lean on each other, never on a layer above.
    assert upward == []


def test_no_import_cycles():
    graph = _graph()
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*trail[trail.index(nxt):], nxt]) if nxt in trail else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    # A package's __init__ that re-exports its own modules is not a cycle of concepts.
    assert [c for c in cycles if not _init_reexport(c)] == []


def _init_reexport(cycle: str) -> bool:
    first, *rest = cycle.split(" -> ")
    return all(step.startswith(first + ".") or step == first for step in rest)


def test_modules_are_small():
    long = {_module_name(p): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
