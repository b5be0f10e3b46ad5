"""The one place a backend is chosen: :func:`backend_for` a mode."""

from __future__ import annotations

from typing import Any

from . import Backend

__all__ = ["MODES", "backend_for"]

MODES = ("batch", "realtime")
"""The ways a unit can be sent; each stored answer records the one it was paid at."""


def backend_for(mode: str, client: Any, *, betas_for: Any = None) -> Backend:
    """The backend that sends units of ``mode`` (the one place a backend is chosen).

    ``betas_for(body)`` names the betas a batch body needs (e.g. the 300K-output beta).

    >>> backend_for("realtime", client).mode          # doctest: +SKIP
    'realtime'
    """
    if mode == "realtime":
        from .realtime import Realtime

        return Realtime(client)
    if mode == "batch":
        from .batches import MessageBatches

        return MessageBatches(client, betas_for=betas_for)
    raise ValueError(f"no backend for mode {mode!r}; modes are {', '.join(MODES)}")
