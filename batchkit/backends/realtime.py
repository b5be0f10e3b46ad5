"""Realtime sending: many ``POST /v1/messages`` calls at once, within the rate limits.

:class:`RealtimeSender` takes requests as ``(key, body)`` — the key (a ``custom_id``) and the
pre-serialized JSON of the Messages params, exactly what batchkit puts in a batch line's
``params`` — and hands back every answer **in the shape of a batch result line**::

    {"custom_id": "k1", "result": {"type": "succeeded", "message": {...}}}
    {"custom_id": "k2", "result": {"type": "errored", "error": {"type": "error", "error": {...}}}}

so :func:`batchkit.core.results.parse_result_stream` turns them into the same
:class:`~batchkit.core.results.ResultColumns` a batch's results become. Answers are delivered to a
callback a few lines at a time as they arrive, **on the caller's thread** (so the callback may
write to the caller's SQLite store): a crash loses only the requests in flight.

How it runs:

- The calls go through ``anthropic.AsyncAnthropic`` on a **private event loop in a worker
  thread**. The caller's loop (a Jupyter kernel's, or the one running an ``async def``) is
  never used or patched: :meth:`RealtimeSender.send` blocks the calling thread,
  :meth:`RealtimeSender.send_async` is awaited without blocking the caller's loop.
- Each body is posted as is (``client.post(..., content=body, cast_to=httpx2.Response)``): the
  SDK supplies auth, headers and typed errors; the answer stays bytes (no pydantic
  ``Message`` per answer) and only its ``usage`` is decoded, to reconcile the rate limits.
- The SDK's retries are off (``max_retries=0``); this module owns the one retry loop, bounded
  (``max_attempts``), for transient errors only: 429 (after the pause it asks for), 529,
  5xx, 408/409 and connection errors — unless the response says ``x-should-retry: false``.
  Other errors become ``errored`` lines at once.
- A :class:`~batchkit.backends.ratelimit.Governor` paces the requests: buckets reserved
  before sending and reconciled after, re-synced from the ``anthropic-ratelimit-*`` headers,
  a global pause on 429, a global backoff on 529, a gentle start.
- A spend-limit refusal (429 ``enforced_spend_limit_reached`` without ``retry-after``, or 400
  "…reached your specified API usage limits") stops sending at once and raises
  :class:`~batchkit.errors.SpendLimitError` once the requests already in flight have come back
  (their answers were paid for, so they are delivered; further refusals are dropped); 401/403
  do the same and re-raise the SDK's error.
- A ``stop`` event stops sending; requests in flight finish and are delivered. Ctrl-C in
  :meth:`~RealtimeSender.send` (or cancelling :meth:`~RealtimeSender.send_async`) stops at once,
  delivers what came back, and re-raises.

Which async client (first that applies): ``async_client=`` (an ``AsyncAnthropic``, or a
function returning one, called on the worker's loop); one registered for the sync client with
:func:`register_async_twin`; for a client of the in-process simulator (``Simulator.client()``),
one on the same WSGI app; otherwise one built with the sync client's key, token, base URL,
headers and timeout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import math
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass, field
from typing import Any, Union

import anthropic
import httpx2
import msgspec

from batchkit.core import _json
from batchkit.core.results import ResultColumns, parse_result_stream

from ..errors import SpendLimitError
from . import Tracked
from .errors import Action, CallFailed, decide
from .ratelimit import Governor, Limits, Reservation, rate_limit_group

__all__ = [
    "AsyncClientSource",
    "Progress",
    "Realtime",
    "RealtimeSender",
    "async_twin",
    "forget_learned_limits",
    "learned_limits",
    "register_async_twin",
]

Request = tuple[str, bytes]
"""``(key, body)``: the ``custom_id`` and the JSON bytes of the Messages params."""

AsyncClientSource = Union[anthropic.AsyncAnthropic, Callable[[], anthropic.AsyncAnthropic]]  # noqa: UP007
"""An async client, or a function making one (called on the sender's own loop)."""

_twins: weakref.WeakKeyDictionary[anthropic.Anthropic, Callable[[], anthropic.AsyncAnthropic]] = (
    weakref.WeakKeyDictionary()
)
_TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_JSON_HEADERS = {"content-type": "application/json"}
_END = object()


# --------------------------------------------------------------------------- async clients


def register_async_twin(client: anthropic.Anthropic, factory: Callable[[], anthropic.AsyncAnthropic]) -> None:
    """Make ``factory()`` the async client the sender uses for the sync ``client``.

    For a sync client the sender cannot rebuild from its settings alone (a custom transport,
    a credentials provider). The factory is called on the sender's private loop, once per run.
    """
    _twins[client] = factory


def async_twin(client: anthropic.Anthropic) -> Callable[[], anthropic.AsyncAnthropic]:
    """A factory of ``AsyncAnthropic`` clients that talk where ``client`` talks, as it does."""
    registered = _twins.get(client)
    if registered is not None:
        return registered
    transport = getattr(client._client, "_transport", None)
    if isinstance(transport, httpx2.WSGITransport):  # the in-process simulator
        from ..simulator._simulator import AsyncWSGITransport

        app = transport.app

        def in_process() -> anthropic.AsyncAnthropic:
            return anthropic.AsyncAnthropic(
                api_key=client.api_key,
                auth_token=client.auth_token,
                base_url=client.base_url,
                default_headers=client._custom_headers,
                timeout=client.timeout,
                max_retries=0,
                http_client=httpx2.AsyncClient(transport=AsyncWSGITransport(app)),
            )

        return in_process

    def over_http() -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=client.api_key,
            auth_token=client.auth_token,
            base_url=client.base_url,
            default_headers=client._custom_headers,
            timeout=client.timeout,
            max_retries=0,
        )

    return over_http


# --------------------------------------------------------------------------- progress


@dataclass
class Progress:
    """Live counters of one run (read them from any thread; each is updated atomically).

    Attributes:
        total: requests to send (``None`` when the input had no length).
        succeeded: answers delivered as ``succeeded``.
        errored: requests delivered as ``errored`` (after retries, or not retryable).
        in_flight: requests sent and not yet answered.
        rate_limited: 429 responses met (each paused every worker).
        overloaded: 529 responses met.
        retries: requests sent again after a transient error.
        lost: responses lost on the way back (the connection failed or timed out after the
            request was sent): the API may have answered, and charged, a request whose answer
            never arrived; :attr:`lost_keys` names them, once per lost response.
        concurrency: requests allowed in flight at the moment.
        stopped: the run ended early (stop event, Ctrl-C, spend limit, auth error).
    """

    total: int | None = None
    succeeded: int = 0
    errored: int = 0
    in_flight: int = 0
    rate_limited: int = 0
    overloaded: int = 0
    retries: int = 0
    lost: int = 0
    concurrency: int = 0
    stopped: bool = False
    lost_keys: collections.deque[str] = field(default_factory=collections.deque, repr=False)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def done(self) -> int:
        """Requests answered either way."""
        return self.succeeded + self.errored

    @property
    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Requests answered per second so far."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (``None`` when unknown)."""
        if self.total is None or not self.rate:
            return None
        return max(0, self.total - self.done) / self.rate

    def __str__(self) -> str:
        total = "?" if self.total is None else f"{self.total:,}"
        eta = "" if self.eta is None else f", ETA {self.eta:,.0f} s"
        return (
            f"{self.done:,}/{total} answered ({self.errored:,} errored), {self.rate:,.1f}/s{eta}, "
            f"{self.in_flight} in flight, {self.rate_limited} 429s, {self.overloaded} 529s"
        )


# --------------------------------------------------------------------------- one run


class _Meta(msgspec.Struct):
    model: str = ""
    max_tokens: int = 1024


class _Usage(msgspec.Struct):
    input_tokens: int | None = 0
    output_tokens: int | None = 0
    cache_creation_input_tokens: int | None = 0


class _Answer(msgspec.Struct):
    usage: _Usage | None = None


_decode_meta = msgspec.json.Decoder(_Meta).decode
_decode_answer = msgspec.json.Decoder(_Answer).decode


@dataclass
class _Item:
    key: str
    body: bytes
    group: str
    max_tokens: int
    input_tokens: int
    attempt: int = 0


class _Halt(Exception):
    """Ends a run at once: ``error`` is raised to the caller after delivery (as a
    :class:`SpendLimitError` when ``spend_limit``)."""

    def __init__(self, error: anthropic.APIStatusError, spend_limit: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.spend_limit = spend_limit


def _item(key: str, body: bytes) -> _Item:
    try:
        meta = _decode_meta(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        meta = _Meta()  # sent as is: the API will say what is wrong with it
    return _Item(key, body, rate_limit_group(meta.model), meta.max_tokens, max(1, len(body) // 4))


def _succeeded_line(key: str, message: bytes) -> bytes:
    return b'{"custom_id":' + _json.dumps(key) + b',"result":{"type":"succeeded","message":' + message + b"}}\n"


def _errored_line(key: str, error: Any) -> bytes:
    return _json.dumps({"custom_id": key, "result": {"type": "errored", "error": error}}) + b"\n"


def _error_envelope(error_type: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def _retry_after(headers: httpx2.Headers) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                seconds = float(value) * scale
            except ValueError:
                continue
            if math.isfinite(seconds) and seconds >= 0:
                return min(seconds, 600.0)
    return None


def _spend_limit(exc: anthropic.APIStatusError) -> bool:
    code = getattr(exc, "error_code", None) or ""
    if code.endswith("spend_limit_reached"):
        return True
    message = (getattr(exc, "api_message", None) or exc.message or "").lower()
    if exc.status_code == 429 and "retry-after" not in exc.response.headers and "spend limit" in message:
        return True
    return exc.status_code == 400 and "api usage limits" in message


class _Run:
    """The state of one :meth:`RealtimeSender.send` shared by the worker and the caller."""

    def __init__(
        self,
        sender: RealtimeSender,
        requests: Iterable[Request],
        emit: Callable[[Any], None],
        stop: threading.Event | None,
    ) -> None:
        self.sender = sender
        self.requests = requests
        self.emit = emit
        self.stop = stop or threading.Event()
        self.progress = Progress(total=len(requests) if isinstance(requests, Sized) else None)
        self.governor = Governor(
            fallback=sender.fallback,
            initial_concurrency=sender.initial_concurrency,
            max_concurrency=sender.max_concurrency,
        )
        self.buffer: list[bytes] = []
        self.halt: BaseException | None = None
        """Why the run ended early (raised to the caller once what came back is delivered)."""
        self.spend_limit = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.main: asyncio.Task[None] | None = None

    # called from the caller's thread
    def interrupt(self) -> None:
        """Stop at once (Ctrl-C): cancel the requests in flight."""
        self.stop.set()
        loop, main = self.loop, self.main
        if loop is not None and main is not None:
            loop.call_soon_threadsafe(main.cancel)

    # ---------------------------------------------------------------- worker side

    def deliver(self, line: bytes, succeeded: bool) -> None:
        if succeeded:
            self.progress.succeeded += 1
        else:
            self.progress.errored += 1
        self.buffer.append(line)
        if len(self.buffer) >= self.sender.group_size:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            chunk = b"".join(self.buffer)
            self.buffer = []
            self.emit(chunk)
        if self.sender.on_progress is not None:
            self.sender.on_progress(self.progress)

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.main = asyncio.current_task()
        client = self.sender._make_async_client()
        api = client.with_options(max_retries=0)
        ticker = asyncio.create_task(self._tick())
        tasks: set[asyncio.Task[None]] = set()
        try:
            await self._dispatch(api, tasks)
        except asyncio.CancelledError:
            self.progress.stopped = True
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            self.progress.in_flight = 0
            self.progress.ended = time.monotonic()
            self.flush()
            if client is not self.sender._given_client:
                await client.close()

    async def _tick(self) -> None:
        interval = self.sender.flush_seconds
        while True:
            await asyncio.sleep(interval)
            self.progress.concurrency = int(self.governor.concurrency)
            self.flush()

    async def _dispatch(self, api: anthropic.AsyncAnthropic, tasks: set[asyncio.Task[None]]) -> None:
        governor = self.governor
        retry: collections.deque[_Item] = collections.deque()
        source = iter(self.requests)
        freed = asyncio.Event()
        failure: list[BaseException] = []

        def finished(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            self.progress.in_flight = len(tasks)
            if not task.cancelled():
                error = task.exception()
                if isinstance(error, _Halt):
                    if self.halt is None:  # the first refusal names the cause; the rest repeat it
                        self.halt, self.spend_limit = error.error, error.spend_limit
                elif error is not None:
                    failure.append(error)
            freed.set()

        exhausted = False
        while True:
            if failure:
                raise failure[0]
            if self.stop.is_set() or self.halt is not None:
                self.progress.stopped = True
                break
            if retry:
                item = retry.popleft()
            elif not exhausted:
                nxt = next(source, None)
                if nxt is None:
                    exhausted = True
                    continue
                item = _item(*nxt)
            else:
                if not tasks:
                    break
                freed.clear()
                await freed.wait()
                continue
            while True:  # wait until the governor lets it go
                if failure:
                    raise failure[0]
                if self.stop.is_set() or self.halt is not None:
                    retry.appendleft(item)
                    break
                granted = governor.acquire(item.group, item.input_tokens, item.max_tokens)
                if isinstance(granted, Reservation):
                    task = asyncio.create_task(self._call(api, item, granted, retry))
                    tasks.add(task)
                    task.add_done_callback(finished)
                    self.progress.in_flight = len(tasks)
                    break
                if granted == 0.0:  # every slot is taken: wait for an answer
                    freed.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(freed.wait(), 0.25)
                else:
                    await asyncio.sleep(min(granted, 0.25))
        # stopped (or halted: nothing more is sent): what is in flight finishes — an answer is
        # paid for and delivered, a refusal is dropped — and the run ends
        while tasks:
            if failure:
                raise failure[0]
            freed.clear()
            await freed.wait()
        if failure:
            raise failure[0]

    async def _call(
        self, api: anthropic.AsyncAnthropic, item: _Item, reservation: Reservation, retry: collections.deque[_Item]
    ) -> None:
        governor = self.governor
        item.attempt += 1
        try:
            response = await api.post(
                "/v1/messages", content=item.body, cast_to=httpx2.Response, options={"headers": _JSON_HEADERS}
            )
        except anthropic.APIStatusError as exc:
            self._status_error(exc, item, reservation, retry)
            return
        except anthropic.APIConnectionError as exc:  # includes timeouts
            # Unless the connection was never made, the request may have reached the API and been
            # answered (and charged) before it failed: counted, since it may be paid for twice.
            if not _never_sent(exc):
                self.progress.lost += 1
                self.progress.lost_keys.append(item.key)
            governor.release(reservation)
            kind = "timeout_error" if isinstance(exc, anthropic.APITimeoutError) else "api_error"
            governor.pause(min(8.0, 0.25 * 2 ** (item.attempt - 1)))
            self._again(item, retry, _error_envelope(kind, f"{type(exc).__name__}: {exc}"))
            return
        body = response.content
        try:
            usage = _decode_answer(body).usage or _Usage()
        except (msgspec.DecodeError, msgspec.ValidationError):
            usage = _Usage()
        governor.release(
            reservation,
            input_tokens=(usage.input_tokens or 0) + (usage.cache_creation_input_tokens or 0),
            output_tokens=usage.output_tokens or 0,
            headers=response.headers,
        )
        governor.succeeded()
        self.deliver(_succeeded_line(item.key, body), True)

    def _status_error(
        self, exc: anthropic.APIStatusError, item: _Item, reservation: Reservation, retry: collections.deque[_Item]
    ) -> None:
        governor = self.governor
        status = exc.status_code
        headers = exc.response.headers
        envelope = (
            exc.body
            if isinstance(exc.body, dict) and "error" in exc.body
            else _error_envelope("api_error" if status >= 500 else "invalid_request_error", exc.message, exc.request_id)
        )
        if _spend_limit(exc):
            governor.release(reservation)
            raise _Halt(exc, spend_limit=True)
        if decide(exc, call="message").action is Action.STOP:  # the key or the account, not this request
            governor.release(reservation)
            raise _Halt(exc)
        if headers.get("x-should-retry", "").lower() == "false":  # the server says a retry cannot help
            governor.release(reservation, headers=headers)
            self.deliver(_errored_line(item.key, envelope), False)
            return
        if status == 429:
            self.progress.rate_limited += 1
            governor.release(reservation, headers=headers)
            governor.rate_limited_for(_retry_after(headers), item.group, headers)
            self._again(item, retry, envelope)
            return
        if status == 529:
            self.progress.overloaded += 1
            governor.release(reservation)
            governor.overloaded_for(_retry_after(headers))
            self._again(item, retry, envelope)
            return
        if status in _TRANSIENT_STATUS or status >= 500:
            governor.release(reservation)
            governor.pause(_retry_after(headers) or min(8.0, 0.25 * 2 ** (item.attempt - 1)))
            self._again(item, retry, envelope)
            return
        governor.release(reservation, headers=headers)  # a request the API will never take
        self.deliver(_errored_line(item.key, envelope), False)

    def _again(self, item: _Item, retry: collections.deque[_Item], envelope: Any) -> None:
        if item.attempt >= self.sender.max_attempts:
            self.deliver(_errored_line(item.key, envelope), False)
            return
        self.progress.retries += 1
        retry.append(item)


# --------------------------------------------------------------------------- the sender


class RealtimeSender:
    """Sends Messages requests concurrently within the rate limits; see the module docstring.

    Args:
        client: the sync client whose destination and credentials to use (``None``: the
            default client, as batch calls resolve it). Ignored when ``async_client`` is given.
        async_client: an ``AsyncAnthropic`` or a function returning one (called on the
            sender's own loop). An instance passed here must not be in use on another loop.
        max_attempts: tries per request for transient errors, the first included.
        group_size: answers per callback (fewer when ``flush_seconds`` pass first).
        flush_seconds: longest an answer waits before it is delivered.
        fallback: rate limits assumed until the first response's headers give them.
        initial_concurrency: requests in flight at the start (growing while free of 429s).
        max_concurrency: never more in flight.
        on_progress: called with the live :class:`Progress` on the worker thread, at every
            delivery (keep it cheap; for a display, read :attr:`progress` instead).

    >>> from batchkit.simulator import Simulator
    >>> sender = RealtimeSender(Simulator().client())
    >>> body = b'{"model":"claude-haiku-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
    >>> lines = []
    >>> sender.send([("k1", body)], lines.append).succeeded
    1
    >>> lines[0][:48]
    b'{"custom_id":"k1","result":{"type":"succeeded","'
    """

    def __init__(
        self,
        client: anthropic.Anthropic | None = None,
        *,
        async_client: AsyncClientSource | None = None,
        max_attempts: int = 8,
        group_size: int = 16,
        flush_seconds: float = 0.1,
        fallback: Limits | None = None,
        initial_concurrency: int = 4,
        max_concurrency: int = 256,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if group_size < 1 or flush_seconds <= 0:
            raise ValueError("group_size must be >= 1 and flush_seconds > 0")
        self.client = client
        self._given_client = async_client if isinstance(async_client, anthropic.AsyncAnthropic) else None
        self._async_source = async_client
        self.max_attempts = max_attempts
        self.group_size = group_size
        self.flush_seconds = flush_seconds
        self.fallback = fallback or Limits()
        self.initial_concurrency = initial_concurrency
        self.max_concurrency = max_concurrency
        self.on_progress = on_progress
        self.progress = Progress(total=0)
        """The counters of the current (or last) run."""
        self.governor: Governor | None = None
        """The rate-limit governor of the current (or last) blocking run: the limits it learned."""

    def _make_async_client(self) -> anthropic.AsyncAnthropic:
        source = self._async_source
        if isinstance(source, anthropic.AsyncAnthropic):
            return source
        if source is not None:
            return source()
        from .clients import resolve_client

        return async_twin(resolve_client(self.client))()

    # ---------------------------------------------------------------- blocking

    def send(
        self, requests: Iterable[Request], on_results: Callable[[bytes], Any], *, stop: threading.Event | None = None
    ) -> Progress:
        """Send every request; call ``on_results(chunk)`` on this thread as answers arrive.

        Each ``chunk`` is one or more LF-terminated result lines (see the module docstring).
        Works from a plain script and from a notebook cell whose kernel runs an event loop.

        Returns:
            The final :class:`Progress`.

        Raises:
            SpendLimitError: a spend or usage limit refused a request (sending stopped).
            anthropic.AuthenticationError, anthropic.PermissionDeniedError: likewise.
            KeyboardInterrupt: re-raised after what came back was delivered.
        """
        chunks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        run = _Run(self, requests, chunks.put, stop)
        self.progress = run.progress
        self.governor = run.governor
        worker = threading.Thread(target=self._worker, args=(run, chunks.put), name="batchkit-realtime", daemon=True)
        worker.start()
        try:
            while True:
                try:
                    chunk = chunks.get(timeout=0.1)  # a timeout keeps Ctrl-C responsive
                except queue.Empty:
                    continue
                if chunk is _END:
                    break
                on_results(chunk)
        except BaseException:
            run.interrupt()
            self._drain(chunks, on_results)
            worker.join()
            raise
        worker.join()
        return self._finish(run)

    @staticmethod
    def _drain(chunks: queue.SimpleQueue[Any], on_results: Callable[[bytes], Any]) -> None:
        """After an interrupt: deliver what already came back, up to the run's end."""
        while True:
            try:
                chunk = chunks.get(timeout=30)
            except queue.Empty:
                return
            if chunk is _END:
                return
            try:
                on_results(chunk)
            except Exception:  # the callback failing again: stop delivering, keep the first error
                return

    @staticmethod
    def _worker(run: _Run, emit_end: Callable[[Any], None]) -> None:
        try:
            asyncio.run(run.run())
        except BaseException as exc:  # a bug, not an API outcome: hand it to the caller
            run.halt = run.halt or exc
        finally:
            emit_end(_END)

    @staticmethod
    def _finish(run: _Run) -> Progress:
        halt = run.halt
        if halt is None:
            return run.progress
        if run.spend_limit and isinstance(halt, anthropic.APIStatusError):
            progress = run.progress
            unsent = None if progress.total is None else max(0, progress.total - progress.done)
            api_message = getattr(halt, "api_message", None) or halt.message
            raise SpendLimitError(
                f"The API refused a request because a spend limit is reached "
                f"({halt.error_code or halt.status_code}: {api_message}). Sending stopped at once: "
                f"{progress.succeeded:,} answers that came back are kept"
                + ("" if unsent is None else f", {unsent:,} requests have none")
                + ". Raise the limit in the Claude Console (Settings > Limits) or wait until it "
                "resets, then run again: only requests with no answer are sent.",
                status_code=halt.status_code,
                error_code=halt.error_code,
                api_message=api_message,
                answered=progress.succeeded,
                unsent=unsent or 0,
            ) from halt
        raise halt

    # ---------------------------------------------------------------- awaitable

    async def send_async(
        self, requests: Iterable[Request], on_results: Callable[[bytes], Any], *, stop: threading.Event | None = None
    ) -> Progress:
        """:meth:`send` for async code: awaiting it never blocks the caller's event loop.

        The calls still run on the sender's own loop in its own thread; ``on_results`` is
        called on the caller's loop. Cancelling the awaiting task stops at once (what came back
        is delivered first).
        """
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[Any] = asyncio.Queue()

        def emit(chunk: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone: nobody to deliver to
                loop.call_soon_threadsafe(chunks.put_nowait, chunk)

        run = _Run(self, requests, emit, stop)
        self.progress = run.progress
        worker = threading.Thread(target=self._worker, args=(run, emit), name="batchkit-realtime", daemon=True)
        worker.start()
        try:
            while True:
                chunk = await chunks.get()
                if chunk is _END:
                    break
                on_results(chunk)
        except BaseException:
            run.interrupt()
            while True:
                try:
                    chunk = await asyncio.wait_for(chunks.get(), 30)
                except (TimeoutError, asyncio.CancelledError):
                    break
                if chunk is _END:
                    break
                try:
                    on_results(chunk)
                except Exception:
                    break
            raise
        await loop.run_in_executor(None, worker.join)
        return self._finish(run)


# --------------------------------------------------------------------------- the backend


class _Line(msgspec.Struct):
    custom_id: str
    params: msgspec.Raw


class _Body(msgspec.Struct):
    requests: list[_Line]


_decode_body = msgspec.json.Decoder(_Body).decode

REALTIME_INITIAL_CONCURRENCY = 32
"""Requests in flight when a realtime unit starts (then growing while free of 429s): enough for
a sample of a few dozen rows to come back in about one request's latency."""
REALTIME_ROUND = 0.1
"""Seconds between the engine's rounds over a realtime unit: how often answers are stored."""


class _Unit:
    """One realtime unit being sent: its sender's thread, the answers not yet collected, the end."""

    def __init__(self) -> None:
        self.chunks: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.created_at = _utcnow()
        self.ended_at: str | None = None
        self.sender: RealtimeSender | None = None


class Realtime:
    """:class:`~batchkit.backends.Backend` over ``POST /v1/messages``: a unit is a set of request
    keys sent concurrently, within the rate limits, by a :class:`RealtimeSender`.

    :meth:`send` starts the unit's sender in a thread of its own and returns at once;
    :meth:`collect` hands over the answers that have arrived since the last call (the engine
    stores each such group in a small transaction, so a dead process loses only the requests on
    the wire); :meth:`track` says ``in_progress`` until every request has its answer. A spend
    limit or an account refusal ends the unit: once what came back is collected, :meth:`collect`
    raises :class:`~.errors.CallFailed` with the ``stop`` decision of :func:`~.errors.decide`.

    Handles live in this process only (``local``): a unit whose process died is ``ended`` with
    nothing more to collect, and the engine sends its unanswered keys again.
    """

    mode = "realtime"
    streams = True
    """Hands over a unit's answers while the rest are in flight."""
    local = True
    """Its units' handles do not survive the process that sent them."""

    def __init__(self, client: anthropic.Anthropic, *, sender_options: dict[str, Any] | None = None) -> None:
        self.client = client
        self.sender_options = {"initial_concurrency": REALTIME_INITIAL_CONCURRENCY, **(sender_options or {})}
        self._units: dict[str, _Unit] = {}
        self._lock = threading.Lock()

    def send(self, body: bytes) -> Tracked:
        """Start sending a planned unit's requests; returns at once."""
        requests = [(line.custom_id, bytes(line.params)) for line in _decode_body(body).requests]
        unit = _Unit()
        unit_id = f"realtime_{uuid.uuid4().hex[:20]}"
        sender = RealtimeSender(self.client, **self.sender_options)
        unit.sender = sender

        def run() -> None:
            try:
                sender.send(requests, unit.chunks.put, stop=unit.stop)
            except BaseException as exc:  # handed to the engine by collect()
                unit.error = exc
            finally:
                unit.ended_at = _utcnow()
                _learn(self.client, sender.governor)

        unit.thread = threading.Thread(target=run, name=f"batchkit-{unit_id}", daemon=True)
        with self._lock:
            self._units[unit_id] = unit
        unit.thread.start()
        return Tracked(unit_id, "in_progress", {"created_at": unit.created_at})

    def find_sent(self, *, n_requests: int, intent_at: dt.datetime, claimed: set[str]) -> Tracked | None:
        return None  # nothing survives the process that sent it: unanswered keys are sent again

    def track(self, unit_id: str) -> Tracked:
        unit = self._units.get(unit_id)
        if unit is None:  # sent by a process that is gone
            return Tracked(unit_id, "ended", {"ended_at": _utcnow()})
        if unit.thread is not None and unit.thread.is_alive():
            return Tracked(unit_id, "canceling" if unit.stop.is_set() else "in_progress", {})
        return Tracked(unit_id, "ended", {"created_at": unit.created_at, "ended_at": unit.ended_at})

    def collect(self, unit_id: str) -> ResultColumns:
        """The answers that arrived since the last call (all that are left once it has ended).

        Raises:
            CallFailed: the unit ended on a refusal (spend limit, key, permission); raised once
                every answer that came back before it has been collected.
        """
        unit = self._units.get(unit_id)
        if unit is None:
            return parse_result_stream([])
        ended = unit.thread is None or not unit.thread.is_alive()
        chunks = []
        while True:
            try:
                chunks.append(unit.chunks.get_nowait())
            except queue.Empty:
                break
        lost = _drain_lost(unit)
        if chunks or lost:  # responses lost on the way back are written down, even with no answer yet
            columns = parse_result_stream(chunks)
            columns.lost = lost
            return columns
        if ended:
            with self._lock:
                self._units.pop(unit_id, None)
            error = unit.error
            if error is not None:
                cause = (error.__cause__ if isinstance(error, SpendLimitError) else error) or error
                if not isinstance(cause, (anthropic.APIError, OSError)):
                    raise error  # not an answer of the API (a bug, an interrupt): the caller hears it
                raise CallFailed(decide(cause, call="message")) from error
        return parse_result_stream([])

    def cancel(self, unit_id: str) -> Tracked:
        """Stop sending; the requests on the wire finish and their answers are kept."""
        unit = self._units.get(unit_id)
        if unit is None:
            return Tracked(unit_id, "ended", {})
        unit.stop.set()
        return self.track(unit_id)

    @property
    def busy(self) -> bool:
        """Whether a unit is still being sent."""
        return any(u.thread is not None and u.thread.is_alive() for u in list(self._units.values()))

    def stop_all(self) -> None:
        """Stop sending every unit of this backend (Ctrl-C): what came back is kept."""
        for unit in list(self._units.values()):
            unit.stop.set()

    def progress(self) -> list[Progress]:
        """The live counters of the units being sent."""
        return [u.sender.progress for u in list(self._units.values()) if u.sender is not None]

    def poll_schedule(self, poll_interval: float | None) -> tuple[float, ...]:
        return (REALTIME_ROUND,)


_LEARNED: dict[tuple[str, str], Limits] = {}


def _never_sent(exc: anthropic.APIConnectionError) -> bool:
    """The connection failed before the request could leave this machine (refused, no route,
    no name, a connect timeout). Anything else — a read error or timeout, a dropped connection
    — may have come after the API answered. An error of a kind not known here counts as lost."""
    return isinstance(exc.__cause__, (httpx2.ConnectError, httpx2.ConnectTimeout))


def _drain_lost(unit: _Unit) -> list[str]:
    """The keys whose responses were lost since the last call (one entry per lost response)."""
    lost: list[str] = []
    if unit.sender is not None:
        keys = unit.sender.progress.lost_keys
        while keys:
            lost.append(keys.popleft())
    return lost


def _where(client: Any) -> str:
    return str(getattr(client, "base_url", "") or "")


def _learn(client: Any, governor: Governor | None) -> None:
    if governor is not None:
        for group in governor.groups():
            _LEARNED[(_where(client), group)] = governor.limits(group)


def forget_learned_limits() -> None:
    """Forget every rate limit learned in this process (e.g. after changing the key's tier)."""
    _LEARNED.clear()


def learned_limits(model: str, client: Any) -> Limits | None:
    """The rate limits of ``model``'s group at ``client``'s server, as its headers last gave them
    in this process (None before any realtime answer): what ``auto`` and the estimate time
    realtime by."""
    return _LEARNED.get((_where(client), rate_limit_group(model)))


def _utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
