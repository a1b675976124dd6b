"""The shape of the code: one-way layers, no cycles, measurement code kept out of the product,
no cross-module use of private names, each third-party library behind its one adapter."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, is_loopback_address

PACKAGES = ("index", "qa", "ui")
FORBIDDEN = {"index": {"qa", "ui"}, "qa": {"ui"}, "ui": set()}
#: Measurement code: never imported by the product (the CLI imports it inside its commands).
MEASUREMENT = "qa.eval"
#: Third-party library -> the product modules allowed to import it (its adapter).
ADAPTERS = {
    "chromadb": {"index.store"},
    "bm25s": set(),  # the keyword index's reference in tests only (index.keyword scores alike)
    "sqlite3": {"index.keyword", "index.manifest"},
    "sentence_transformers": {"index.embedding"},
    "transformers": {"qa.local_llm", "qa.reader"},
    "peft": {"qa.reader"},
    "gradio": {"ui.app"},
}


@dataclass(frozen=True)
class Import:
    """One import statement: the module it names, the names taken, where it sits."""

    module: str
    names: tuple[str, ...]
    in_function: bool
    type_only: bool


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the three packages, by dotted name."""
    return {module_name(path, root): path for package in PACKAGES
            for path in sorted((root / package).rglob("*.py"))}


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(path: Path, current: str) -> Iterator[Import]:
    """The imports of one file, marking function-local and TYPE_CHECKING-only ones."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(alias.name, (), in_function, type_only)
            elif isinstance(child, ast.ImportFrom):
                yield Import(_resolve(child, current, is_package),
                             tuple(a.name for a in child.names), in_function, type_only)
            else:
                function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                guard = (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
                yield from visit(child, in_function or function, type_only or guard)

    yield from visit(tree, False, False)


def _project_target(imp: Import, modules: dict[str, Path]) -> list[str]:
    """Project modules an import depends on (`from pkg import mod` names the module)."""
    targets = []
    for name in imp.names:
        if f"{imp.module}.{name}" in modules:
            targets.append(f"{imp.module}.{name}")
    if imp.module in modules and len(targets) < max(1, len(imp.names)):
        targets.append(imp.module)
    return targets


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere (functions included, types not)."""
    modules = product_modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imp in imports(path, name):
            if not imp.type_only:
                graph[name].update(t for t in _project_target(imp, modules) if t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a list of modules ([] when there is none)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (cycle := walk(start)):
            return cycle
    return []


def _is_package_init_edge(a: str, b: str) -> bool:
    """A package's lazy __init__ naming its own submodules is not a dependency cycle."""
    return b.startswith(a + ".") or a.startswith(b + ".")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_layering(package: str) -> None:
    offenders = {}
    for name, path in product_modules().items():
        if name.split(".")[0] != package:
            continue
        bad = {imp.module.split(".")[0] for imp in imports(path, name)} & FORBIDDEN[package]
        if bad:
            offenders[name] = sorted(bad)
    assert offenders == {}


def test_no_import_cycles() -> None:
    graph = import_graph()
    graph = {a: {b for b in deps if not _is_package_init_edge(a, b)} for a, deps in graph.items()}
    assert find_cycle(graph) == []


def test_product_never_imports_measurement_code() -> None:
    offenders = []
    for name, path in product_modules().items():
        if name == MEASUREMENT or name.startswith(MEASUREMENT + "."):
            continue
        for imp in imports(path, name):
            targets = {imp.module, *(f"{imp.module}.{n}" for n in imp.names)}
            if not any(t == MEASUREMENT or t.startswith(MEASUREMENT + ".") for t in targets):
                continue
            if name == "ui.cli" and imp.in_function:
                continue  # the eval / bench / train commands, inside the command
            offenders.append(name)
    assert offenders == []


def test_no_module_imports_another_modules_private_names() -> None:
    modules = product_modules()
    offenders = []
    for name, path in modules.items():
        for imp in imports(path, name):
            if imp.module.split(".")[0] not in (*PACKAGES, "tests") or imp.module == name:
                continue
            private = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
            if private:
                offenders.append(f"{name}: from {imp.module} import {', '.join(private)}")
    assert offenders == []


@pytest.mark.parametrize("library", sorted(ADAPTERS))
def test_third_party_library_sits_behind_its_adapter(library: str) -> None:
    users = set()
    for name, path in product_modules().items():
        if name == MEASUREMENT or name.startswith(MEASUREMENT + "."):
            continue  # peers measured against (the textbook recipe) use libraries directly
        if any(imp.module.split(".")[0] == library for imp in imports(path, name)):
            users.add(name)
    assert users <= ADAPTERS[library], f"{library} used outside its adapter: {users}"


def test_checks_detect_violations(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "index" / "a.py").write_text("from qa.b import thing\nimport index.c\n")
    (tmp_path / "qa" / "b.py").write_text("def f():\n    from index.a import _hidden\n")
    (tmp_path / "index" / "c.py").write_text("")
    graph = import_graph(tmp_path)
    assert graph["index.a"] == {"qa.b", "index.c"}
    assert find_cycle(graph) == ["index.a", "qa.b", "index.a"]
    found = list(imports(tmp_path / "qa" / "b.py", "qa.b"))
    assert found == [Import("index.a", ("_hidden",), True, False)]


def test_network_guard_allows_only_loopback() -> None:
    assert is_loopback_address(("127.0.0.1", 80))
    assert is_loopback_address(("::1", 80, 0, 0))
    assert is_loopback_address(("localhost", 7860))
    assert is_loopback_address("/tmp/socket")
    assert not is_loopback_address(("192.0.2.1", 443))
    assert not is_loopback_address(("huggingface.co", 443))
