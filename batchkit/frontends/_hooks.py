"""Run a callback once a module is imported — now if it already is, else right after its import.

``import batchkit`` must not import Polars (or Dask) for a pandas user, yet ``df.claude`` must work
on a Polars frame whichever of the two was imported first. :func:`when_imported` registers the
front end at once when the library is already in ``sys.modules``; otherwise a finder on
``sys.meta_path`` wraps the library's loader so the front end registers the moment the library has
finished executing, then removes itself. Nothing else about the import changes: the library's own
spec and loader are put back before its code runs.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
import warnings
from collections.abc import Sequence

from batchkit.errors import BatchkitWarning

__all__ = ["when_imported"]

_lock = threading.RLock()
_pending: dict[str, list[str]] = {}
"""Library name → modules to import once it is imported (each registers its front end)."""


def when_imported(library: str, frontend: str) -> None:
    """Import ``frontend`` (a module that registers itself) once ``library`` is imported.

    Args:
        library: a top-level module name, e.g. ``"polars"``.
        frontend: the module to import then, e.g. ``"batchkit.frontends.polars"``.
    """
    with _lock:
        if library not in sys.modules:
            _pending.setdefault(library, []).append(frontend)
            if _FINDER not in sys.meta_path:
                sys.meta_path.insert(0, _FINDER)
            return
    importlib.import_module(frontend)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds a watched library through the other finders and wraps its loader."""

    def __init__(self) -> None:
        self._finding: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _pending or fullname in self._finding:
            return None
        self._finding.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, fullname)
        return spec


class _Loader(importlib.abc.Loader):
    """The library's own loader; after it has executed the module, the front ends are imported."""

    def __init__(self, loader: importlib.abc.Loader, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        if module.__spec__ is not None:  # the library sees its own loader, as without the hook
            module.__spec__.loader = self._loader
        module.__loader__ = self._loader
        self._loader.exec_module(module)
        with _lock:
            frontends = _pending.pop(self._name, [])
            if not _pending and _FINDER in sys.meta_path:
                sys.meta_path.remove(_FINDER)
        for frontend in frontends:
            try:
                importlib.import_module(frontend)
            except Exception as exc:  # a front end that cannot load must not break the library's import
                warnings.warn(
                    f"batchkit could not register its {self._name} front end ({type(exc).__name__}: {exc}); "
                    f"{self._name} works as before, without .claude. Upgrading batchkit and {self._name} "
                    f"usually fixes it.",
                    BatchkitWarning,
                    stacklevel=2,
                )


_FINDER = _Finder()
