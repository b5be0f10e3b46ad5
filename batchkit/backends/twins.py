"""The async client a realtime sender uses for a sync ``anthropic.Anthropic``: its *twin*.

The realtime sender (:mod:`.sender`) calls ``POST /v1/messages`` through ``AsyncAnthropic`` on a
private event loop, while the caller hands batchkit a sync client. The twin talks where the sync
client talks, as it does. Which one (first that applies): one registered for the sync client
with :func:`register_async_twin` (a custom transport, a credentials provider); for a client of
the in-process simulator (``Simulator.client()``), the simulator's own
:meth:`~batchkit.simulator.Simulator.async_client` on the same WSGI app; otherwise one built from
the sync client's public settings: key, token, base URL, the headers it was given and timeout.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Union

import anthropic

from .identity import wired_simulator

__all__ = ["AsyncClientSource", "async_twin", "custom_headers", "register_async_twin"]

AsyncClientSource = Union[anthropic.AsyncAnthropic, Callable[[], anthropic.AsyncAnthropic]]  # noqa: UP007
"""An async client, or a function making one (called on the sender's own loop)."""

_twins: weakref.WeakKeyDictionary[anthropic.Anthropic, Callable[[], anthropic.AsyncAnthropic]] = (
    weakref.WeakKeyDictionary()
)

_SDK_HEADERS = frozenset({"accept", "content-type", "user-agent", "x-api-key", "authorization"})
"""Headers the SDK sets itself on every client (the async twin sets its own)."""


def register_async_twin(client: anthropic.Anthropic, factory: Callable[[], anthropic.AsyncAnthropic]) -> None:
    """Make ``factory()`` the async client the sender uses for the sync ``client``.

    For a sync client the sender cannot rebuild from its settings alone (a custom transport,
    a credentials provider). The factory is called on the sender's private loop, once per run.
    """
    _twins[client] = factory


def custom_headers(client: anthropic.Anthropic) -> dict[str, str]:
    """The headers ``client`` was given (``default_headers=``), read from its public
    ``default_headers`` without those the SDK sets itself (auth, user agent, platform)."""
    headers: Mapping[str, object] = client.default_headers
    return {
        name: value
        for name, value in headers.items()
        if isinstance(value, str) and name.lower() not in _SDK_HEADERS and not name.lower().startswith("x-stainless-")
    }


def async_twin(client: anthropic.Anthropic) -> Callable[[], anthropic.AsyncAnthropic]:
    """A factory of ``AsyncAnthropic`` clients that talk where ``client`` talks, as it does."""
    registered = _twins.get(client)
    if registered is not None:
        return registered
    headers = custom_headers(client)
    simulator = wired_simulator(client)
    if simulator is not None:  # the in-process simulator: its own async wiring to the same app
        sim = simulator

        def in_process() -> anthropic.AsyncAnthropic:
            return sim.async_client(
                api_key=client.api_key,
                auth_token=client.auth_token,
                base_url=client.base_url,
                default_headers=headers,
                timeout=client.timeout,
                max_retries=0,
            )

        return in_process

    def over_http() -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=client.api_key,
            auth_token=client.auth_token,
            base_url=client.base_url,
            default_headers=headers,
            timeout=client.timeout,
            max_retries=0,
        )

    return over_http
