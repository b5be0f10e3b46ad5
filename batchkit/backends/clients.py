"""Which ``anthropic`` SDK client a call uses, and how often to poll the server behind it.

The calls that send requests are the backends' (:mod:`batchkit.backends`); this module only
resolves the client they are given.

Which client a call uses, first that is set wins:

=========================================  ==============================================
``client=`` argument                       an ``anthropic.Anthropic`` you built
:func:`batchkit.set_default_client`        e.g. set by :func:`batchkit.start_simulator`
``ANTHROPIC_API_KEY`` (or auth token)      one ``anthropic.Anthropic()`` reads the environment,
                                           including ``ANTHROPIC_BASE_URL``; kept and reused
=========================================  ==============================================

Whether a client talks to batchkit's simulator or to Anthropic's API is asked of the server,
never guessed from its host name (a gateway on 127.0.0.1 may well forward to the real API):
see :func:`is_simulator`. The answer picks the default store and the poll schedule.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import anthropic
import httpx2

from batchkit.errors import NoCredentialsError, ServerUnreachableError

from .identity import PROBE_TIMEOUT, SIMULATOR_HEADER, ask, read_clock, unreachable, wired_simulator

__all__ = ["close_environment_client", "get_default_client", "is_simulator", "resolve_client", "set_default_client"]

_default_client: anthropic.Anthropic | None = None
_default_lock = threading.Lock()

ANTHROPIC_HOSTS = frozenset({"api.anthropic.com"})
"""Hosts that are Anthropic's API itself: no need to ask them (and no request offline)."""


# What each server said, asked once: per base URL and credentials (a client's with_options()
# copies have the same); and per URL alone for the environment's ANTHROPIC_BASE_URL, which every
# client built from the environment shares with url_is_simulator (asked without a key).
_said: dict[str, dict[str, bool]] = {}
_said_by_url: dict[str, bool] = {}
_asking: dict[tuple[int, str], threading.Lock] = {}
_identity_lock = threading.Lock()

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
            raise TypeError(f"client must be an anthropic.Anthropic (the sync client), not {type(client).__name__}")
        return client
    if _default_client is not None:
        return _default_client
    if os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        return _environment_client()
    raise NoCredentialsError(
        "No Anthropic API key is configured and no simulator is running. Either set "
        "ANTHROPIC_API_KEY=sk-ant-... to use the real API, or run on batchkit's local simulator: "
        "call batchkit.start_simulator() in this process, or run `batchkit sim --port 8765` in a "
        "terminal and set ANTHROPIC_BASE_URL=http://127.0.0.1:8765 and ANTHROPIC_API_KEY=sk-sim."
    )


_ENVIRONMENT = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL")
_environment: tuple[tuple[str | None, ...], anthropic.Anthropic] | None = None


def _environment_client() -> anthropic.Anthropic:
    """One ``anthropic.Anthropic()`` per environment, so calls share its connections; a key or
    base URL set anew in the environment gets a new client. The one it replaces is not closed
    here: a job started before the change may still be using it."""
    global _environment
    said = tuple(os.environ.get(name) for name in _ENVIRONMENT)
    with _default_lock:
        if _environment is None or _environment[0] != said:
            _environment = (said, anthropic.Anthropic())
        return _environment[1]


def close_environment_client() -> None:
    """Close the client built from the environment, if any (the next call builds a new one)."""
    global _environment
    with _default_lock:
        old, _environment = _environment, None
    if old is not None:
        old[1].close()


def is_simulator(client: anthropic.Anthropic) -> bool:
    """Whether ``client`` talks to batchkit's simulator rather than to Anthropic's API.

    Asked of the server, once per client: a free ``GET /v1/models?limit=1`` through the client
    itself (its base URL, transport, proxy and key), whose response — any status, even a 401 —
    carries an ``x-batchkit-simulator`` header only if the simulator sent it. A client wired
    in process to a :class:`batchkit.simulator.Simulator` is known without a request, and
    ``api.anthropic.com`` is the API without one. Clients with the same base URL and credentials
    share the answer (copies made by ``with_options`` too); clients with the environment's
    ``ANTHROPIC_BASE_URL`` and key share it with :func:`url_is_simulator`. Thread-safe:
    concurrent first calls send one request.

    Raises:
        ServerUnreachableError: the server did not answer, so what it is cannot be known.
    """
    url = str(client.base_url).rstrip("/")
    if (urlsplit(url).hostname or "") in ANTHROPIC_HOSTS:
        return False
    if wired_simulator(client) is not None:
        return True
    if url == (os.environ.get("ANTHROPIC_BASE_URL") or "").rstrip("/") and _environment_credentials(client):
        return _once(_said_by_url, url, lambda: ask(client, url))
    with _identity_lock:
        answers = _said.setdefault(_credentials_digest(client), {})
    return _once(answers, url, lambda: ask(client, url))


def _credentials_digest(client: anthropic.Anthropic) -> str:
    """A digest of a client's key and token (never the key itself): part of what an answer is kept by."""
    return hashlib.sha256(f"{client.api_key}\0{client.auth_token}".encode()).hexdigest()[:16]


def _environment_credentials(client: anthropic.Anthropic) -> bool:
    """Whether ``client`` carries the environment's credentials (as ``anthropic.Anthropic()`` reads them)."""
    return client.api_key == os.environ.get("ANTHROPIC_API_KEY") and client.auth_token == os.environ.get(
        "ANTHROPIC_AUTH_TOKEN"
    )


def api_name(client: anthropic.Anthropic) -> str:
    """What the store records as the source of its answers: ``"simulator"`` or ``"Anthropic API"``."""
    return "simulator" if is_simulator(client) else "Anthropic API"


def url_is_simulator(base_url: str) -> bool:
    """:func:`is_simulator` for a base URL with no client yet (e.g. ``ANTHROPIC_BASE_URL``),
    asked once per process without a key: any answer, a 401 too, says what the server is.

    Raises:
        ServerUnreachableError: the server did not answer.
    """
    url = base_url.rstrip("/")
    if (urlsplit(url).hostname or "") in ANTHROPIC_HOSTS:
        return False

    def ask() -> bool:
        try:
            response = httpx2.get(
                f"{url}/v1/models",
                params={"limit": 1},
                timeout=PROBE_TIMEOUT,
                headers={"anthropic-version": "2023-06-01"},
            )
        except httpx2.HTTPError as exc:
            raise unreachable(url, exc) from exc
        return SIMULATOR_HEADER in response.headers

    return _once(_said_by_url, url, ask)


def _once(answers: dict[str, bool], url: str, ask: Callable[[], bool]) -> bool:
    """``answers[url]``, else ``ask()`` and remember it — one asker at a time: a second thread
    waits for the first one's answer instead of asking again."""
    known = answers.get(url)
    if known is not None:
        return known
    key = (id(answers), url)
    with _identity_lock:
        asking = _asking.setdefault(key, threading.Lock())
    try:
        with asking:
            known = answers.get(url)
            if known is None:
                known = answers[url] = ask()
    finally:
        with _identity_lock:
            _asking.pop(key, None)  # later callers find the answer (or, unreachable, ask again)
    return known


def forget_server_identities() -> None:
    """Forget what every server said it is, so the next call asks again.

    Only needed when, in one process, a different kind of server takes over a URL already asked
    (the simulator stopped and a gateway to the real API started on the same port).
    """
    with _identity_lock:
        _said.clear()
        _said_by_url.clear()


def poll_schedule(client: anthropic.Anthropic, poll_interval: float | None) -> tuple[float, ...]:
    """Intervals between polls: fixed if the caller set one, else a backoff fit for the server.

    Fast polls only for the simulator; a server that cannot be asked gets the real API's.
    """
    if poll_interval is not None:
        return (float(poll_interval),)
    try:
        simulator = is_simulator(client)
    except ServerUnreachableError:
        simulator = False
    return LOCAL_POLL_SCHEDULE if simulator else REAL_API_POLL_SCHEDULE


def server_clock(client: anthropic.Anthropic) -> Callable[[], float]:
    """The clock a deadline is kept on: seconds since the epoch as the server behind ``client`` counts them.

    Anthropic's API runs on real time (``time.time``). The simulator may run a fast clock (its
    ``time_scale``) or be advanced, so its own time is read: straight from the clock of a
    simulator wired in process (``Simulator.client()``), else with its free ``GET /_sim/clock``
    (a served simulator, in this process or another). A clock read that fails falls back to the
    last reading plus the wall time since, scaled.
    """
    try:
        simulator = is_simulator(client)
    except ServerUnreachableError:
        simulator = False
    if not simulator:
        return time.time
    sim = wired_simulator(client)
    if sim is not None:
        clock: Callable[[], float] = sim.clock.timestamp
        return clock
    last = [time.time(), time.monotonic(), 1.0]

    def read() -> float:
        reading = read_clock(client)
        if reading is None:
            return last[0] + (time.monotonic() - last[1]) * last[2]
        last[:] = [reading[0], time.monotonic(), reading[1]]
        return reading[0]

    return read


def server_clock_rate(client: anthropic.Anthropic) -> float:
    """Seconds of :func:`server_clock` per wall-clock second: 1.0 for Anthropic's API, the
    simulator's ``time_scale`` (1.0 when it cannot be read). What batchkit itself does — polls,
    storing answers, starting a realtime unit — takes wall time, which this many times as much
    passes on a fast clock (see :class:`batchkit.engine.hedge.HedgePlan`)."""
    try:
        simulator = is_simulator(client)
    except ServerUnreachableError:
        simulator = False
    if not simulator:
        return 1.0
    sim = wired_simulator(client)
    if sim is not None:
        return float(sim.clock.time_scale)
    reading = read_clock(client)
    return reading[1] if reading is not None else 1.0
