"""The shape of the house, read from the source with `ast`: layers, circles, sizes.

Imports run from the floor up. A module may import its own layer and the layers below it; an
import that reaches up is allowed only where listed in UPWARD_ALLOWED (at most two), and no two
modules may import each other, even lazily inside a function. `python -m tests.test_architecture`
prints the figures.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "yishitang"

# Layers, lowest first: the first part of a module's name under `yishitang` decides its layer
# ("" is `yishitang/__init__.py`, the app factory). Names not written yet hold the place of the
# features to come, so a new feature knows where it goes.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation",      ("config", "errors", "failpoints")),
    ("database",        ("db",)),
    ("shared",          ("auth", "api", "fields", "jsonbody", "wechat", "ratelimit", "idempotency", "announce", "clock",
                         "pagination")),
    ("regions",         ("regions",)),
    ("studios",         ("studios",)),
    ("users",           ("users",)),
    ("files",           ("files",)),
    ("notifications",   ("notifications",)),
    ("units",           ("units",)),                       # responsible units (to come)
    ("hand-over",       ("assignments", "supervisions")),  # 交办 / 督办 engines (to come)
    ("issues",          ("issues",)),
    ("consultations",   ("consultations",)),
    ("proposals",       ("proposals", "social_reports")),  # to come
    ("duty",            ("duty",)),                        # duty records (to come)
    ("stats",           ("stats",)),
    ("reports",         ("reports",)),                     # to come
    ("open311",         ("open311",)),
    ("client",          ("meta", "feed", "wechatpush")),  # what the mini-program needs across features
    ("app",             ("personal_data", "ops", "metrics", "scheduler", "cli", "")),
    ("devtools",        ("devtools",)),
]
LAYER_OF = {name: rank for rank, (_, names) in enumerate(LAYERS) for name in names}

# Imports that reach up a layer on purpose, each with its reason (at most two).
UPWARD_ALLOWED: dict[tuple[str, str], str] = {
    ("yishitang.studios.routes", "yishitang.users.service"):
        "a studio's members are users: the studio routes list and assign them through the users service",
    ("yishitang.cli", "yishitang.devtools"):
        "`serve` in demo mode and the seed commands use the development tools, through the package's front",
}
MAX_UPWARD = 2
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = ["yishitang", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, tuple[Path, ast.Module]]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        found[module_name(path)] = (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found


def imports(name: str, path: Path, tree: ast.Module, known) -> set[str]:
    """Our modules `name` imports, anywhere in it (lazy imports inside functions count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in known and target != name}
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, tree, found) for name, (path, tree) in found.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYER_OF[parts[1] if len(parts) > 1 else ""]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or round a circle (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((src, dst) for src, targets in edges.items() for dst in targets if layer(dst) > layer(src))


def long_modules() -> list[tuple[str, int]]:
    found = []
    for name, (path, _tree) in modules().items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            found.append((name, lines))
    return found


def long_functions() -> list[tuple[str, int]]:
    found = []
    for name, (_path, tree) in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append((f"{name}.{node.name}", lines))
    return found


def reachable(edges, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for other in edges.get(node, ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


def test_every_module_has_a_layer():
    unplaced = [name for name in modules() if (name.split(".") + [""])[1] not in LAYER_OF]
    assert unplaced == [], "add these to LAYERS"


def test_no_import_circles():
    assert cycles(graph()) == []


def test_imports_run_from_the_floor_up():
    found = upward(graph())
    assert [pair for pair in found if pair not in UPWARD_ALLOWED] == []
    assert len(found) <= MAX_UPWARD


def test_no_module_over_400_lines():
    assert long_modules() == []


def test_no_function_over_60_lines():
    assert long_functions() == []


def test_create_app_never_imports_devtools():
    devtools = [name for name in reachable(graph(), "yishitang") if layer(name) == LAYER_OF["devtools"]]
    assert devtools == []


if __name__ == "__main__":
    edges = graph()
    for title, rows in (("import circles", cycles(edges)), ("upward imports", upward(edges)),
                        ("modules over 400 lines", long_modules()),
                        ("functions over 60 lines", long_functions())):
        print(f"{title}: {len(rows)}")
        for row in rows:
            print("   ", row)
