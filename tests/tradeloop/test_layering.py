"""The layout shows the dependency direction; these rules keep it that way.

Read from the source (every ``import``/``from`` statement, at any depth, including those
under ``TYPE_CHECKING``), so a lazy import inside a function counts too.

- ``src/tradeloop`` never imports ``adapters`` (adapters use what tradeloop exports);
- the pure core (``data/``, ``events``, ``broker/``, ``risk/``, ``strategy/``) imports none of
  asyncio, aiohttp, websockets, sqlite3;
- ``data/`` (history) imports nothing from the stream, runtime or service packages;
- ``runtime/`` (the loops) imports nothing from the service package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tradeloop"
IO_MODULES = ("asyncio", "aiohttp", "websockets", "sqlite3")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules_under(*parts: str) -> list[Path]:
    target = SRC.joinpath(*parts)
    return sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]


def violations(paths: list[Path], forbidden: tuple[str, ...], root: Path = SRC) -> list[str]:
    found = []
    for path in paths:
        for name in sorted(imported_modules(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(root)} imports {name}")
    return found


def test_layering_src_never_imports_adapters() -> None:
    assert violations(modules_under(), ("adapters",)) == []


@pytest.mark.parametrize("part", ["data", "events", "broker", "risk", "strategy"])
def test_layering_pure_core_imports_no_io_library(part: str) -> None:
    assert violations(modules_under(part), IO_MODULES) == []


def test_layering_history_data_imports_no_stream_runtime_or_service() -> None:
    forbidden = ("tradeloop.stream", "tradeloop.runtime", "tradeloop.service")
    assert violations(modules_under("data"), forbidden) == []


def test_layering_runtime_loops_import_nothing_from_the_service() -> None:
    assert violations(modules_under("runtime"), ("tradeloop.service",)) == []


def test_layering_checker_sees_a_lazy_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import asyncio\n    from tradeloop.service import daemon\n")
    assert violations([module], ("asyncio", "tradeloop.service"), tmp_path) == [
        "m.py imports asyncio",
        "m.py imports tradeloop.service",
    ]


def runtime_imports(path: Path) -> set[str]:
    """Modules ``path`` imports when it runs, at import time or lazily inside a function (a
    lazy import only hides a cycle); imports under ``if TYPE_CHECKING:`` are left out."""
    names: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_graph() -> dict[str, set[str]]:
    """tradeloop module -> the tradeloop modules (not packages) it imports."""
    modules = {
        ".".join(("tradeloop", *path.relative_to(SRC).with_suffix("").parts)): path
        for path in SRC.rglob("*.py")
        if path.name != "__init__.py"
    }
    return {
        name: {m for m in runtime_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_layering_no_import_cycle_between_modules() -> None:
    assert cycles(module_graph()) == []


def test_layering_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
