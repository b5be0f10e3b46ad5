"""The realtime sender: many ``POST /v1/messages`` calls at once, within the rate limits.

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

Which async client: ``async_client=`` (an ``AsyncAnthropic``, or a function returning one,
called on the worker's loop), else the sync client's twin (:func:`~batchkit.backends.twins.async_twin`:
one registered with :func:`~batchkit.backends.twins.register_async_twin`, the in-process
simulator's own, or one built from the sync client's settings).

What one run does with each request and answer is :mod:`.dispatch`'s; this module owns the
threads: the worker that runs it, and the caller's side that receives the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

import anthropic

from ..errors import SpendLimitError
from .dispatch import Progress, Request, Run
from .limits import Limits
from .ratelimit import Governor
from .twins import AsyncClientSource, async_twin

__all__ = ["RealtimeSender"]

_END = object()


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

    def async_client(self) -> tuple[anthropic.AsyncAnthropic, bool]:
        """The async client of a run (made on the run's own loop), and whether the run closes it
        when it ends (not an instance the caller gave)."""
        source = self._async_source
        if isinstance(source, anthropic.AsyncAnthropic):
            return source, False
        if source is not None:
            made = source()
        else:
            from .clients import resolve_client

            made = async_twin(resolve_client(self.client))()
        return made, True

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
        run = Run(self, requests, chunks.put, stop)
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
    def _worker(run: Run, emit_end: Callable[[Any], None]) -> None:
        try:
            asyncio.run(run.run())
        except BaseException as exc:  # a bug, not an API outcome: hand it to the caller
            run.halt = run.halt or exc
        finally:
            emit_end(_END)

    @staticmethod
    def _finish(run: Run) -> Progress:
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

        run = Run(self, requests, emit, stop)
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
