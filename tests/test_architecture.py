"""The package's shape, checked: layers import only downward, no import cycles, no private names
across modules, and modules and functions small enough to read (docs/architecture.md)."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "dlcli"
# Bottom to top; a module may import from its own layer and the layers below.
LAYERS = ["dlcli", "dlcli.errors", "dlcli.layout", "dlcli.config", "dlcli.components", "dlcli.engine",
          "dlcli.sweep", "dlcli.analysis", "dlcli.report", "dlcli.export", "dlcli.cli", "dlcli.__main__"]
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50  # Typer command signatures (one option per line) are exempt


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every import in the file, at module level or inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
    return found


def dlcli_targets(module: str, names: list[str]) -> list[str]:
    """The dlcli modules an import statement loads: `from dlcli.components import losses` loads
    dlcli.components.losses."""
    if module.split(".")[0] != "dlcli":
        return []
    submodules = [f"{module}.{name}" for name in names if f"{module}.{name}" in MODULES]
    return submodules or [module]


def layer_of(module: str) -> int:
    return max(index for index, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + "."))


def graph() -> dict[str, set[str]]:
    return {name: {target for module, names, _ in imports(path) for target in dlcli_targets(module, names)
                   if target != name}
            for name, path in MODULES.items()}


def test_layers_import_only_downward():
    upward = [f"{name} (layer {LAYERS[layer_of(name)]}) imports {target}"
              for name, targets in graph().items() for target in targets if layer_of(target) > layer_of(name)]
    assert not upward, "\n".join(upward)


def cycles_in(edges: dict[str, set[str]]) -> list[str]:
    state, cycles = {}, []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(edges.get(name, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    return cycles


def test_no_import_cycles():
    cycles = cycles_in(graph())
    assert not cycles, "\n".join(cycles)


def test_the_check_sees_a_cycle_and_an_upward_import():
    assert cycles_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a -> b -> c -> a"]
    assert cycles_in({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
    assert dlcli_targets("dlcli.components", ["losses"]) == ["dlcli.components.losses"]
    assert layer_of("dlcli.engine.loop") > layer_of("dlcli.components.losses") > layer_of("dlcli.config.schema")
    assert "dlcli.engine.loop" in graph()["dlcli.sweep.backends"]


def test_no_private_name_is_imported_across_modules():
    private = [f"{name}:{line} imports {module}.{imported}" for name, path in MODULES.items()
               for module, names, line in imports(path) if module.startswith("dlcli")
               for imported in names if imported.startswith("_")]
    assert not private, "\n".join(private)


def test_tests_call_no_private_name_of_the_package():
    private = [f"{path.relative_to(REPO)}:{line} imports {module}.{imported}"
               for path in sorted((REPO / "tests").rglob("*.py")) for module, names, line in imports(path)
               if module.startswith("dlcli") for imported in names if imported.startswith("_")]
    assert not private, "\n".join(private)


def test_modules_are_short():
    long = {name: lines for name, path in MODULES.items()
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, long


def test_functions_are_short():
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not is_command(node):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert not long, "\n".join(long)


def is_command(function: ast.FunctionDef) -> bool:
    """A Typer command: its signature lists every option, one per line."""
    return any(isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "command"
               for decorator in function.decorator_list)


def test_tests_mirror_the_package_layout():
    packages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    folders = {path.name for path in (REPO / "tests").iterdir() if path.is_dir() and not path.name.startswith((".", "_"))}
    assert folders - {"lecture"} <= packages, folders - packages  # lecture/: the lecture's claims, end to end
