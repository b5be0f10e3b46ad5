"""A small event loop for the served simulator: sockets, timers, and nothing else.

:mod:`._http` needs from a loop only this: a listening socket whose connections each get a
protocol (``data_received``, ``eof_received``, ``connection_lost``, ``pause_writing`` /
``resume_writing``), a transport per connection (``write``, ``close``, ``abort``,
``pause_reading`` / ``resume_reading``), timers (``call_later``), callbacks from this thread
(``call_soon``) and from others (``call_soon_threadsafe``). asyncio does all that, and more per
event: a task for every accepted connection, a handle and a context switch of ``contextvars``
for every callback. The served simulator is a latency model with about 70 µs of work per
request, woken some hundreds of times a second, so that machinery was a good part of its cost;
this loop does the same with epoll (a ``selectors`` selector where there is no epoll), a heap
of timers and plain callbacks. The semantics follow asyncio's selector transports where the
server relies on them: ``write`` sends at once what the socket takes and buffers the rest (the
protocol is told to pause above :data:`HIGH_WATER` and to resume at :data:`LOW_WATER`);
``close`` lets the buffer drain, then closes; ``abort`` closes at once; ``connection_lost`` is
always called once, from the loop, after the socket is closed.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import math
import select
import selectors
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["HIGH_WATER", "LOW_WATER", "Loop", "Timer", "Transport"]

HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_RECV = 256 * 1024


class Connection(Protocol):
    """What a transport calls on its protocol (as asyncio's ``Protocol``)."""

    def connection_made(self, transport: Transport) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def read_into(self) -> memoryview | None:
        """Where the next bytes should go (then :meth:`received_into`), or None: to
        :meth:`data_received` (as asyncio's ``BufferedProtocol.get_buffer``)."""

    def received_into(self, n: int) -> None: ...
    def eof_received(self) -> bool: ...
    def connection_lost(self, exc: Exception | None) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...


class Timer:
    """A callback due at ``when`` (``Loop.time()``); :meth:`cancel` before it runs."""

    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Epoll:
    """The part of a ``selectors`` selector the loop uses, straight on ``select.epoll``:
    :meth:`ready` gives ``(callback, events)`` pairs without a key object and a Python-level
    translation step each (the selector's ``select`` was a tenth of a request's loop work)."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._fds: dict[int, tuple[Callable[[int], None], int]] = {}

    def register(self, sock: socket.socket, events: int, callback: Callable[[int], None]) -> None:
        fd = sock.fileno()
        self._epoll.register(fd, _epoll_mask(events))
        self._fds[fd] = (callback, events)

    def modify(self, sock: socket.socket, events: int, callback: Callable[[int], None]) -> None:
        fd = sock.fileno()
        self._epoll.modify(fd, _epoll_mask(events))
        self._fds[fd] = (callback, events)

    def unregister(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        del self._fds[fd]
        with contextlib.suppress(OSError):  # closed meanwhile: gone from epoll already (as selectors)
            self._epoll.unregister(fd)

    def ready(self, timeout: float | None) -> list[tuple[Callable[[int], None], int]]:
        """What is ready within ``timeout`` seconds (None: no limit), as ``selectors`` reads it."""
        if timeout is None:
            wait = -1.0
        elif timeout <= 0:
            wait = 0.0
        else:  # whole milliseconds, rounded up, as the selector does (else it wakes early)
            wait = math.ceil(timeout * 1e3) * 1e-3
        out = []
        fds = self._fds
        for fd, event in self._epoll.poll(wait, max(len(fds), 1)):
            entry = fds.get(fd)
            if entry is not None:
                mask = (_WRITE if event & ~select.EPOLLIN else 0) | (_READ if event & ~select.EPOLLOUT else 0)
                out.append((entry[0], mask & entry[1]))
        return out

    def close(self) -> None:
        self._epoll.close()


class _Selector:
    """``selectors.DefaultSelector`` where there is no epoll, with :class:`_Epoll`'s ``ready``."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self.register = self._selector.register
        self.modify = self._selector.modify
        self.unregister = self._selector.unregister
        self.close = self._selector.close

    def ready(self, timeout: float | None) -> list[tuple[Callable[[int], None], int]]:
        return [(key.data, mask) for key, mask in self._selector.select(timeout)]


def _epoll_mask(events: int) -> int:
    return (select.EPOLLIN if events & _READ else 0) | (select.EPOLLOUT if events & _WRITE else 0)


class Loop:
    """One thread's loop: ``run_forever`` until ``stop``; the other methods are its API."""

    def __init__(self) -> None:
        self.selector: _Epoll | _Selector = _Epoll() if hasattr(select, "epoll") else _Selector()
        self._ready: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._closed = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, _READ, self._woken)
        self._lock = threading.Lock()  # call_soon_threadsafe against close
        self.time = time.monotonic
        self.received = memoryview(bytearray(_RECV))
        """Where every connection's bytes are received (then copied out, at their length):
        ``recv(256 KiB)`` allocates 256 KiB for each read, which costs more (tens of µs, the
        allocator maps and unmaps it) than a request's parsing."""

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        self._ready.append((callback, args))

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(self.time() + delay, callback, args)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """From any thread; ``RuntimeError`` once the loop is closed."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the loop is closed")
            self._ready.append((callback, args))
            with contextlib.suppress(BlockingIOError):  # the pipe is full: the loop is awake anyway
                self._wake_w.send(b"\0")

    def _woken(self, mask: int) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass

    def stop(self) -> None:
        self._stopping = True

    def run_forever(self) -> None:
        ready, timers, poll = self._ready, self._timers, self.selector.ready
        while not self._stopping:
            if ready:
                timeout: float | None = 0
            elif timers:
                timeout = max(0.0, timers[0][0] - self.time())
            else:
                timeout = None
            for callback, mask in poll(timeout):
                try:
                    callback(mask)
                except Exception:  # a bug in one connection's code must not stop the server
                    traceback.print_exc()
            if timers:
                now = self.time()
                while timers and timers[0][0] <= now:
                    timer = heapq.heappop(timers)[2]
                    if not timer.cancelled:
                        ready.append((timer.callback, timer.args))
            for _ in range(len(ready)):
                callback, args = ready.popleft()
                _run(callback, args)
        self._stopping = False

    def run_ready(self) -> None:
        """Run the callbacks already due (after ``stop``: the last ``connection_lost`` calls)."""
        for _ in range(len(self._ready)):
            callback, args = self._ready.popleft()
            _run(callback, args)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()
        self._ready.clear()
        self._timers.clear()


def _run(callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        callback(*args)
    except Exception:  # a bug in one connection's code must not stop the server
        traceback.print_exc()


class Transport:
    """One accepted connection's socket, read and written by the loop."""

    def __init__(self, loop: Loop, sock: socket.socket, protocol: Connection) -> None:
        self._loop = loop
        self._sock = sock
        self._protocol = protocol
        self._buffer = bytearray()
        self._reading = True
        self._closing = False
        self._lost = False
        self._paused = False
        self._events = _READ
        try:
            self._peer = sock.getpeername()
        except OSError:
            self._peer = ("", 0)
        loop.selector.register(sock, _READ, self._io)

    def get_extra_info(self, name: str) -> Any:
        return self._peer if name == "peername" else None

    def is_closing(self) -> bool:
        return self._closing

    # ------------------------------------------------------------------ events

    def _update(self) -> None:
        events = (_READ if self._reading and not self._closing else 0) | (_WRITE if self._buffer else 0)
        if events == self._events or self._lost:
            return
        selector = self._loop.selector
        if not self._events:
            selector.register(self._sock, events, self._io)
        elif not events:
            selector.unregister(self._sock)
        else:
            selector.modify(self._sock, events, self._io)
        self._events = events

    def _io(self, mask: int) -> None:
        try:
            if mask & _WRITE:
                self._write_ready()
            if mask & _READ and self._reading and not self._closing and not self._lost:
                self._read_ready()
        except Exception:  # a bug in the protocol: reported, and this connection closed
            traceback.print_exc()
            self.abort()

    def _read_ready(self) -> None:
        into = self._protocol.read_into()
        try:
            if into is None:  # into the loop's buffer, then copied out at its length
                n = self._sock.recv_into(self._loop.received)
            else:
                n = self._sock.recv_into(into)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        finally:
            if into is not None:
                into.release()
        if n:
            if into is None:
                self._protocol.data_received(self._loop.received[:n].tobytes())
            else:
                self._protocol.received_into(n)
            return
        self._reading = False  # the peer is done sending
        self._update()
        if not self._protocol.eof_received():
            self.close()

    # ------------------------------------------------------------------ writing

    def write(self, data: bytes) -> None:
        if self._lost or not data:
            return
        if not self._buffer:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fail(exc)
                return
            if sent == len(data):
                return
            self._buffer += memoryview(data)[sent:]
            self._update()
        else:
            self._buffer += data
        if not self._paused and len(self._buffer) > HIGH_WATER:
            self._paused = True
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        try:
            sent = self._sock.send(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        del self._buffer[:sent]
        if self._paused and len(self._buffer) <= LOW_WATER:
            self._paused = False
            self._protocol.resume_writing()
        if not self._buffer:
            self._update()
            if self._closing:
                self._finish(None)

    # ------------------------------------------------------------------ the end

    def pause_reading(self) -> None:
        self._reading = False
        self._update()

    def resume_reading(self) -> None:
        self._reading = True
        self._update()

    def close(self) -> None:
        """Stop reading; close once what is written has gone."""
        if self._closing:
            return
        self._closing = True
        self._update()
        if not self._buffer:
            self._loop.call_soon(self._finish, None)

    def abort(self) -> None:
        """Close at once, dropping what is not sent."""
        self._buffer.clear()
        self._closing = True
        self._finish(None)

    def _fail(self, exc: OSError) -> None:
        self._buffer.clear()
        self._closing = True
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        if self._events:
            self._loop.selector.unregister(self._sock)
            self._events = 0
        self._sock.close()
        self._loop.call_soon(self._protocol.connection_lost, exc)


class Listener:
    """A listening socket whose connections get ``protocol_factory()`` each."""

    def __init__(self, loop: Loop, sock: socket.socket, protocol_factory: Callable[[], Connection]) -> None:
        self._loop = loop
        self._sock = sock
        self._factory = protocol_factory
        sock.setblocking(False)
        loop.selector.register(sock, _READ, self._accept)

    def _accept(self, mask: int) -> None:
        for _ in range(128):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of file descriptors, or the peer gave up already
                return
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio
            protocol = self._factory()
            protocol.connection_made(Transport(self._loop, conn, protocol))

    def close(self) -> None:
        self._loop.selector.unregister(self._sock)
        self._sock.close()
