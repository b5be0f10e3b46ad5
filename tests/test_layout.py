"""The package's import boundaries, read from the source (every import, lazy ones too).

- nothing in ``batchkit/backends`` imports pandas, the store or the engine: a backend moves
  bytes and reports states;
- the simulator imports nothing from the client side (it is served on its own);
- pure modules (render, keys, results, prices, costs, schemas) import neither the store nor
  the network;
- SDK exceptions are caught in one place, ``batchkit/backends``;
- front ends (``batchkit/frontends``) import the core; nothing in the core imports a front end
  (only the top ``batchkit/__init__`` does, to register them).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import batchkit

PKG = Path(batchkit.__file__).resolve().parent
ROOT = PKG.parent

PURE = (
    "batchkit.core._json",
    "batchkit.core.columns",
    "batchkit.core.requests",
    "batchkit.core.results",
    "batchkit.costs.prices",
    "batchkit.costs.pricing",
    "batchkit.core.structured",
    "batchkit.core.media",
)
NETWORK = ("anthropic", "httpx", "httpx2", "socket", "urllib.request", "batchkit.backends.clients", "batchkit.backends")
STORE = ("sqlite3", "batchkit.stores.store")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def direct_imports(module: str) -> frozenset[str]:
    """Every module ``module`` imports at run time (``if TYPE_CHECKING:`` blocks left out)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return frozenset(names)


def closure(module: str, *, stop: str | None = None) -> set[str]:
    """What importing ``module`` brings in, following batchkit's own modules (and the sub-package
    ``__init__`` each lives in; the top ``batchkit/__init__`` registers everything by design) —
    but not into ``stop`` (a package) when given."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if stop is not None and (name == stop or name.startswith(stop + ".")):
            continue
        if name in MODULES and name != "batchkit":  # `from . import x` names the package, not its __init__
            todo.extend(direct_imports(name))
            parent = name.rpartition(".")[0]
            if parent != "batchkit" and parent in MODULES:
                todo.append(parent)
    return seen


def _hits(names: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == b or n.startswith(b + ".") for b in banned))


def test_the_check_sees_imports_through_other_modules():
    assert {"pandas", "batchkit.stores.store", "batchkit.backends.batches"} <= closure("batchkit.engine.jobs")
    assert "anthropic" in closure("batchkit.backends")  # through .errors, the SDK-error map


def test_backends_import_neither_pandas_nor_the_store_nor_the_engine():
    backends = [m for m in MODULES if m.startswith("batchkit.backends")]
    assert "batchkit.backends.batches" in backends and "batchkit.backends.errors" in backends
    for module in backends:
        # not followed into the simulator, whose in-process transport the realtime backend borrows:
        # it is a program of its own, and its sqlite3 is its own state file, not the job store
        reached = closure(module, stop="batchkit.simulator")
        assert not _hits(reached, ("pandas", *STORE, "batchkit.engine.jobs", "batchkit.engine.outcomes")), module
        assert not _hits(
            closure(module), ("pandas", "batchkit.stores.store", "batchkit.engine.jobs", "batchkit.engine.outcomes")
        ), module


def test_the_backend_interface_does_not_import_any_implementation():
    assert not _hits(
        set(direct_imports("batchkit.backends")),
        ("batchkit.backends.batches", "batchkit.backends.realtime", "batchkit.backends.ratelimit"),
    )


def test_the_simulator_imports_nothing_from_the_client_side():
    for module in (m for m in MODULES if m.startswith("batchkit.simulator")):
        outside = [
            n
            for n in direct_imports(module)
            if n.split(".")[0] == "batchkit" and not n.startswith("batchkit.simulator")
        ]
        assert not outside, (module, outside)


def test_pure_modules_import_neither_the_store_nor_the_network():
    for module in PURE:
        assert module in MODULES
        assert not _hits(closure(module), (*STORE, *NETWORK)), module


def test_sdk_errors_are_caught_only_in_the_backends():
    pattern = re.compile(r"except\b[^:\n]*\banthropic\.")
    for module, path in MODULES.items():
        if module.startswith(("batchkit.backends", "batchkit.simulator")):
            continue
        assert not pattern.search(path.read_text()), f"{module} catches an SDK error: map it in backends/errors.py"


FRONTENDS = "batchkit.frontends"


def test_nothing_in_the_core_imports_a_front_end():
    core = [m for m in MODULES if m != "batchkit" and not m.startswith(FRONTENDS)]
    assert "batchkit.engine.calls" in core and "batchkit.engine.jobs" in core and "batchkit.engine.outcomes" in core
    for module in core:
        assert not _hits(closure(module), (FRONTENDS,)), f"{module} imports a front end"


def test_front_ends_are_adapters_over_the_core():
    frontends = [m for m in MODULES if m.startswith(FRONTENDS + ".")]
    assert "batchkit.frontends.pandas" in frontends
    for module in frontends:
        imported = direct_imports(module)
        assert "batchkit.engine.calls" in imported, f"{module} does not go through batchkit.engine.calls"
        others = [n for n in imported if n.startswith(FRONTENDS + ".") and n != module]
        assert not others, f"{module} imports another front end: {others}"
        assert not _hits(set(imported), ("sqlite3", "batchkit.stores.store", *NETWORK)), (
            f"{module} talks to the store or the network itself; go through the core"
        )
    assert not direct_imports(FRONTENDS), "batchkit/frontends/__init__.py imports nothing (each front end is optional)"
    assert {"batchkit.frontends", "batchkit.frontends.pandas"} & direct_imports("batchkit")
