"""Run batchkit on its local simulator instead of Anthropic's API: one call in a notebook."""

from __future__ import annotations

from typing import Any

from .backend import set_default_client

__all__ = ["start_simulator"]

_running: list[Any] = []


def start_simulator(*, port: int = 0, responder: Any = None, **config: Any) -> Any:
    """Serve batchkit's simulator of the Anthropic API on 127.0.0.1 and use it by default.

    Every later call that passes no ``client=`` talks to it. The server runs in a background
    thread of this process until the process ends (or ``.stop()``); it has a ``base_url``
    for other clients and ``.simulator`` for its stats, clock and faults. To use a real API
    key instead, skip this call and set ``ANTHROPIC_API_KEY``.

    Args:
        port: the port to listen on (0 picks a free one).
        responder: a function ``params -> str | dict`` that writes the answers.
        **config: :class:`batchkit.simulator.SimConfig` fields, e.g. ``time_scale=60``.

    >>> sim = batchkit.start_simulator()      # doctest: +SKIP
    >>> sim.base_url                           # doctest: +SKIP
    'http://127.0.0.1:50123'
    """
    from .simulator import SimConfig, Simulator, serve

    simulator = Simulator(config=SimConfig(**config), responder=responder)
    context = serve(simulator, port=port)
    server = context.__enter__()
    server.simulator = simulator

    client = server.client()

    def stop() -> None:
        set_default_client(None)
        client.close()
        context.__exit__(None, None, None)
        if server in _running:
            _running.remove(server)

    server.stop = stop
    _running.append(server)
    set_default_client(client)
    return server
