"""Asking a server whether it is batchkit's simulator: one free SDK call, its errors mapped here.

The simulator says what it is on every response (the :data:`SIMULATOR_HEADER` header); the real
API never sends it. :mod:`batchkit.backends.clients` asks once per client and remembers the answer.
A client wired to a simulator in process (``Simulator.client()``) is known without asking: the
simulator's public :func:`batchkit.simulator.wired_simulator` recognises its own wiring.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

import anthropic
import httpx2

from ..errors import ServerUnreachableError

if TYPE_CHECKING:
    from batchkit.simulator import Simulator

__all__ = ["PROBE_TIMEOUT", "SIMULATOR_HEADER", "ask", "read_clock", "unreachable", "wired_simulator"]

SIMULATOR_HEADER = "x-batchkit-simulator"
"""The response header by which batchkit's simulator says what it is (the real API never sends it)."""

PROBE_TIMEOUT = 10.0
"""Seconds to wait for the identity question's answer."""


def ask(client: anthropic.Anthropic, url: str) -> bool:
    """Whether the server behind ``client`` (at ``url``) says it is the simulator (a free ``GET /v1/models``)."""
    try:
        headers = (
            client.with_options(max_retries=1, timeout=PROBE_TIMEOUT).models.with_raw_response.list(limit=1).headers
        )
    except anthropic.APIStatusError as exc:  # 401, 404 from a gateway…: an answer all the same
        headers = exc.response.headers
    except anthropic.APIConnectionError as exc:
        raise unreachable(url, exc) from exc
    return SIMULATOR_HEADER in headers


def read_clock(client: anthropic.Anthropic) -> tuple[float, float] | None:
    """The simulator's clock (``GET /_sim/clock``): its now, as seconds since the epoch, and its
    ``time_scale``; None when it cannot be read (the caller keeps counting from its last reading)."""
    try:
        answer = (
            client.with_options(max_retries=0, timeout=PROBE_TIMEOUT).get("/_sim/clock", cast_to=httpx2.Response).json()
        )
        now = dt.datetime.fromisoformat(str(answer["now"]).replace("Z", "+00:00")).timestamp()
        return now, float(answer.get("time_scale") or 1.0)
    except (anthropic.APIError, ValueError, KeyError, TypeError):
        return None


def unreachable(url: str, exc: Exception) -> ServerUnreachableError:
    return ServerUnreachableError(
        f"cannot reach {url} to ask whether it is batchkit's simulator or Anthropic's API "
        f"({type(exc).__name__}: {exc}). Start the simulator there (`batchkit sim --port N`), or "
        "fix the client's base_url / ANTHROPIC_BASE_URL.",
        url=url,
    )


def wired_simulator(client: Any) -> Simulator | None:
    """The simulator ``client`` is wired to in process (``Simulator.client()``), None for any
    other client. Free when the simulator was never imported: no such client can exist then
    (and a real-API process never loads it)."""
    if "batchkit.simulator" not in sys.modules:
        return None
    from batchkit.simulator import wired_simulator as wired

    return wired(client)
