"""The one place a backend is chosen: :func:`backend_for` a mode, from a table of factories.

Each way of sending is a module ``backends/<name>.py`` with a class that has every member of
:class:`~batchkit.backends.Backend`; this table says which one sends the units of each mode.
Adding a third backend is that module and one :func:`register_backend` line here (or, for a
test or a plug-in, one call from outside): the engine asks the table, never a class.

A factory is called as ``factory(client, **options)`` with the SDK client of the job and the
options the engine passes (today ``betas_for``, the betas of a batch unit planned before betas
were stored with units; a factory that has no use for an option ignores it).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from batchkit.core.states import SendMode

from . import Backend

__all__ = ["MODES", "BackendFactory", "backend_for", "register_backend", "registered_modes"]

MODES = (SendMode.BATCH, SendMode.REALTIME)
"""The ways a unit can be sent; each stored answer records the one it was paid at."""


class BackendFactory(Protocol):
    """Makes the backend of a mode for a client: ``factory(client, **options)``."""

    def __call__(self, client: Any, **options: Any) -> Backend: ...


def _batches(client: Any, *, betas_for: Any = None, **_: Any) -> Backend:
    from .batches import MessageBatches

    return MessageBatches(client, betas_for=betas_for)


def _realtime(client: Any, **_: Any) -> Backend:
    from .realtime import Realtime

    return Realtime(client)


_factories: dict[str, BackendFactory] = {SendMode.BATCH: _batches, SendMode.REALTIME: _realtime}
_lock = threading.Lock()


def register_backend(mode: str, factory: BackendFactory | None) -> BackendFactory | None:
    """Make ``factory`` the maker of the backend that sends units of ``mode``; the one it replaces.

    ``None`` removes ``mode``. A job already running keeps the backend it made; the next job (or
    a job given another client) uses the new one.

    >>> previous = register_backend("realtime", my_factory)   # doctest: +SKIP
    >>> register_backend("realtime", previous)                 # doctest: +SKIP
    """
    with _lock:
        old = _factories.get(str(mode))
        if factory is None:
            _factories.pop(str(mode), None)
        else:
            _factories[str(mode)] = factory
    return old


def registered_modes() -> tuple[str, ...]:
    """The modes some backend sends."""
    return tuple(_factories)


def backend_for(mode: str, client: Any, **options: Any) -> Backend:
    """The backend that sends units of ``mode`` (the one place a backend is chosen).

    ``options`` go to the mode's factory, e.g. ``betas_for(body)``: the betas of a batch unit
    planned without them (the 300K-output beta).

    >>> backend_for("realtime", client).mode          # doctest: +SKIP
    'realtime'
    """
    factory = _factories.get(str(mode))
    if factory is None:
        raise ValueError(f"no backend for mode {mode!r}; modes are {', '.join(registered_modes())}")
    return factory(client, **options)
