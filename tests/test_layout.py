"""The package's layout: no import circles among module-level imports, and the layers of
docs/design.md hold (building blocks never import training, the API or the entry points)."""

import ast
from pathlib import Path

import gankit

ROOT = Path(gankit.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """gankit modules imported at module level (not inside functions or TYPE_CHECKING blocks)."""
    tree = ast.parse(path.read_text())
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for n in ast.walk(node) if isinstance(node, (ast.Import, ast.ImportFrom, ast.If, ast.Try)) else []:
            if isinstance(n, ast.ImportFrom):
                base = package
                for _ in range(n.level - 1):
                    base = base.rsplit(".", 1)[0]
                target = (f"{base}.{n.module}" if n.module else base) if n.level else (n.module or "")
                names = [f"{target}.{a.name}" for a in n.names]
                out |= {t for t in [target, *names] if t.startswith("gankit")}
            elif isinstance(n, ast.Import):
                out |= {a.name for a in n.names if a.name.startswith("gankit")}
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in ROOT.rglob("*.py")}
    return {m: {t for t in _imports(p) if t in files and t != m} for m, p in files.items()}


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    # a package importing its own submodules to register them is not a circle
    cycles = [c for c in cycles if not all(x.startswith(c[0]) or c[0].startswith(x) for x in c)]
    assert not cycles, cycles[:3]


def test_building_blocks_never_import_the_layers_above():
    graph = _graph()
    above = ("gankit.training", "gankit.api", "gankit.cli", "gankit.studio", "gankit.studies", "gankit.bench")
    for m, targets in graph.items():
        if m.startswith(("gankit.metrics", "gankit.data", "gankit.nets", "gankit.families", "gankit.losses",
                         "gankit.regularizers", "gankit.config", "gankit.checkpoint")):
            bad = [t for t in targets if t.startswith(above)]
            assert not bad, (m, bad)
