"""Serving the simulator over real HTTP: in a background thread (:func:`serve`) or as a
separate process (:func:`spawn`).

The HTTP server is the stdlib's ``http.server`` with one thread per connection, HTTP/1.1
keep-alive, and one thing a generic WSGI server cannot do: drop a connection on purpose
(mid-body for results) when a fault says so. It binds loopback addresses only.

Every request gets an HTTP answer in the API's error shape, however malformed: a
``Content-Length`` that is not a whole number (or two that disagree) is a 400, a chunked body a
411, a body that stops arriving a 408, a bad request line or oversized headers the stdlib's
status — each then closes the connection, since where the next request starts is unknown.
"""

from __future__ import annotations

import email.parser
import email.utils
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self, cast

from ._app import _REASONS, DroppedConnection
from ._config import Faults, Processing
from ._simulator import SIM_API_KEY, Simulator

if TYPE_CHECKING:
    import anthropic

__all__ = ["LOOPBACK", "Server", "SpawnedSimulator", "serve", "spawn"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
READY_PREFIX = "batchkit simulator listening on "


class _Input:
    """``wsgi.input`` over the socket, limited to Content-Length, counting what was read."""

    def __init__(self, rfile: IO[bytes], length: int) -> None:
        self._rfile = rfile
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self.left:
            size = self.left
        data = self._rfile.read(size) if size else b""
        self.left -= len(data)
        return data


_MAX_LINE = 65536  # as http.client: the longest header line, and the most header lines
_MAX_HEADERS = 100
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
"""A header name as the email parser reads one (printable ASCII but ``:``)."""


def _read_header_lines(rfile: IO[bytes]) -> list[bytes]:
    """The header lines up to and including the blank one, with http.client's limits and errors."""
    lines = []
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > _MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return lines


def _parse_headers(lines: list[bytes]) -> http.client.HTTPMessage:
    """The headers as ``http.client.parse_headers`` reads them, without the email parser for
    the usual ``Name: value`` lines (it costs more than the rest of a request); anything
    unusual (a folded line, a line that is not a header) goes through the email parser."""
    message = http.client.HTTPMessage()
    for raw in lines:
        if raw in (b"\r\n", b"\n", b""):
            break
        line = raw.decode("iso-8859-1")
        name, colon, value = line.partition(":")
        if not colon or _HEADER_NAME.fullmatch(name) is None:
            text = b"".join(lines).decode("iso-8859-1")
            return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)
        message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
    return message


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "batchkit-simulator"
    timeout = 120  # idle keep-alive connections end after this
    raw_requestline: bytes  # set by handle_one_request

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def parse_request(self) -> bool:
        """The stdlib's ``parse_request``, with the headers read by :func:`_parse_headers`."""
        self.command = None  # type: ignore[assignment]  # set in case of error on the first line
        self.request_version = version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if not words:
            return False
        if len(words) >= 3:  # enough to determine the protocol version
            version = words[-1]
            number = _http_version(version)
            if number is None:
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            if number >= (1, 1):
                self.close_connection = False
            if number >= (2, 0):
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({version[5:]})")
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command, self.path = command, path
        if self.path.startswith("//"):  # as the stdlib: not an absolute URI without a scheme
            self.path = "/" + self.path.lstrip("/")
        try:
            self.headers = _parse_headers(_read_header_lines(cast(IO[bytes], self.rfile)))
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(err))
            return False
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = self.headers.get("Expect", "").lower() == "100-continue" and self.request_version >= "HTTP/1.1"
        return not expect or self.handle_expect_100()

    def _body_length(self) -> int | tuple[int, str]:
        """The body's length from the headers, or ``(status, message)`` when it cannot be known."""
        if "Transfer-Encoding" in self.headers:
            return 411, "Transfer-Encoding is not supported: send the body with a Content-Length"
        values = {value.strip() for value in self.headers.get_all("Content-Length") or ()}
        if len(values) > 1:
            return 400, f"Content-Length: conflicting values {sorted(values)}"
        raw = values.pop() if values else "0"
        if not (raw.isascii() and raw.isdigit()):
            return 400, f"Content-Length: {raw!r} is not a whole number of bytes"
        return int(raw)

    def _refuse(self, status: int, message: str) -> None:
        """Answer in the API's error shape and close: the request's framing cannot be trusted."""
        self.close_connection = True
        started: list[Any] = []

        def start_response(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status_line, headers]

        body = b"".join(self.server.app.refuse(status, message, start_response))  # type: ignore[attr-defined]
        status_line, headers = started
        self.send_response(status, status_line.split(" ", 1)[1])
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The stdlib's own refusals (bad request line, headers too long, unknown method) in the
        # API's error shape rather than an HTML page.
        if code == 501:  # a method no route knows
            code, message = 405, f"Method {self.command} not allowed"
        if self.request_version == "HTTP/0.9":  # the request line was not understood: answer in 1.1
            self.request_version = "HTTP/1.1"
        try:
            self._refuse(code, message or explain or _REASONS.get(code, "Bad Request"))
        except OSError:
            self.close_connection = True

    def _serve(self) -> None:
        app = self.server.app  # type: ignore[attr-defined]
        path, _, query = self.path.partition("?")
        length = self._body_length()
        if isinstance(length, tuple):
            self._refuse(*length)
            return
        body = _Input(cast(IO[bytes], self.rfile), length)
        environ = self._environ(path, query, body, length)
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        try:
            result = app(environ, start_response)
        except DroppedConnection:
            self._drop()
            return
        except TimeoutError:  # the body stopped arriving before Content-Length was reached
            self._refuse(408, f"the request body did not arrive within {self.timeout} s")
            return
        except Exception as exc:  # a bug: still an answer (and the traceback on stderr), not a cut
            traceback.print_exc()
            self._refuse(500, f"the simulator failed on this request: {type(exc).__name__}: {exc}")
            return
        status, headers = started
        if body.left:  # body not consumed (e.g. 413, 401): drain a little, else close
            if body.left <= 1 << 20:
                body.read()
            else:
                self.close_connection = True
        # A body of unknown length (a stream of server-sent events) goes out chunked, each
        # piece as it is made, and the connection stays open for the next request.
        chunked = self.command != "HEAD" and not any(k.lower() == "content-length" for k, _ in headers)
        head = self._head(status, headers, chunked)
        try:
            if type(result) is list and not chunked:  # the whole answer at hand: one write
                self.wfile.write(head if self.command == "HEAD" else head + b"".join(result))
                self.wfile.flush()
            else:
                self.wfile.write(head)
                self._write(result, chunked)
        except DroppedConnection:
            self._drop()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _head(self, status: str, headers: list[tuple[str, str]], chunked: bool) -> bytes:
        """The status line and headers, as ``send_response``, ``send_header`` and ``end_headers``
        write them (``Server``, ``Date``, the app's, then ``Transfer-Encoding`` and
        ``Connection``), in one piece: no head for an HTTP/0.9 request."""
        lines = [
            f"{self.protocol_version} {status}\r\n",
            f"Server: {self.version_string()}\r\n",
            f"Date: {_http_date()}\r\n",
        ]
        for key, value in headers:
            lines.append(f"{key}: {value}\r\n")
            if key.lower() == "connection":  # as send_header does
                if value.lower() == "close":
                    self.close_connection = True
                elif value.lower() == "keep-alive":
                    self.close_connection = False
        if chunked:
            lines.append("Transfer-Encoding: chunked\r\n")
        if self.close_connection:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        return b"" if self.request_version == "HTTP/0.9" else "".join(lines).encode("latin-1", "strict")

    def _environ(self, path: str, query: str, body: _Input, length: int) -> dict[str, Any]:
        """The WSGI environ of this request (headers as ``HTTP_*``, as a WSGI server makes it)."""
        host, port = cast(tuple[str, int], self.server.server_address)[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        content_type = None
        # raw_items: the values as items() gives them (read as Latin-1, they hold no surrogates
        # for the policy to mend), without a policy call per header
        for key, value in self.headers.raw_items():
            lower = key.lower()
            if lower == "content-length":
                environ["CONTENT_LENGTH"] = str(length)
            elif lower == "content-type" and content_type is None:
                environ["CONTENT_TYPE"] = content_type = value
            name = key.upper().replace("-", "_")
            if name not in ("CONTENT_LENGTH", "CONTENT_TYPE"):
                environ["HTTP_" + name] = value
        return environ

    def _write(self, result: Any, chunked: bool) -> None:
        """Send the response body: chunked pieces as they are made, else as is (none for HEAD)."""
        if chunked:
            for chunk in result:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        elif self.command != "HEAD":
            for chunk in result:
                self.wfile.write(chunk)
        self.wfile.flush()

    def _drop(self) -> None:
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = _serve


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The ``Date`` header's value now (``formatdate``, made once a second)."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True))
    return _date[1]


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


class _Workers:
    """Daemon threads that take connections from a queue and stay for the next one (idle ones
    leave after ``idle_timeout`` seconds): a thread per connection, without starting one each
    time. As ThreadingMixIn's daemon threads, they are not waited for when the server closes."""

    def __init__(self, run: Callable[[Any, Any], None], idle_timeout: float = 30.0) -> None:
        self._run = run
        self._jobs: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()
        self._idle_timeout = idle_timeout

    def submit(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._jobs.put((request, client_address))
            if self._idle:
                self._idle -= 1  # that waiting thread takes it
                return
        threading.Thread(target=self._work, daemon=True).start()

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._idle -= 1
                        return
                continue
            try:
                self._run(*job)
            finally:
                with self._lock:
                    self._idle += 1


class _HTTPServer(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def process_request(self, request: Any, client_address: Any) -> None:
        # ThreadingMixIn starts a thread per connection; a client that opens one per request
        # (a connection pool smaller than its concurrency) made that a cost of every request.
        workers = vars(self).get("_workers")
        if workers is None:
            workers = self._workers = _Workers(self.process_request_thread)
        workers.submit(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing its keep-alive connection is normal; anything else is reported.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


def _check_loopback(host: str) -> None:
    if host not in LOOPBACK:
        raise ValueError(f"the simulator binds loopback addresses only ({', '.join(LOOPBACK)}), not {host!r}")


class _OverHTTP:
    """SDK clients for a simulator reached over real HTTP at ``base_url``."""

    base_url: str
    api_key: str = SIM_API_KEY

    def client(self, **kwargs: Any) -> anthropic.Anthropic:
        """A sync SDK client over real HTTP to this simulator."""
        kwargs.setdefault("api_key", self.api_key)
        kwargs.setdefault("base_url", self.base_url)
        import anthropic  # only here: a served simulator's process never needs the SDK

        return anthropic.Anthropic(**kwargs)

    def async_client(self, **kwargs: Any) -> anthropic.AsyncAnthropic:
        """An async SDK client over real HTTP to this simulator."""
        kwargs.setdefault("api_key", self.api_key)
        kwargs.setdefault("base_url", self.base_url)
        import anthropic

        return anthropic.AsyncAnthropic(**kwargs)


class Server(_OverHTTP):
    """A :class:`Simulator` served over HTTP on loopback from a background thread.

    Use :func:`serve` to make one. ``base_url`` is ``http://127.0.0.1:PORT``.
    """

    def __init__(self, simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        _check_loopback(host)
        self.simulator = simulator
        self.stop: Callable[[], None] = self.close
        """Stop serving (:func:`batchkit.start_simulator` also restores the default client)."""
        server_class = _HTTPServer6 if host == "::1" else _HTTPServer
        self._httpd = server_class((host, port), _Handler)
        self._httpd.app = simulator.wsgi_app  # type: ignore[attr-defined]
        self.host = host
        self.port = self._httpd.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"batchkit-sim:{self.port}",
            daemon=True,
        )
        self._thread.start()
        # Served, batches are worked through in the background as they come due (in process,
        # lazily, when the next request arrives): a client's next create need not wait.
        simulator.engine.start_worker()

    def stats(self) -> dict[str, Any]:
        return self.simulator.stats()

    def advance(self, seconds: float) -> None:
        self.simulator.advance(seconds)

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
            self._httpd.server_close()
        self.simulator.engine.stop_worker()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0) -> Server:
    """Serve ``simulator`` over HTTP on loopback in a background thread.

    The returned :class:`Server` is already running; use it as a context manager (or call
    ``close()``) to stop it.

    >>> with serve(Simulator(), port=0) as server:      # doctest: +SKIP
    ...     client = server.client()
    """
    return Server(simulator, host=host, port=port)


# --------------------------------------------------------------------------- spawn


def _rates(mapping: dict[Any, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in mapping.items() if v)


def _schedule_arg(faults: Faults) -> str:
    entries = []
    for target, nth, action in faults.schedule:
        nths = [nth] if isinstance(nth, int) else list(nth)
        entries.append(f"{target}:{'/'.join(str(n) for n in nths)}:{action}")
    return ";".join(entries)


def cli_args(processing: Processing | None = None, faults: Faults | None = None) -> list[str]:
    """Command-line flags that reproduce ``processing`` and ``faults``."""
    args: list[str] = []
    if processing is not None:
        args += [
            "--fixed-latency",
            repr(processing.fixed_latency),
            "--per-request",
            repr(processing.per_request),
            "--concurrency",
            str(processing.concurrency),
            "--cancel-latency",
            repr(processing.cancel_latency),
        ]
    if faults is not None:
        if faults.errored_rate:
            args += ["--errored-rate", _rates(dict(faults.errored_rate))]
        if faults.expired_rate:
            args += ["--expired-rate", repr(faults.expired_rate)]
        if faults.http_error_rate:
            args += ["--http-error-rate", _rates(dict(faults.http_error_rate))]
        if faults.drop_results_rate:
            args += ["--drop-results-rate", repr(faults.drop_results_rate)]
        if faults.slow:
            args += ["--slow", repr(faults.slow)]
        if faults.rpm is not None:
            args += ["--rpm", str(faults.rpm)]
        if faults.tpm is not None:
            args += ["--tpm", str(faults.tpm)]
        args += ["--retry-after", "none" if faults.retry_after is None else repr(faults.retry_after)]
        if faults.schedule:
            args += ["--fault-schedule", _schedule_arg(faults)]
        if faults.overloaded_bursts is not None:
            period, length = faults.overloaded_bursts
            args += ["--overloaded-bursts", f"{period!r}:{length!r}"]
    return args


class SpawnedSimulator(_OverHTTP):
    """A simulator running as a separate process (``python -m batchkit.simulator``)."""

    def __init__(self, argv: list[str], env: dict[str, str], startup_timeout: float) -> None:
        if "--api-key" in argv[:-1]:  # the child accepts only the keys given: use the first
            self.api_key = argv[argv.index("--api-key") + 1]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
        self.pid = self.process.pid
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None

        def pump() -> None:
            for line in stdout:
                lines.put(line)
            lines.put("")

        self._reader = threading.Thread(target=pump, daemon=True)
        self._reader.start()
        try:
            first = lines.get(timeout=startup_timeout)
        except queue.Empty:
            self.close()
            raise RuntimeError(f"the simulator did not start within {startup_timeout} s") from None
        if not first.startswith(READY_PREFIX):
            code = self.process.wait(timeout=10)
            self.close()
            raise RuntimeError(f"the simulator failed to start (exit code {code}): {first!r}")
        self.base_url = first[len(READY_PREFIX) :].strip()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _control(self, method: str, path: str, body: dict | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"content-type": "application/json", "x-api-key": self.api_key},
        )
        with self._opener.open(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self, *, catch_up: bool = True) -> dict[str, Any]:
        """The child's stats (``GET /_sim/stats``; see :meth:`Simulator.stats`)."""
        return self._control("GET", "/_sim/stats" + ("" if catch_up else "?catch_up=0"))

    def advance(self, seconds: float) -> None:
        """Advance the child's simulated clock (``POST /_sim/clock/advance``)."""
        self._control("POST", "/_sim/clock/advance", {"seconds": seconds})

    def reset_stats(self) -> None:
        self._control("POST", "/_sim/reset-stats", {})

    def close(self) -> None:
        """Stop the process: SIGTERM, then SIGKILL after 10 s (idempotent)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self._reader.join(timeout=5)
            self.process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def spawn(
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    time_scale: float = 1.0,
    seed: int = 0,
    processing: Processing | None = None,
    faults: Faults | None = None,
    responder: str | None = None,
    extra_args: list[str] | tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    startup_timeout: float = 30.0,
) -> SpawnedSimulator:
    """Start the simulator's CLI as a separate process and wait until it listens.

    The child runs exactly what ``python -m batchkit.simulator`` runs, but without importing
    the rest of batchkit (see ``_BOOT``); a ``--responder`` module must therefore not need
    ``import batchkit`` itself.

    Args:
        port: port to bind (0 → a free one; read ``.base_url``).
        host: a loopback address.
        time_scale, seed: as in :class:`SimConfig`.
        processing, faults: turned into the equivalent command-line flags.
        responder: ``"module:function"`` importable in the child.
        extra_args: more command-line flags (e.g. ``["--cache-miss-rate", "0.1"]``).
        env: the child's environment (default: this one).
        startup_timeout: seconds to wait for the "listening on" line.

    Returns:
        A :class:`SpawnedSimulator`; use it as a context manager to stop the process.
    """
    _check_loopback(host)
    package_dir = str(Path(__file__).resolve().parents[1])
    argv = [
        sys.executable,
        "-c",
        _BOOT,
        package_dir,
        "--port",
        str(port),
        "--host",
        host,
        "--time-scale",
        repr(float(time_scale)),
        "--seed",
        str(seed),
    ]
    argv += cli_args(processing, faults)
    if responder is not None:
        argv += ["--responder", responder]
    argv += list(extra_args)
    child_env = dict(os.environ if env is None else env)
    return SpawnedSimulator(argv, child_env, startup_timeout)


# Runs ``python -m batchkit.simulator`` without executing ``batchkit/__init__.py``: the simulator
# imports nothing from the client side, so the child skips pandas & co. (it starts in a fraction
# of the time) and works whatever state the rest of the package is in. A placeholder package
# module whose ``__path__`` is the real directory is enough for the import system.
_BOOT = """\
import runpy, sys, types
package = types.ModuleType("batchkit")
package.__path__ = [sys.argv.pop(1)]
sys.modules["batchkit"] = package
runpy.run_module("batchkit.simulator", run_name="__main__", alter_sys=True)
"""
