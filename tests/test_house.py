"""The rules of the house (docs/architecture.md), read from every module's imports.

The imports are read with :mod:`ast` (nothing is imported), including imports inside
functions; only ``if TYPE_CHECKING:`` blocks are left out, since they never run.

* ``devices`` imports nothing from ``emu``: devices are pure.
* ``emu.pc`` (the board) imports nothing from the firmware, the API or the tools.
* ``emu.firmware`` imports nothing from the tools, the API, the media (``devices.media``)
  or the IDE internals (``devices.ide``): firmware reaches the drive only through ports
  and memory.
* ``emu.api`` imports nothing from the tools.
* No import circle between packages (a package's own modules may import each other).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("devices", "emu", "images")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path) -> set[str]:
    """Absolute names of the project modules ``path`` imports."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(
        ".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def all_modules() -> dict[str, set[str]]:
    modules = {}
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            modules[module_name(path)] = imports_of(path)
    return modules


MODULES = all_modules()


def existing(name: str) -> str | None:
    """The project module a dotted import name refers to (``a.b.C`` → ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def package_of(module: str) -> str:
    """The unit the circle rule is about: ``emu.pc``, ``devices.ide``, ``emu`` (top), ..."""
    parts = module.split(".")
    if len(parts) >= 2 and f"{parts[0]}.{parts[1]}" in MODULES and (
            ROOT / parts[0] / parts[1] / "__init__.py").exists():
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def offenders(source_prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for module, names in MODULES.items():
        if module != source_prefix and not module.startswith(source_prefix + "."):
            continue
        for name in names:
            target = existing(name)
            if target and any(target == f or target.startswith(f + ".") for f in forbidden):
                bad.append(f"{module} imports {target}")
    return sorted(bad)


def test_the_reader_sees_the_project():
    assert "emu.pc.board" in MODULES and "devices.ide.controller" in MODULES
    assert "emu.pc.cpu" in MODULES["emu.pc.board"]


def test_devices_never_import_emu():
    assert offenders("devices", ("emu",)) == []


def test_the_board_never_imports_firmware_api_or_tools():
    assert offenders("emu.pc", ("emu.firmware", "emu.api", "emu.tools", "emu.boot")) == []


def test_firmware_reaches_the_drive_only_through_ports_and_memory():
    assert offenders("emu.firmware", ("emu.tools", "emu.api", "emu.boot", "devices.media",
                                      "devices.ide", "devices.atapi", "devices.scsi")) == []


def test_the_api_never_imports_the_tools():
    assert offenders("emu.api", ("emu.tools",)) == []


def test_no_import_circle_between_packages():
    graph: dict[str, set[str]] = {}
    for module, names in MODULES.items():
        src = package_of(module)
        for name in names:
            target = existing(name)
            if target is not None and package_of(target) != src:
                graph.setdefault(src, set()).add(package_of(target))
    # Depth-first search for a back edge.
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, " → ".join(cycle)
