"""A local simulator of Anthropic's HTTP API (Message Batches, Messages, Models).

The official ``anthropic`` SDK talks to it unchanged — in process (no sockets), over HTTP
on loopback from a background thread, or in a separate process::

    from batchkit.simulator import Simulator, SimConfig, Processing, Faults, serve, spawn

    sim = Simulator(config=SimConfig(time_scale=60))
    client = sim.client()                     # anthropic.Anthropic, in process
    with serve(sim, port=0) as server:        # real HTTP on 127.0.0.1
        other = server.client()
    with spawn(port=0, processing=Processing.instant()) as proc:   # separate process
        third = proc.client()

or from a shell: ``python -m batchkit.simulator --port 8765`` and then
``ANTHROPIC_BASE_URL=http://127.0.0.1:8765 ANTHROPIC_API_KEY=anything``.

Modules, one concept each: ``_config`` (SimConfig, Processing, Faults), ``_clock`` (the fast
clock, ids), ``_params`` (validation and the token estimate), ``_responder`` (answers),
``_sentiment`` (the responder's Korean/English sentiment heuristic), ``_confidence`` (the
simulated confidence a schema's ``confidence`` property gets), ``_tools`` (when a tool
is called under ``tool_choice: auto``), ``_thinking`` (thinking blocks), ``_engine`` (lifecycle,
caching, stats), ``_plain`` (the short road of plain batch requests), ``_faults`` (fault
draws), ``_ratelimit`` (rate-limit buckets), ``_realtime`` (what ``/v1/messages`` does
around an answer), ``_sse`` (streamed answers as server-sent
events), ``_state`` (the state file: batches kept across a restart), ``_output`` (output
caps, the 300K beta), ``_app`` (the WSGI app), ``_catalogue`` (models), ``_http`` (the
HTTP/1.1 server on one event loop), ``_loop`` (that event loop: sockets and timers),
``_server`` (serve/spawn), ``__main__`` (the CLI).

Limits of fidelity: answers are simulated by a small heuristic, not Claude (no model runs; the
README's "Answers" says how often its sentiment labels match the shipped data's); token counts
are an estimate (``ceil(UTF-8 bytes / 4)``, see :mod:`._params`); tools are called by a
documented word-matching rule (:mod:`._tools`), thinking is a short canned note; there are no
server tools, no citations, no files or skills APIs; the exact wording of error messages is
modelled on the real API's style, not copied from it; everything lives in memory and is lost
when the simulator stops — except batches, with a state file (``Simulator(state=PATH)``,
``--state PATH``; see ``_state``).
"""

from __future__ import annotations

from typing import Any

from ._app import App
from ._clock import SimClock
from ._config import ENDPOINT_KINDS, Faults, Latency, Processing, RateLimits, SimConfig, SpendLimit
from ._params import tok as estimate_tokens
from ._responder import SIMULATED_MODELS, default_responder
from ._server import Server, SpawnedSimulator, serve, spawn
from ._simulator import Simulator
from ._state import StateConfigError, StateError, StateLockedError

__all__ = [
    "ENDPOINT_KINDS",
    "SIMULATED_MODELS",
    "Faults",
    "Latency",
    "Processing",
    "RateLimits",
    "Server",
    "SimClock",
    "SimConfig",
    "Simulator",
    "SpawnedSimulator",
    "SpendLimit",
    "StateConfigError",
    "StateError",
    "StateLockedError",
    "default_responder",
    "estimate_tokens",
    "serve",
    "spawn",
    "wired_simulator",
]


def wired_simulator(client: Any) -> Simulator | None:
    """The :class:`Simulator` an SDK client made by :meth:`Simulator.client` is wired to in
    process (no sockets); None for any other client (a served simulator's, the real API's).

    The simulator built that wiring, so it is the one that recognises it: batchkit's client
    side asks this instead of looking inside the SDK's client. Its :attr:`~Simulator.clock`
    and :meth:`~Simulator.async_client` are then the in-process simulator's own.

    >>> sim = Simulator()
    >>> wired_simulator(sim.client()) is sim, wired_simulator(object())
    (True, None)
    """
    http = getattr(client, "_client", None)  # the SDK's http client, as Simulator.client() built it
    app = getattr(getattr(http, "_transport", None), "app", None)
    return app.sim if isinstance(app, App) else None
