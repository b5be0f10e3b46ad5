"""The :class:`Simulator` object: one simulated Anthropic API, usable in process or served."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import httpx2

from ._app import App
from ._clock import LATEST, SimClock
from ._config import SimConfig
from ._engine import Engine
from ._state import StateFile

if TYPE_CHECKING:
    import anthropic

__all__ = ["IN_PROCESS_BASE_URL", "SIM_API_KEY", "Simulator"]

SIM_API_KEY = "sk-sim-local"
IN_PROCESS_BASE_URL = "http://sim.local"


class Simulator:
    """A simulated Anthropic API: batches, messages, models, with a fast clock and faults.

    Args:
        config: everything but the responder (:class:`SimConfig`).
        responder: ``(params) -> str | dict | list`` writing the answers; ``None`` →
            :func:`batchkit.simulator.default_responder`.
        state: a state file (created if missing) where batches are written down as they are
            created, canceled and deleted, so a simulator started again on it carries on with
            them (see :mod:`batchkit.simulator._state`); ``None`` (the default): in memory only.
            One simulator at a time may use a file (:class:`StateLockedError` otherwise);
            :meth:`close` lets go of it.

    >>> sim = Simulator(config=SimConfig(time_scale=3600))
    >>> client = sim.client()
    >>> client.messages.count_tokens(model="claude-haiku-4-5",
    ...     messages=[{"role": "user", "content": "hello world"}]).input_tokens
    10
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        responder: Callable[..., Any] | None = None,
        *,
        state: str | Path | None = None,
    ) -> None:
        self.config = config or SimConfig()
        store = None if state is None else StateFile(state)
        self.state_path: Path | None = None if store is None else store.path
        """The state file, or ``None`` when the simulator keeps its batches in memory only."""
        try:
            if store is not None:
                store.check_config(_answers_fingerprint(self.config, responder))
            start = self.config.start_time
            floor = None if store is None else store.clock_floor()
            if floor is not None:  # never earlier than a time a client has already been shown
                start = min(max(time.time() if start is None else start, floor), LATEST)
            self.clock = SimClock(self.config.time_scale, start)
            self.engine = Engine(self.config, responder, self.clock, store)
            """The Message Batches engine: its batches, queue and worker (the app and the server drive it)."""
        except BaseException:
            if store is not None:
                store.close()
            raise
        self.wsgi_app = App(self)

    def close(self) -> None:
        """Stop background work and let go of the state file, if any (idempotent). The
        simulator must not be used afterwards."""
        self.engine.close()

    def client(self, **kwargs: Any) -> anthropic.Anthropic:
        """A sync SDK client wired to this simulator in process (no sockets).

        Keyword arguments go to ``anthropic.Anthropic`` (e.g. ``max_retries=0``,
        ``_strict_response_validation=True``).
        """
        kwargs.setdefault("api_key", SIM_API_KEY)
        kwargs.setdefault("base_url", IN_PROCESS_BASE_URL)
        kwargs.setdefault("http_client", httpx2.Client(transport=httpx2.WSGITransport(app=self.wsgi_app)))
        import anthropic  # only here: a served simulator's process never needs the SDK

        return anthropic.Anthropic(**kwargs)

    def async_client(self, **kwargs: Any) -> anthropic.AsyncAnthropic:
        """An async SDK client wired to this simulator in process (the app runs in a thread)."""
        kwargs.setdefault("api_key", SIM_API_KEY)
        kwargs.setdefault("base_url", IN_PROCESS_BASE_URL)
        kwargs.setdefault("http_client", httpx2.AsyncClient(transport=AsyncWSGITransport(self.wsgi_app)))
        import anthropic

        return anthropic.AsyncAnthropic(**kwargs)

    def stats(self, *, catch_up: bool = True) -> dict[str, Any]:
        """Counters since start (or the last :meth:`reset_stats`); JSON-able.

        The engine first catches up with the clock (processing what is due), unless
        ``catch_up=False`` (``GET /_sim/stats?catch_up=0``), which benchmarks use to read
        ``cpu_seconds`` without causing work.

        Keys: one per endpoint kind (``"batches.create"``, ``"batches.retrieve"``, …, every
        call routed there, including failed ones), ``batches_created``,
        ``batch_requests_received``, ``requests_processed`` (succeeded results produced),
        ``requests_errored``/``requests_expired``/``requests_canceled``,
        ``duplicate_custom_ids_answered`` (custom_ids answered ``succeeded`` more than once,
        across batches), ``messages_answered``, ``faults`` (injected faults by kind),
        ``batches`` (``{id, request_count, processing_status}`` per live batch), ``clock``,
        ``time_scale``, ``cpu_seconds`` (process CPU time) and ``uptime_seconds``.
        """
        return self.engine.stats(catch_up)

    def reset_stats(self) -> None:
        """Zero the counters (batches, cache and clock are kept)."""
        self.engine.reset_stats()

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward (as ``sim.clock.advance``, and wakes a served
        simulator's background worker to do what is now due)."""
        self.clock.advance(seconds)
        self.engine.wake()


class _AsyncBody(httpx2.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._iter = iter(stream)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await anyio.to_thread.run_sync(next, self._iter, None)
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._stream.close)


class AsyncWSGITransport(httpx2.AsyncBaseTransport):
    """Serve async requests from a WSGI app run in a worker thread, streaming the body."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self._sync = httpx2.WSGITransport(app=app)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        response = await anyio.to_thread.run_sync(self._sync.handle_request, request)
        return httpx2.Response(response.status_code, headers=response.headers, stream=_AsyncBody(response.stream))


def _answers_fingerprint(config: SimConfig, responder: Callable[..., Any] | None) -> str:
    """What decides the answers and the timing of a batch a state file restores: the seed, the
    faults, the processing and the responder (by name; ``time_scale`` and ports may change)."""
    name = (
        "default"
        if responder is None
        else (f"{getattr(responder, '__module__', '')}.{getattr(responder, '__qualname__', type(responder).__name__)}")
    )
    text = repr((config.seed, config.faults, config.processing, name))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
