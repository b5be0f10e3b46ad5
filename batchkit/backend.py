"""Which ``anthropic`` SDK client a call uses, and how often to poll the server behind it.

The calls that send requests are the backends' (:mod:`batchkit.backends`); this module only
resolves the client they are given.

Which client a call uses, first that is set wins:

=========================================  ==============================================
``client=`` argument                       an ``anthropic.Anthropic`` you built
:func:`batchkit.set_default_client`        e.g. set by :func:`batchkit.start_simulator`
``ANTHROPIC_API_KEY`` (or auth token)      ``anthropic.Anthropic()`` reads the environment,
                                           including ``ANTHROPIC_BASE_URL``
=========================================  ==============================================
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urlsplit

import anthropic

from .errors import NoCredentialsError

__all__ = ["get_default_client", "resolve_client", "set_default_client"]

_default_client: anthropic.Anthropic | None = None
_default_lock = threading.Lock()

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "sim.local"})

REAL_API_POLL_SCHEDULE = (30.0, 60.0, 120.0, 300.0, 600.0)
"""Seconds between polls of the real API: most batches take minutes to an hour."""

LOCAL_POLL_SCHEDULE = (0.1, 0.2, 0.5, 1.0)
"""Seconds between polls of a local simulator, whose batches end in seconds."""


def set_default_client(client: anthropic.Anthropic | None) -> None:
    """Use ``client`` for every call that passes no ``client=`` (None restores the default)."""
    global _default_client
    with _default_lock:
        _default_client = client


def get_default_client() -> anthropic.Anthropic | None:
    """The client set by :func:`set_default_client`, if any."""
    return _default_client


def resolve_client(client: anthropic.Anthropic | None = None) -> anthropic.Anthropic:
    """The SDK client a call should use.

    Raises:
        NoCredentialsError: no client given, none set, and no key in the environment.
    """
    if client is not None:
        if not isinstance(client, anthropic.Anthropic):
            raise TypeError(
                f"client must be an anthropic.Anthropic (the sync client), not {type(client).__name__}"
            )
        return client
    if _default_client is not None:
        return _default_client
    if os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        return anthropic.Anthropic()
    raise NoCredentialsError(
        "No Anthropic API key is configured and no simulator is running. Either set "
        "ANTHROPIC_API_KEY=sk-ant-... to use the real API, or run on batchkit's local simulator: "
        "call batchkit.start_simulator() in this process, or run `batchkit sim --port 8765` in a "
        "terminal and set ANTHROPIC_BASE_URL=http://127.0.0.1:8765 and ANTHROPIC_API_KEY=sk-sim."
    )


def is_local(client: anthropic.Anthropic) -> bool:
    """Whether ``client`` talks to a simulator on this machine rather than to Anthropic."""
    return (urlsplit(str(client.base_url)).hostname or "") in LOCAL_HOSTS


def poll_schedule(client: anthropic.Anthropic, poll_interval: float | None) -> tuple[float, ...]:
    """Intervals between polls: fixed if the caller set one, else a backoff fit for the server."""
    if poll_interval is not None:
        return (float(poll_interval),)
    return LOCAL_POLL_SCHEDULE if is_local(client) else REAL_API_POLL_SCHEDULE
