"""One run of the realtime sender: the loop that sends, within the rate limits, and what each answer becomes.

A :class:`Run` is what one :meth:`~batchkit.backends.sender.RealtimeSender.send` does on the
sender's private event loop: it takes the requests one at a time (retries first), waits until
the :class:`~batchkit.backends.ratelimit.Governor` lets each go, posts it as is, and turns every
outcome into a line in the shape of a batch result line, delivered a few at a time:

- an answer: ``succeeded``, its ``usage`` reconciled with the governor;
- 429 / 529 / 5xx / 408 / 409 / a connection error: sent again after the pause the governor
  keeps (up to ``max_attempts``), unless the response says ``x-should-retry: false``; a
  response lost on the way back (the request may have been answered, and paid) is counted in
  :attr:`Progress.lost_keys`;
- a spend limit, a refused key or account: the run halts (nothing more is sent; what is on the
  wire comes back and is delivered) and the sender raises it;
- any other refusal: an ``errored`` line at once.

:class:`Progress` holds the live counters of a run, read from any thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anthropic
import httpx2
import msgspec

from batchkit.core import _json

from .errors import Action, decide
from .limits import rate_limit_group
from .ratelimit import Governor, Reservation

if TYPE_CHECKING:
    from .sender import RealtimeSender

__all__ = ["Progress", "Request", "Run"]

Request = tuple[str, bytes]
"""``(key, body)``: the ``custom_id`` and the JSON bytes of the Messages params."""

_TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_JSON_HEADERS = {"content-type": "application/json"}


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


def _never_sent(exc: anthropic.APIConnectionError) -> bool:
    """The connection failed before the request could leave this machine (refused, no route,
    no name, a connect timeout). Anything else — a read error or timeout, a dropped connection
    — may have come after the API answered. An error of a kind not known here counts as lost."""
    return isinstance(exc.__cause__, (httpx2.ConnectError, httpx2.ConnectTimeout))


class Run:
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
        self._tasks: set[asyncio.Task[None]] = set()  # the calls in flight (set by _dispatch)
        self._freed = asyncio.Event()  # set when a call ends
        self._failure: list[BaseException] = []  # a call's unexpected error, raised by the loop

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
        client, owned = self.sender.async_client()
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
            if owned:
                await client.close()

    async def _tick(self) -> None:
        interval = self.sender.flush_seconds
        while True:
            await asyncio.sleep(interval)
            self.progress.concurrency = int(self.governor.concurrency)
            self.flush()

    async def _dispatch(self, api: anthropic.AsyncAnthropic, tasks: set[asyncio.Task[None]]) -> None:
        """Send every request (retries first) as the governor lets each go; then let what is in
        flight finish. A task's unexpected error is raised here, at the next turn of the loop."""
        self._tasks, self._freed, self._failure = tasks, asyncio.Event(), []
        retry: collections.deque[_Item] = collections.deque()
        source = iter(self.requests)
        freed = self._freed
        exhausted = False
        while True:
            self._raise_failure()
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
            await self._launch(api, item, retry)
        # stopped (or halted: nothing more is sent): what is in flight finishes — an answer is
        # paid for and delivered, a refusal is dropped — and the run ends
        while tasks:
            self._raise_failure()
            freed.clear()
            await freed.wait()
        self._raise_failure()

    async def _launch(self, api: anthropic.AsyncAnthropic, item: _Item, retry: collections.deque[_Item]) -> None:
        """Wait until the governor lets ``item`` go, then start its call (back to ``retry`` on a stop)."""
        governor, tasks, freed = self.governor, self._tasks, self._freed
        while True:
            self._raise_failure()
            if self.stop.is_set() or self.halt is not None:
                retry.appendleft(item)
                return
            granted = governor.acquire(item.group, item.input_tokens, item.max_tokens)
            if isinstance(granted, Reservation):
                task = asyncio.create_task(self._call(api, item, granted, retry))
                tasks.add(task)
                task.add_done_callback(self._finished)
                self.progress.in_flight = len(tasks)
                return
            if granted == 0.0:  # every slot is taken: wait for an answer
                freed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(freed.wait(), 0.25)
            else:
                await asyncio.sleep(min(granted, 0.25))

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A call ended: free its slot; a halt names the run's cause, another error ends the run."""
        self._tasks.discard(task)
        self.progress.in_flight = len(self._tasks)
        if not task.cancelled():
            error = task.exception()
            if isinstance(error, _Halt):
                if self.halt is None:  # the first refusal names the cause; the rest repeat it
                    self.halt, self.spend_limit = error.error, error.spend_limit
            elif error is not None:
                self._failure.append(error)
        self._freed.set()

    def _raise_failure(self) -> None:
        if self._failure:
            raise self._failure[0]

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
