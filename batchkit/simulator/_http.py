"""The served simulator's HTTP/1.1 server: one event loop (:mod:`._loop`), in one thread.

A realtime request costs the simulator little (about 70 µs to answer), but the latency model
then makes it wait a quarter of a second or more: with a thread per connection, as the
stdlib's ``http.server`` has it, fifty clients meant fifty threads each sleeping out its
wait, and waking, handing over the GIL and the engine's lock cost several times the answer.
Here every connection is a protocol object on one loop, and a wait is a timer:

- The loop reads a request (request line, headers, then the body up to what the endpoint
  reads, :meth:`App.body_limit`) and asks the app for its :class:`~._app.Reply`.
- Quick calls (a message, a token count, the models; :meth:`App.inline`) are answered on the
  loop itself. Anything that may take long runs on a worker thread and comes back to the loop
  when done: batch calls (a create parses up to 256 MB; a retrieve may process what is due),
  the control endpoints, a message while batch work is due (the engine does it first), and
  every call of a simulator with a ``slow`` fault (it sleeps).
- The reply's ``delay`` (the latency model) is a ``call_later`` before its bytes are written;
  a stream's events (:meth:`MessageStream.paced`) are written on timers, chunked, each after
  its wait; results go out in pieces as the socket takes them (flow control).

Behaviour is the old server's, byte for byte where a test can see it: HTTP/1.1 keep-alive
(and HTTP/1.0, and a bare HTTP/0.9 ``GET``), ``Expect: 100-continue``, the same status line,
``Server`` and ``Date`` headers; every malformed request answered in the API's error shape —
a ``Content-Length`` that is not a whole number (or two that disagree) 400, a chunked body
411, a body that stops arriving 408 (after :attr:`_Handler.timeout` seconds without a byte),
a bad request line 400 / 505, a request line over 64 KiB 414, a header line over 64 KiB or
more than 100 headers 431, an unknown method 405 — each then closing the connection, since
where the next request starts is unknown. A body the app did not read is skipped (up to 1 MiB;
beyond, the connection is closed). A fault drops a connection on purpose, at once or mid-body.
An idle keep-alive connection is closed after :attr:`_Handler.timeout` seconds.

Where it differs from the thread-per-connection server, on purpose: a request is handed to the
app once its body has arrived (up to what the endpoint reads), so a body that stops arriving is
a 408 before the app has seen the call (it is not counted in the stats, and takes no turn of a
fault schedule); a body longer than the endpoint reads is answered at once and the rest skipped
after the answer, not before it; and :meth:`HTTPServer.close` closes every open connection (the
threads of the old server went on answering the ones already open).

What a request costs, for the record (``bench/bench_realtime.py``, the simulator's CPU per
request, on a shared 2-core machine): the app's answer is about 70 µs when requests come back
to back, but 200–330 µs when they come one at a time ~10 ms apart with a busy client beside it
(caches cold after every wait); the parsing, timers and writes here add about 100–150 µs more
under the same conditions. asyncio's loop cost about 60 µs a request more than :mod:`._loop`;
gathering requests into 10–50 ms ticks, to run them warm one after another, saved about 10%
and would have made answers late by up to a tick, so it was left out. Since then the warm path
went from about 125 to 80 µs (reads into one buffer, headers read in one pass, routes cached,
the rate-limit headers cheaper); what stays is the cold path itself: with the app answering
nothing at all, a request still costs about 200–320 µs on a loaded 2-core machine — its one or
two wake-ups and the kernel's part of receiving and sending.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.utils
import http.client
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from ._app import _REASONS, DroppedConnection, Reply
from ._loop import Listener, Loop, Timer, Transport
from ._sse import MessageStream

if TYPE_CHECKING:
    from ._app import App

__all__ = ["HTTPServer"]

_T = TypeVar("_T")

_MAX_LINE = 65536  # as http.client: the longest request or header line, and the most header lines
_MAX_HEADERS = 100
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
"""A header name as the email parser reads one (printable ASCII but ``:``)."""
_DRAIN = 1 << 20
"""A body the app did not read is skipped up to this many bytes; beyond, the connection closes."""
_BIG_BODY = 1 << 16
"""A body longer than this is received into a buffer of its length."""
_PIPELINED = 1 << 16
"""While a response is pending, reading pauses once this much of the next request waits."""
_SERVER = f"batchkit-simulator Python/{sys.version.split()[0]}"
"""The ``Server`` header, as ``BaseHTTPRequestHandler.version_string()`` makes it."""
_METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "TRACE"})
_WORKERS = 64
_CHUNKED = "Transfer-Encoding: chunked\r\n"
_CLOSE = "Connection: close\r\n"
"""Worker threads for the calls that are not answered on the loop (idle ones are kept)."""

# A connection's state: what it waits for
_LINE, _HEAD, _BODY, _BUSY = range(4)


class _Headers:
    """A request's headers in order, ``(name, value)`` as ``http.client.parse_headers`` reads
    them; looked up by name (any case) as ``email.message.Message`` looks them up."""

    __slots__ = ("_by_name", "env", "items")

    def __init__(self, items: list[tuple[str, str]], env: dict[str, str] | None = None) -> None:
        self.items = items
        self._by_name: dict[str, list[str]] | None = None
        self.env = env
        """The headers as environ keys (``HTTP_X_API_KEY``), when no two of them share a key and
        none is ``Transfer-Encoding``: then every lookup the server makes is one ``dict.get``."""

    def get_all(self, name: str) -> list[str]:
        by_name = self._by_name
        if by_name is None:
            by_name = self._by_name = {}
            for key, value in self.items:
                by_name.setdefault(key.lower(), []).append(value)
        return by_name.get(name.lower(), [])

    def get(self, name: str) -> str:
        """The first value of ``name``, or ``""``."""
        values = self.get_all(name)
        return values[0] if values else ""

    def __contains__(self, name: str) -> bool:
        return bool(self.get_all(name))


def _parse_headers(lines: list[bytes]) -> _Headers:
    """The headers as ``http.client.parse_headers`` reads them, without the email parser for
    the usual ``Name: value`` lines (it costs more than the rest of a request); anything
    unusual (a folded line, a line that is not a header) goes through the email parser."""
    items = []
    for raw in lines:
        if raw in (b"\r\n", b"\n", b""):
            break
        line = raw.decode("iso-8859-1")
        name, colon, value = line.partition(":")
        if not colon or _HEADER_NAME.fullmatch(name) is None:
            text = b"".join(lines).decode("iso-8859-1")
            return _Headers(list(email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text).raw_items()))
        items.append((name, value.lstrip(" \t").rstrip("\r\n")))
    return _Headers(items)


_HEADER_LINE = re.compile(r"^([\x21-\x39\x3b-\x7e]+):[ \t]*(.*?)\r*\n", re.MULTILINE)
"""A usual header line: its name and its value as :func:`_parse_headers` reads them."""
_ENVIRON_NAMES: dict[str, str] = {}
"""Header name as sent → its environ key (``HTTP_X_API_KEY``), for the names seen so far."""
_NO_HEADERS = _Headers([])


def _header_environ(items: list[tuple[str, str]]) -> dict[str, str] | None:
    """``{environ key: value}`` of the usual headers, in one pass; None when two headers share
    a key (a repeated header: looked up the long way) or a ``Transfer-Encoding`` is sent."""
    env: dict[str, str] = {}
    names = _ENVIRON_NAMES
    for key, value in items:
        name = names.get(key)
        if name is None:
            name = _environ_name(key)
            if len(names) < 1000:
                names[key] = name
        if name in env:
            return None
        env[name] = value
    if "HTTP_TRANSFER_ENCODING" in env:
        return None
    env.pop("", None)  # names that only look like CONTENT_LENGTH / CONTENT_TYPE: not in the environ
    return env


def _environ_name(key: str) -> str:
    """A header's environ key: ``HTTP_`` and its name, but ``CONTENT_LENGTH`` and
    ``CONTENT_TYPE`` for those two; "" for a name that only looks like them (``content_type``)."""
    lower = key.lower()
    if lower in ("content-length", "content-type"):
        return lower.upper().replace("-", "_")
    name = key.upper().replace("-", "_")
    return "" if name in ("CONTENT_LENGTH", "CONTENT_TYPE") else "HTTP_" + name


def _http_version(version: str) -> tuple[int, int] | None:
    """``(major, minor)`` of ``HTTP/x.y`` as the stdlib reads it, or None when it is not one."""
    if not version.startswith("HTTP/"):
        return None
    parts = version[5:].split(".")
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 10 for p in parts):
        return None
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:  # a digit int() does not read ("²")
        return None


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The ``Date`` header's value now (``formatdate``, made once a second)."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True))
    return _date[1]


class _Input:
    """``wsgi.input``: the body as received (``missing`` more bytes were never read)."""

    def __init__(self, data: bytes, missing: int) -> None:
        self._data = data
        self._at = 0
        self.missing = missing

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else min(len(self._data), self._at + size)
        data = self._data[self._at : end]
        self._at = end
        return data


class _Handler:
    """One HTTP/1.1 connection: requests read, answered and written in turn."""

    timeout: float = 120
    """Seconds without a byte after which an idle connection closes (a body cut short: 408)."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.app = server.app
        self.loop = server.loop
        self.transport: Transport | None = None
        self.buf = bytearray()
        self.pos = 0  # what is parsed of buf
        self.state = _LINE
        self.discard = 0  # bytes of an unread body still to skip
        self.eof = False
        self.last = 0.0  # when the last byte came (or the last response went)
        self.timer: Timer | None = None  # a pending write (a wait, a stream's next event)
        self.body: Iterator[bytes] | None = None  # a body being written as the socket takes it
        self.inbox: bytearray | None = None  # a long request body, received into its place
        self.got = 0  # how much of it has come
        self.chunked = False
        self.write_paused = False
        self.reading_paused = False
        self._new_request()

    def _new_request(self) -> None:
        self.command: str | None = None
        self.path = ""
        self.request_version = "HTTP/0.9"
        self.close_connection = True
        self.lines: list[bytes] = []
        self.headers = _NO_HEADERS
        self.length = 0

    # ------------------------------------------------------------------ the transport's calls

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername") or ("", 0)
        self.server.connections.add(self)
        self.last = self.loop.time()
        self.idle = self.loop.call_later(self.timeout, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None
        self.body = self.inbox = None
        self.idle.cancel()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def data_received(self, data: bytes) -> None:
        self.last = self.loop.time()
        if self.discard:
            skip = min(self.discard, len(data))
            self.discard -= skip
            data = data[skip:]
        rest: bytes | memoryview = data
        if self.inbox is not None and self.state == _BODY:
            rest = self._fill(data)
        self.buf += rest
        if self.state != _BUSY:
            self._advance()
        elif len(self.buf) - self.pos > _PIPELINED and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True

    def read_into(self) -> memoryview | None:
        """The rest of a long body goes straight into its place."""
        if self.inbox is None or self.state != _BODY:
            return None
        return memoryview(self.inbox)[self.got :]

    def received_into(self, n: int) -> None:
        self.last = self.loop.time()
        self.got += n
        if self.got == self.length:
            self._advance()

    def _fill(self, data: bytes | memoryview) -> bytes | memoryview:
        """Copy the body's next bytes into its place; returns what comes after it."""
        assert self.inbox is not None
        n = min(len(data), self.length - self.got)
        self.inbox[self.got : self.got + n] = data[:n]
        self.got += n
        return data[n:]

    def eof_received(self) -> bool:
        self.eof = True
        return self.state == _BUSY  # keep the socket open for the response under way

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.body is not None:
            self._pump()

    def _check_idle(self) -> None:
        if self.transport is None:
            return
        idle = self.loop.time() - self.last
        if self.state == _BUSY or idle < self.timeout:
            wait = self.timeout if self.state == _BUSY else self.timeout - idle
            self.idle = self.loop.call_later(wait, self._check_idle)
        elif self.state == _BODY:
            self._refuse(408, f"the request body did not arrive within {self.timeout} s")
        else:  # idle, or a request line or headers cut short: closed without an answer
            self.transport.close()

    # ------------------------------------------------------------------ reading

    def _advance(self) -> None:
        """Parse what has arrived, as far as it goes."""
        while self.transport is not None and self.state != _BUSY:
            if self.state == _BODY:
                if self.inbox is not None:
                    if self.got < self.length:
                        break
                    data, self.inbox = bytes(self.inbox), None
                elif len(self.buf) - self.pos < self.length:
                    break
                else:
                    data = bytes(memoryview(self.buf)[self.pos : self.pos + self.length])
                    self.pos += self.length
                self._dispatch(data, 0)
                continue
            if self.state == _LINE and self._whole_head():
                continue
            end = self.buf.find(b"\n", self.pos)
            if end == -1 and len(self.buf) - self.pos <= _MAX_LINE:
                break
            line = bytes(self.buf[self.pos : self.pos + _MAX_LINE + 1] if end == -1 else self.buf[self.pos : end + 1])
            self.pos += len(line)
            if self.state == _HEAD:
                self._header_line(line)
            elif len(line) > _MAX_LINE:
                self.request_version = self.command = ""
                self.send_error(414)
            else:
                self._request_line(str(line, "iso-8859-1").rstrip("\r\n"))
        if self.state != _BUSY:
            if self.pos == len(self.buf) and self.pos:
                self.buf.clear()
                self.pos = 0
            if self.eof and self.transport is not None:  # nothing more will come
                self.transport.close()

    def _whole_head(self) -> bool:
        """The usual case, in one step: a request line and headers that have all arrived,
        ending in a CRLF blank line, within the limits; False leaves them to the line path."""
        buf, pos = self.buf, self.pos
        end = buf.find(b"\r\n\r\n", pos, pos + _MAX_LINE)
        if end == -1:
            return False
        text = bytes(buf[pos : end + 2]).decode("iso-8859-1")  # every line, with its "\n"
        lines = text.count("\n")
        if lines > _MAX_HEADERS or "\n\n" in text or "\n\r\n" in text or text[0] in "\r\n":
            return False  # too many headers, or a blank line before the end: line by line
        first = text.index("\n") + 1
        self.pos = pos + first
        self._request_line(text[:first].rstrip("\r\n"))
        if self.state != _HEAD:
            return True
        rest = text[first:]
        items = _HEADER_LINE.findall(rest)
        if len(items) != lines - 1:  # a line that is not "Name: value": as http.client reads it
            raw = rest.encode("iso-8859-1").split(b"\n")[:-1]
            headers = _parse_headers([*(line + b"\n" for line in raw), b"\r\n"])
        else:
            headers = _Headers(items, _header_environ(items))
        self.pos = end + 4
        self._headers_done(headers)
        return True

    def _request_line(self, requestline: str) -> None:
        """The stdlib's ``parse_request`` up to the headers."""
        words = requestline.split()
        if not words:  # a blank line: the connection closes without an answer
            if self.transport is not None:
                self.transport.close()
            return
        if len(words) >= 3:  # enough to determine the protocol version
            version = words[-1]
            number = (1, 1) if version == "HTTP/1.1" else _http_version(version)
            if number is None:
                self.send_error(400, f"Bad request version ({version!r})")
                return
            if number >= (1, 1):
                self.close_connection = False
            if number >= (2, 0):
                self.send_error(505, f"Invalid HTTP version ({version[5:]})")
                return
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(400, f"Bad request syntax ({requestline!r})")
            return
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(400, f"Bad HTTP/0.9 request type ({command!r})")
                return
        self.command, self.path = command, path
        if path.startswith("//"):  # as the stdlib: not an absolute URI without a scheme
            self.path = "/" + path.lstrip("/")
        self.state = _HEAD

    def _header_line(self, line: bytes) -> None:
        """One header line, with http.client's limits and errors; the blank one ends them."""
        if len(line) > _MAX_LINE:
            self.send_error(431, "Line too long")
            return
        self.lines.append(line)
        if len(self.lines) > _MAX_HEADERS:
            self.send_error(431, "Too many headers")
            return
        if line in (b"\r\n", b"\n"):
            self._headers_done(_parse_headers(self.lines))

    def _headers_done(self, headers: _Headers) -> None:
        self.headers = headers
        env = headers.env
        if env is None:
            connection = headers.get("Connection").lower()
            expect = headers.get("Expect").lower() == "100-continue"
        else:
            connection = env.get("HTTP_CONNECTION", "").lower()
            expect = "HTTP_EXPECT" in env and env["HTTP_EXPECT"].lower() == "100-continue"
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = expect and self.request_version >= "HTTP/1.1"
        if expect and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.command not in _METHODS:
            self.send_error(501)
            return
        length = self._body_length()
        if isinstance(length, tuple):
            self._refuse(*length)
            return
        self.length = length
        limit = self.app.body_limit(self.command, self.path.partition("?")[0])
        if length <= limit:
            self.state = _BODY  # wait for all of it
            if length > _BIG_BODY:  # received straight into its place, not appended and cut out
                self.inbox, self.got = bytearray(length), 0
                with memoryview(self.buf) as view:  # let go of before the buffer is cut
                    left = len(self._fill(view[self.pos :]))
                del self.buf[: len(self.buf) - left]
                self.pos = 0
            return
        # more than the app reads (it refuses or ignores it): answer now, skip what comes
        here = min(len(self.buf) - self.pos, length)
        self.pos += here
        self._dispatch(b"", length - here)

    def _body_length(self) -> int | tuple[int, str]:
        """The body's length from the headers, or ``(status, message)`` when it cannot be known."""
        env = self.headers.env
        if env is not None:  # one Content-Length at most, and no Transfer-Encoding
            raw = env.get("CONTENT_LENGTH", "0").strip()
            if raw.isascii() and raw.isdigit():
                return int(raw)
            return 400, f"Content-Length: {raw!r} is not a whole number of bytes"
        if "Transfer-Encoding" in self.headers:
            return 411, "Transfer-Encoding is not supported: send the body with a Content-Length"
        values = {value.strip() for value in self.headers.get_all("Content-Length")}
        if len(values) > 1:
            return 400, f"Content-Length: conflicting values {sorted(values)}"
        raw = values.pop() if values else "0"
        if not (raw.isascii() and raw.isdigit()):
            return 400, f"Content-Length: {raw!r} is not a whole number of bytes"
        return int(raw)

    # ------------------------------------------------------------------ answering

    def _dispatch(self, data: bytes, missing: int) -> None:
        """Hand the request to the app: here on the loop, or on a worker thread."""
        self.state = _BUSY
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        assert self.command is not None
        path, _, query = self.path.partition("?")
        body = _Input(data, missing)
        environ = self._environ(path, query, body)
        if self.app.inline(self.command, path):
            self._answer(self._call(environ), body)
        else:
            self.server.submit(lambda: self._call(environ), lambda reply: self._answer(reply, body))

    def _call(self, environ: dict[str, Any]) -> Reply | None:
        """The app's reply (None: drop the connection now); a bug is still an answer."""
        try:
            return self.app.respond(environ)
        except DroppedConnection:
            return None
        except Exception as exc:  # a bug: still an answer (and the traceback on stderr), not a cut
            traceback.print_exc()
            self.close_connection = True
            status = 500
            return self.app.refuse(status, f"the simulator failed on this request: {type(exc).__name__}: {exc}")

    def _answer(self, reply: Reply | None, body: _Input) -> None:
        if self.transport is None:
            return
        if reply is None:
            self._drop()
            return
        if body.missing:  # a body the app did not read: skip a little, else close
            if body.missing <= _DRAIN:
                self.discard = body.missing
            else:
                self.close_connection = True
        if reply.delay > 0:
            self.timer = self.loop.call_later(reply.delay, self._send, reply)
        else:
            self._send(reply)

    def _send(self, reply: Reply) -> None:
        """Write the reply: the whole of it, or its head and then its body as it goes."""
        self.timer = None
        transport = self.transport
        if transport is None:
            return
        if reply.drop is not None:
            self._drop()
            return
        # A body of unknown length (a stream of server-sent events) goes out chunked, each
        # piece when it is due, and the connection stays open for the next request.
        head, chunked = self._head(reply.status, reply.headers, self.command != "HEAD")
        body = reply.body
        if type(body) is list and not chunked:  # the whole answer at hand: one write
            transport.write(head if self.command == "HEAD" else head + b"".join(body))
            self._done()
            return
        transport.write(head)
        if self.command == "HEAD":
            self._done()
        elif chunked and isinstance(body, MessageStream):
            self._paced(body.paced(), None)
        else:
            self.body, self.chunked = iter(body), chunked
            self._pump()

    def _paced(self, events: Iterator[tuple[float, bytes]], due: bytes | None) -> None:
        """Write a stream's events, each after its wait (a timer), then the last chunk."""
        self.timer = None
        transport = self.transport
        if transport is None:
            return
        if due:
            transport.write(b"%x\r\n%s\r\n" % (len(due), due))
        for wait, data in events:
            if wait > 0:
                self.timer = self.loop.call_later(wait, self._paced, events, data)
                return
            if data:
                transport.write(b"%x\r\n%s\r\n" % (len(data), data))
        transport.write(b"0\r\n\r\n")
        self._done()

    def _pump(self) -> None:
        """Write the body's pieces while the socket takes them (resumed by ``resume_writing``)."""
        body, transport = self.body, self.transport
        if body is None or transport is None:
            return
        try:
            while not self.write_paused:
                chunk = next(body, None)
                if chunk is None:
                    break
                if not self.chunked:
                    transport.write(chunk)
                elif chunk:
                    transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                return  # the socket is full: resume_writing goes on
        except DroppedConnection:  # a fault: cut the body here
            self.body = None
            self._drop()
            return
        self.body = None
        if self.chunked:
            transport.write(b"0\r\n\r\n")
        self._done()

    def _done(self) -> None:
        """The response is written: close, or read the next request."""
        transport = self.transport
        if transport is None:
            return
        if self.close_connection:
            transport.close()
            return
        self._new_request()
        self.state = _LINE
        self.last = self.loop.time()
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()
        if self.pos < len(self.buf):  # a request that came meanwhile: next turn of the loop
            self.loop.call_soon(self._advance)
        elif self.eof:
            transport.close()

    def _drop(self) -> None:
        """Close the connection on purpose (a fault): what is written goes, then the end."""
        self.close_connection = True
        self.body = None
        if self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------------ what is written

    def send_error(self, code: int, message: str | None = None) -> None:
        """The stdlib's refusals (bad request line, headers too long, unknown method) in the
        API's error shape rather than an HTML page."""
        if code == 501:  # a method no route knows
            code, message = 405, f"Method {self.command} not allowed"
        if self.request_version == "HTTP/0.9":  # the request line was not understood: answer in 1.1
            self.request_version = "HTTP/1.1"
        self._refuse(code, message or _REASONS.get(code, "Bad Request"))

    def _refuse(self, status: int, message: str) -> None:
        """Answer in the API's error shape and close: the request's framing cannot be trusted."""
        self.close_connection = True
        self.state = _BUSY
        reply = self.app.refuse(status, message)
        head, _ = self._head(reply.status, reply.headers, False)
        if self.transport is not None:
            self.transport.write(head if self.command == "HEAD" else head + b"".join(reply.body))
        self._done()

    def _head(self, status: str, headers: list[tuple[str, str]], may_chunk: bool) -> tuple[bytes, bool]:
        """The status line and headers, as ``send_response``, ``send_header`` and ``end_headers``
        write them (``Server``, ``Date``, the app's, then ``Transfer-Encoding`` and
        ``Connection``), in one piece (no head for an HTTP/0.9 request); and whether the body
        goes chunked (``may_chunk`` and no ``Content-Length``)."""
        block = "".join([f"{key}: {value}\r\n" for key, value in headers])
        names = "\n" + block.lower()  # each header's name, lowercased, follows a "\n"
        chunked = may_chunk and "\ncontent-length:" not in names
        if "\nconnection:" in names:
            for key, value in headers:
                if key.lower() == "connection":  # as send_header does
                    if value.lower() == "close":
                        self.close_connection = True
                    elif value.lower() == "keep-alive":
                        self.close_connection = False
        if self.request_version == "HTTP/0.9":
            return b"", chunked
        text = (
            f"HTTP/1.1 {status}\r\nServer: {_SERVER}\r\nDate: {_http_date()}\r\n{block}"
            f"{_CHUNKED if chunked else ''}{_CLOSE if self.close_connection else ''}\r\n"
        )
        return text.encode("latin-1", "strict"), chunked

    def _environ(self, path: str, query: str, body: _Input) -> dict[str, Any]:
        """The WSGI environ of this request (headers as ``HTTP_*``, as a WSGI server makes it)."""
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.peer[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        env = self.headers.env
        if env is not None:  # no header repeated: the last value is the first
            environ.update(env)
            if "CONTENT_LENGTH" in env:
                environ["CONTENT_LENGTH"] = str(self.length)
            return environ
        content_type = None
        # raw_items: the values as items() gives them (read as Latin-1, they hold no surrogates
        # for the policy to mend), without a policy call per header
        for key, value in self.headers.items:
            name = _ENVIRON_NAMES.get(key)
            if name is None:
                name = _environ_name(key)
                if len(_ENVIRON_NAMES) < 1000:
                    _ENVIRON_NAMES[key] = name
            if name == "CONTENT_LENGTH":
                environ[name] = str(self.length)
            elif name == "CONTENT_TYPE":
                if content_type is None:
                    environ[name] = content_type = value
            elif name:
                environ[name] = value
        return environ


class HTTPServer:
    """``app`` served on ``(host, port)`` by one event loop in a daemon thread.

    The socket is bound here (an ``OSError`` if the port is taken), and served from the
    moment this returns. :meth:`close` stops the loop and closes every connection.
    """

    def __init__(self, app: App, host: str, port: int, name: str = "batchkit-sim") -> None:
        self.app = app
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        self.server_address: tuple[str, int] = sock.getsockname()[:2]
        self.loop = Loop()
        self.connections: set[_Handler] = set()
        self._listener = Listener(self.loop, sock, lambda: _Handler(self))
        self._workers = ThreadPoolExecutor(_WORKERS, thread_name_prefix=f"{name}-worker")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = self.loop
        try:
            loop.run_forever()
        finally:
            self._listener.close()
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.abort()
            loop.run_ready()  # the aborted connections' connection_lost
            loop.close()

    def submit(self, work: Callable[[], _T], then: Callable[[_T], None]) -> None:
        """Run ``work`` on a worker thread, then ``then(its result)`` on the loop."""

        def run() -> None:
            result = work()
            with contextlib.suppress(RuntimeError):  # the server closed meanwhile
                self.loop.call_soon_threadsafe(then, result)

        with contextlib.suppress(RuntimeError):  # closed: nothing more is answered
            self._workers.submit(run)

    def close(self) -> None:
        """Stop serving: no new connection, every open one closed (idempotent)."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self._workers.shutdown(wait=False, cancel_futures=True)
