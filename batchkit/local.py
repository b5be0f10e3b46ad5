"""Run batchkit on its local simulator instead of Anthropic's API: one call in a notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .backends.clients import set_default_client
from .errors import ConfigurationError, warn
from .stores.store import default_store_dir

__all__ = ["default_state_path", "start_simulator"]

_running: list[Any] = []
_DEFAULT: Any = object()


def default_state_path() -> Path:
    """Where :func:`start_simulator` keeps the simulator's batches unless told otherwise:
    ``simulator-api.sqlite3`` beside the default job store (the folder of ``BATCHKIT_STORE`` if
    set, else ``$XDG_DATA_HOME/batchkit`` or ``~/.local/share/batchkit``; see
    :func:`batchkit.engine.locations.default_store_path`)."""
    return default_store_dir() / "simulator-api.sqlite3"


def start_simulator(*, port: int = 0, responder: Any = None, state: str | Path | None = _DEFAULT, **config: Any) -> Any:
    """Serve batchkit's simulator of the Anthropic API on 127.0.0.1 and use it by default.

    Every later call that passes no ``client=`` talks to it. The server runs in a background
    thread of this process until the process ends (or ``.stop()``); it has a ``base_url``
    for other clients and ``.simulator`` for its stats, clock and faults. To use a real API
    key instead, skip this call and set ``ANTHROPIC_API_KEY``.

    Its batches are written to a state file, so a kernel killed while they run can call this
    again and its jobs carry on with the same batches (nothing is sent twice).

    Args:
        port: the port to listen on (0 picks a free one).
        responder: a function ``params -> str | dict`` that writes the answers.
        state: the state file; by default :func:`default_state_path` — or, when another
            simulator is running on that file, none (with a warning). ``None``: keep batches
            in memory only. A path: that file (``ConfigurationError`` if another simulator is
            running on it).
        **config: :class:`batchkit.simulator.SimConfig` fields, e.g. ``time_scale=60``.

    Raises:
        ConfigurationError: ``state`` names a file another simulator is running on, or one that
            is not a simulator state file.

    >>> sim = batchkit.start_simulator()      # doctest: +SKIP
    >>> sim.base_url                           # doctest: +SKIP
    'http://127.0.0.1:50123'
    """
    from .simulator import SimConfig, Simulator, StateConfigError, StateError, StateLockedError, serve

    sim_config = SimConfig(**config)
    path = default_state_path() if state is _DEFAULT else state
    try:
        simulator = Simulator(config=sim_config, responder=responder, state=path)
    except (StateLockedError, StateConfigError) as exc:
        if state is not _DEFAULT:
            raise ConfigurationError(f"{exc} (state=None keeps batches in memory only)") from None
        why = (
            "another simulator is running on it"
            if isinstance(exc, StateLockedError)
            else "its batches were answered under another configuration (seed, faults, processing or responder)"
        )
        warn(
            f"the simulator's state file {path} is not used: {why}. This simulator keeps its batches in memory "
            "only (they end with this process); pass state=PATH for a file of its own"
        )
        simulator = Simulator(config=sim_config, responder=responder)
    except StateError as exc:
        raise ConfigurationError(f"{exc} (state=None keeps batches in memory only)") from None
    try:
        context = serve(simulator, port=port)
    except BaseException:
        simulator.close()
        raise
    server = context.__enter__()
    server.simulator = simulator

    client = server.client()

    def stop() -> None:
        set_default_client(None)
        client.close()
        context.__exit__(None, None, None)
        simulator.close()
        if server in _running:
            _running.remove(server)

    server.stop = stop
    _running.append(server)
    set_default_client(client)
    return server
