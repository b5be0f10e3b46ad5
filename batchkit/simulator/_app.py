"""The HTTP layer: a WSGI app that speaks Anthropic's API over the engine.

Routes (any path prefix before ``/v1/`` is kept, so ``base_url=".../prefix"`` works):

========================================  ==================================================
``POST   /v1/messages/batches``            create (envelope checked now, params later)
``GET    /v1/messages/batches``            list (``limit`` 1–1000, ``after_id``, ``before_id``)
``GET    /v1/messages/batches/{id}``       retrieve
``POST   /v1/messages/batches/{id}/cancel`` cancel
``DELETE /v1/messages/batches/{id}``       delete (ended batches only, else 400)
``GET    /v1/messages/batches/{id}/results`` JSONL results (404 once archived)
``POST   /v1/messages``                    a message, answered now (``stream: true``: as
                                           server-sent events, :mod:`._sse`)
``POST   /v1/messages/count_tokens``       ``{"input_tokens": n}``
``GET    /v1/models``, ``/v1/models/{id}``  the catalogue
``GET    /_sim/stats``                     counters
``GET    /_sim/clock``                     ``{"now", "time_scale"}``
``POST   /_sim/clock/advance``             body ``{"seconds": N}``
``POST   /_sim/reset-stats``               zero the counters
========================================  ==================================================

Order of checks on an API call: route → count it in the stats → auth (401) → version (400) →
injected fault (schedule, then rate) → handler. The ``/_sim/`` control endpoints are never
counted or faulted; they check the ``Origin`` (403 unless absent or loopback), the key (401, as
the API does) and, on POST, ``Content-Type: application/json`` (415), so a web page cannot
drive them with a cross-site request.

Every response has a ``request-id`` header and says what answered it:
``x-batchkit-simulator: <version>`` (the real API never sends it; batchkit asks for it to tell
the simulator from the API, whatever the host name). Every error body is
``{"type": "error", "error": {"type", "message"}, "request_id"}``. Bodies are read no further
than the endpoint's size limit and refused (400) when JSON nests deeper than
:data:`MAX_JSON_DEPTH`. ``?beta=true`` is ignored; ``anthropic-beta`` is recorded on each batch.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx2

from ._clock import rfc3339
from ._config import ENDPOINT_KINDS
from ._engine import QueueFull, decode_body, iter_chunks, paused_gc
from ._json import MAX_JSON_DEPTH, decode, encode, too_deep
from ._params import ApiError
from ._realtime import Realtime, Refused
from ._sse import MessageStream

if TYPE_CHECKING:
    from ._simulator import Simulator

__all__ = ["IDENTITY_HEADER", "MAX_JSON_DEPTH", "SIMULATOR_VERSION", "App", "DroppedConnection", "Reply"]

IDENTITY_HEADER = "x-batchkit-simulator"
"""The response header by which the simulator says what it is (value: its version)."""


def _version() -> str:
    try:
        return metadata.version("batchkit")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "dev"


SIMULATOR_VERSION = _version()

VERSIONS = ("2023-06-01", "2026-10-21")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "conflict_error",
    411: "invalid_request_error",
    413: "request_too_large",
    414: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}
_STATUS_LINES = {status: f"{status} {reason}" for status, reason in _REASONS.items()}
_JSON = "application/json"
_EVENT_STREAM = "text/event-stream; charset=utf-8"
_MIDSTREAM = "batchkit.midstream"
"""The environ key by which a scheduled ``midstream:STATUS`` fault reaches the messages handler."""
_CONTROL_ROUTES = {
    "/_sim/stats": "GET",
    "/_sim/clock": "GET",
    "/_sim/clock/advance": "POST",
    "/_sim/reset-stats": "POST",
}
_CONTROL_BODY = 1 << 20
"""The most of a control request's body that is read."""
_INLINE_KINDS = frozenset({"messages.create", "messages.count_tokens", "models.list", "models.retrieve"})
"""The calls a served simulator may answer on its event loop (:meth:`App.inline`)."""


class DroppedConnection(httpx2.RemoteProtocolError):
    """Raised by the app to drop the connection (a fault).

    In process, the SDK sees it as the ``httpx2.RemoteProtocolError`` it is; the simulator's
    HTTP server closes the socket instead, which the client sees as the same error.
    """


class Reply(NamedTuple):
    """A response as the served simulator sends it (:meth:`App.respond`)."""

    status: str
    """The status line's code and reason, ``"200 OK"``."""
    headers: list[tuple[str, str]]
    body: Iterable[bytes]
    """A list of bytes, results' chunks, or a :class:`MessageStream` (its events paced)."""
    delay: float = 0.0
    """Wall seconds to wait before the response starts (the latency model)."""
    drop: str | None = None
    """After ``delay``, drop the connection instead of answering (a ``lose`` fault), saying why."""


class _Response:
    __slots__ = ("body", "delay", "drop", "headers", "length", "status")

    def __init__(
        self,
        status: int,
        body: Iterable[bytes],
        headers: dict[str, str] | None = None,
        content_type: str = _JSON,
        length: int | None = None,
    ) -> None:
        self.status = status
        self.headers = {"content-type": content_type, **(headers or {})}
        self.body = body
        self.length = length
        self.delay = 0.0
        self.drop: str | None = None


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Response:
    body = encode(obj)
    return _Response(status, [body], headers, length=len(body))


def _error(status: int, message: str, type_: str | None = None, headers: dict[str, str] | None = None) -> _Response:
    return _json(
        status,
        {"type": "error", "error": {"type": type_ or _ERROR_TYPES.get(status, "api_error"), "message": message}},
        headers,
    )


class _Stream:
    """Result chunks for the response body, optionally dropped halfway."""

    def __init__(self, lines: list[bytes], drop: bool) -> None:
        self._lines = lines
        self._drop = drop

    def __iter__(self) -> Iterator[bytes]:
        if not self._drop:
            yield from iter_chunks(self._lines)
            return
        half = self._lines[: max(1, len(self._lines) // 2)]
        body = b"".join(half)
        yield body[: max(1, len(body) - 7)]  # end mid-line, like a real cut
        raise DroppedConnection("peer closed connection without sending complete message body (simulated fault)")


class App:
    """The WSGI callable (``Simulator.wsgi_app``)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.engine = sim.engine
        self.realtime = Realtime(sim.config, sim.clock, sim.engine)
        faults = sim.config.faults
        self._sleeps = bool(faults.slow) or any(
            isinstance(action, str) and action.startswith("slow:") for _, _, action in faults.schedule
        )
        self._handlers: dict[str, Callable[[dict, str, str, str, bool], _Response]] = {
            kind: getattr(self, "_" + kind.replace(".", "_")) for kind in ENDPOINT_KINDS
        }

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        reply = self.respond(environ)
        if reply.delay > 0:  # the latency model: in process, each request waits in its own thread
            time.sleep(reply.delay)
        if reply.drop is not None:
            raise DroppedConnection(reply.drop)
        start_response(reply.status, reply.headers)
        return reply.body

    def respond(self, environ: dict) -> Reply:
        """Answer one request without waiting: the served simulator's entry (the WSGI call
        is this, then the wait). Raises :class:`DroppedConnection` to drop it at once."""
        request_id = self.engine.ids.request_id()
        try:
            response = self._handle(environ, request_id)
        except RecursionError:  # JSON malformed *and* deep (never closed): the decoder gave up
            response = _error(400, f"body: JSON nests more than {MAX_JSON_DEPTH} levels deep")
        return self._finish(response, request_id)

    def refuse(self, status: int, message: str) -> Reply:
        """Answer a request the HTTP server cannot hand to the app (e.g. a bad ``Content-Length``)
        with the API's error shape, ``request-id`` and identity header."""
        return self._finish(_error(status, message), self.engine.ids.request_id())

    def body_limit(self, method: str, path: str) -> int:
        """The most of a request's body the app reads (it refuses a longer one, 413, unread):
        a served simulator waits for that much of the body before calling it."""
        if method != "POST":
            return 0
        if "/_sim/" in path:
            return _CONTROL_BODY
        at = path.find("/v1/")
        kind = None if at == -1 else _route(method, path[at:].rstrip("/"))[0]
        config = self.sim.config
        if kind == "batches.create":
            return config.max_batch_body_bytes
        if kind in ("messages.create", "messages.count_tokens"):
            return config.max_message_body_bytes
        return 0

    def inline(self, method: str, path: str) -> bool:
        """Whether a served simulator may answer this request on its event loop: a call that
        is quick (a message, a token count, the models, a refusal), with no ``slow`` fault to
        sleep out and no batch work due that answering a message would do first. Anything
        else (batches, the control endpoints) runs on a worker thread."""
        if self._sleeps or "/_sim/" in path:
            return False
        at = path.find("/v1/")
        if at == -1:
            return True  # a 404
        kind, _, _ = _route(method, path[at:].rstrip("/"))
        return kind is None or (kind in _INLINE_KINDS and not self.engine.work_due(self.sim.clock.timestamp()))

    def _finish(self, response: _Response, request_id: str) -> Reply:
        if response.status >= 400 and response.headers.get("content-type") == _JSON:
            response = self._with_request_id(response, request_id)
        headers = list(response.headers.items())
        headers.append(("request-id", request_id))
        headers.append((IDENTITY_HEADER, SIMULATOR_VERSION))
        if response.length is not None:
            headers.append(("content-length", str(response.length)))
        status = _STATUS_LINES.get(response.status) or f"{response.status} {_REASONS.get(response.status, 'Error')}"
        return Reply(status, headers, response.body, response.delay, response.drop)

    @staticmethod
    def _with_request_id(response: _Response, request_id: str) -> _Response:
        body = decode(b"".join(response.body))
        if body.get("type") == "error":
            body["request_id"] = request_id
        data = encode(body)
        response.body, response.length = [data], len(data)
        return response

    def _handle(self, environ: dict, request_id: str) -> _Response:
        method = environ["REQUEST_METHOD"]
        full = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        at = full.find("/_sim/")
        if at != -1:
            return self._control(method, full[at:], environ)
        at = full.find("/v1/")
        if at == -1:
            return _error(404, f"Not found: {method} {full}")
        prefix, path = full[:at], full[at:].rstrip("/")
        kind, arg, allowed = _route(method, path)
        if kind is None:
            if allowed:
                return _error(405, f"Method {method} not allowed on {path}", "invalid_request_error")
            return _error(404, f"Not found: {method} {path}")
        engine = self.engine
        engine.count_call(kind)
        problem = self._check_auth(environ)
        if problem is not None:
            return problem
        version = environ.get("HTTP_ANTHROPIC_VERSION")
        if not version:
            return _error(400, "anthropic-version: header is required")
        if version not in VERSIONS:
            return _error(
                400,
                f"anthropic-version: {version!r} is not a valid version "
                f"(this simulator accepts {' and '.join(VERSIONS)})",
            )
        fault, faulted = self._fault_before(kind, environ)
        if faulted is not None:
            return faulted
        try:
            response = self._handlers[kind](environ, arg, version, prefix, fault == "drop")
        except ApiError as exc:
            never_retry = {"x-should-retry": "false"} if exc.status == 413 else None
            return _error(exc.status, exc.message, exc.type, never_retry)
        if fault == "lose":  # done (and, for a message, paid), but the response never arrives
            engine.count_fault("lose")
            response.drop = "Server disconnected after doing the call, before its response (simulated fault)"
        return response

    def _fault_before(self, kind: str, environ: dict) -> tuple[Any, _Response | None]:
        """The fault planned for this call, acted on before its handler runs: ``(fault left
        for the handler and after it, error response or None)``.

        Sleeps for ``slow`` faults (and then there is no fault left), answers an HTTP fault,
        drops the connection for ``drop`` (but on results, which drop mid-stream), and marks
        ``environ`` for a ``midstream`` fault of a message stream (another call gets the
        status at once)."""
        engine = self.engine
        faults = self.sim.config.faults
        fault = engine.plan.on_call(kind)
        if faults.slow:
            time.sleep(faults.slow)
        if isinstance(fault, str) and fault.startswith("slow:"):
            engine.count_fault("slow")
            time.sleep(float(fault[5:]))
            fault = None
        if isinstance(fault, int):
            engine.count_fault(f"http_{fault}")
            headers = {}
            if faults.retry_after is not None and (fault in (408, 429) or fault >= 500):
                headers["retry-after"] = f"{faults.retry_after:g}"
            return fault, _error(fault, f"Simulated {fault} fault", headers=headers)
        if fault == "drop" and kind != "batches.results":
            engine.count_fault("drop")
            raise DroppedConnection("Server disconnected without sending a response (simulated fault)")
        if isinstance(fault, str) and fault.startswith("midstream:"):
            status = int(fault[10:])
            if kind != "messages.create":  # only a stream can fail after its 200
                engine.count_fault(f"http_{status}")
                return fault, _error(status, f"Simulated {status} fault")
            environ[_MIDSTREAM] = status
        return fault, None

    def _check_auth(self, environ: dict) -> _Response | None:
        key = environ.get("HTTP_X_API_KEY")
        if not key:
            auth = environ.get("HTTP_AUTHORIZATION", "")
            if auth[:7].lower() == "bearer ":
                key = auth[7:].strip()
        if not key:
            return _error(401, "x-api-key header or Authorization: Bearer is required")
        allowed = self.sim.config.api_keys
        if allowed is not None and key not in allowed:
            return _error(401, "invalid x-api-key")
        return None

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _base(environ: dict, prefix: str) -> str:
        host = environ.get("HTTP_HOST")
        if not host:
            host = f"{environ.get('SERVER_NAME', '127.0.0.1')}:{environ.get('SERVER_PORT', '80')}"
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}{prefix}"

    def _body(self, environ: dict, limit: int) -> Any:
        return decode_body(self._read(environ, limit))

    @staticmethod
    def _read(environ: dict, limit: int, depth: bool = True) -> bytes:
        """The request body: never more than ``limit`` bytes read (413 beyond), JSON nested at
        most :data:`MAX_JSON_DEPTH` deep (400 beyond; ``depth=False``: the caller checks)."""
        length = environ.get("CONTENT_LENGTH") or ""
        if length and not (length.isascii() and length.isdigit()):
            raise ApiError(400, "invalid_request_error", f"Content-Length: {length!r} is not a whole number of bytes")
        if length and int(length) > limit:
            raise _too_large(limit)
        stream = environ["wsgi.input"]
        data = stream.read(int(length)) if length else stream.read(limit + 1)  # +1: tells "over"
        if len(data) > limit:
            raise _too_large(limit)
        if depth and too_deep(data):
            raise ApiError(400, "invalid_request_error", f"body: JSON nests more than {MAX_JSON_DEPTH} levels deep")
        return data

    @staticmethod
    def _query(environ: dict) -> dict[str, list[str]]:
        return parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)

    @staticmethod
    def _page_args(query: dict[str, list[str]]) -> tuple[int, str | None, str | None]:
        raw = query.get("limit", ["20"])[-1]
        try:
            limit = int(raw)
        except ValueError:
            raise ApiError(400, "invalid_request_error", "limit: Input should be a valid integer") from None
        if limit < 1:
            raise ApiError(400, "invalid_request_error", "limit: Input should be greater than or equal to 1")
        if limit > 1000:
            raise ApiError(400, "invalid_request_error", "limit: Input should be less than or equal to 1000")
        after = query.get("after_id", [None])[-1]
        before = query.get("before_id", [None])[-1]
        if after and before:
            raise ApiError(400, "invalid_request_error", "Use only one of after_id and before_id")
        return limit, after or None, before or None

    # ------------------------------------------------------------------ batches

    def _batches_create(self, environ: dict, _arg: str, version: str, prefix: str, drop: bool) -> _Response:
        engine = self.engine
        with paused_gc():
            # parse_create checks the depth: on a well-formed body, only where it can be too deep
            requests = engine.parse_create(self._read(environ, self.sim.config.max_batch_body_bytes, depth=False))
        betas = tuple(b.strip() for b in environ.get("HTTP_ANTHROPIC_BETA", "").split(",") if b.strip())
        try:
            batch = engine.create(requests, version, betas)
        except QueueFull as exc:  # the workspace's queue limit: wait for room
            engine.count_fault("queue_full")
            wait = {"x-should-retry": "false"} if exc.wall_wait is None else {"retry-after": f"{exc.wall_wait:.3f}"}
            return _error(429, exc.message, exc.type, wait)
        return _json(200, engine.render(batch, batch.created, self._base(environ, prefix)))

    def _batches_retrieve(self, environ: dict, batch_id: str, version: str, prefix: str, drop: bool) -> _Response:
        engine = self.engine
        with engine.caught_up(batch_id) as now:  # only as far as this batch needs
            return _json(200, engine.render(engine.get(batch_id), now, self._base(environ, prefix)))

    def _batches_list(self, environ: dict, _arg: str, version: str, prefix: str, drop: bool) -> _Response:
        limit, after, before = self._page_args(self._query(environ))
        engine = self.engine
        with engine.caught_up() as now:
            page, has_more = engine.page(limit, after, before)
            base = self._base(environ, prefix)
            data = [engine.render(b, now, base) for b in page]
        return _json(
            200,
            {
                "data": data,
                "has_more": has_more,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )

    def _batches_cancel(self, environ: dict, batch_id: str, version: str, prefix: str, drop: bool) -> _Response:
        engine = self.engine
        batch = engine.cancel(batch_id)
        with engine.caught_up() as now:
            return _json(200, engine.render(batch, now, self._base(environ, prefix)))

    def _batches_delete(self, environ: dict, batch_id: str, version: str, prefix: str, drop: bool) -> _Response:
        self.engine.delete(batch_id)
        return _json(200, {"id": batch_id, "type": "message_batch_deleted"})

    def _batches_results(self, environ: dict, batch_id: str, version: str, prefix: str, drop: bool) -> _Response:
        lines = self.engine.results(batch_id)
        if drop:
            self.engine.count_fault("drop")
        return _Response(200, _Stream(lines, drop), content_type="application/binary", length=sum(map(len, lines)))

    # ------------------------------------------------------------------ messages, models

    def _messages_create(self, environ: dict, _arg: str, version: str, prefix: str, drop: bool) -> _Response:
        params = self._body(environ, self.sim.config.max_message_body_bytes)
        realtime = self.realtime
        try:
            message, headers, sleep = realtime.answer(params, version)
        except Refused as exc:
            return _json(exc.status, {"type": "error", "error": exc.error}, exc.headers)
        except ApiError as exc:
            return _error(exc.status, exc.message, exc.type, realtime.headers())
        midstream = environ.get(_MIDSTREAM)
        if params.get("stream") is True:
            return self._stream(message, headers, sleep, midstream)
        if midstream is not None:
            self.engine.count_fault(f"http_{midstream}")
            return _error(midstream, f"Simulated {midstream} fault", headers=headers)
        response = _json(200, message, headers)
        response.delay = max(sleep, 0.0)  # the latency model: waited before the response starts
        return response

    def _stream(self, message: Any, headers: dict[str, str], sleep: float, midstream: int | None) -> _Response:
        """The answer as server-sent events (:mod:`._sse`), its latency spread over the pieces."""
        latency = self.sim.config.latency
        first = latency.first_token
        total = first + message.usage.output_tokens * latency.per_output_token
        first_wait = sleep * first / total if total > 0 else 0.0
        error = None
        if midstream is not None:
            self.engine.count_fault(f"midstream_{midstream}")
            error = {
                "type": _ERROR_TYPES.get(midstream, "api_error"),
                "message": f"Simulated {midstream} fault (mid-stream)",
            }
        body = MessageStream.of(message, first_wait=first_wait, token_wait=max(sleep - first_wait, 0.0), error=error)
        return _Response(200, body, {**headers, "cache-control": "no-cache"}, content_type=_EVENT_STREAM)

    def _messages_count_tokens(self, environ: dict, _arg: str, version: str, prefix: str, drop: bool) -> _Response:
        params = self._body(environ, self.sim.config.max_message_body_bytes)
        return _json(200, {"input_tokens": self.engine.count_tokens(params, version)})

    def _models_list(self, environ: dict, _arg: str, version: str, prefix: str, drop: bool) -> _Response:
        query = self._query(environ)
        limit, after, before = self._page_args(query)
        lifecycles: list[str] = []
        for key in ("lifecycle", "lifecycle[]"):
            for value in query.get(key, []):
                lifecycles.extend(v for v in value.split(",") if v)
        models = self.engine.catalogue.list(lifecycles or None)
        ids = [m["id"] for m in models]
        if after is not None:
            if after not in ids:
                raise ApiError(400, "invalid_request_error", f"after_id: no model with id {after!r}")
            rest = models[ids.index(after) + 1 :]
            page, has_more = rest[:limit], len(rest) > limit
        elif before is not None:
            if before not in ids:
                raise ApiError(400, "invalid_request_error", f"before_id: no model with id {before!r}")
            rest = models[: ids.index(before)]
            page, has_more = rest[-limit:], len(rest) > limit
        else:
            page, has_more = models[:limit], len(models) > limit
        return _json(
            200,
            {
                "data": page,
                "has_more": has_more,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            },
        )

    def _models_retrieve(self, environ: dict, model_id: str, version: str, prefix: str, drop: bool) -> _Response:
        info = self.engine.catalogue.get(model_id)
        if info is None:
            raise ApiError(404, "not_found_error", f"model: {model_id}")
        return _json(200, info)

    # ------------------------------------------------------------------ control

    def _control(self, method: str, path: str, environ: dict) -> _Response:
        sim = self.sim
        path = path.rstrip("/")
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and not _loopback_origin(origin):
            return _error(
                403,
                f"Origin: {origin!r} is not this machine; the /_sim/ control endpoints "
                "answer local clients only (a web page cannot drive the simulator)",
            )
        problem = self._check_auth(environ)
        if problem is not None:
            return problem
        allowed = _CONTROL_ROUTES.get(path)
        if allowed is None:
            return _error(404, f"Not found: {method} {path}")
        if method != allowed:
            return _error(405, f"Method {method} not allowed on {path} (use {allowed})", "invalid_request_error")
        if method == "POST":
            kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
            if kind != _JSON:
                return _error(
                    415,
                    f"Content-Type: {kind or 'none'!r} is not accepted on {path}; send the body as application/json",
                )
        if path == "/_sim/stats":
            catch_up = self._query(environ).get("catch_up", ["1"])[-1] not in ("0", "false")
            return _json(200, sim.stats(catch_up=catch_up))
        if path == "/_sim/clock":
            return _json(200, {"now": rfc3339(sim.clock.timestamp()), "time_scale": sim.clock.time_scale})
        try:
            body = self._body(environ, _CONTROL_BODY)
        except ApiError as exc:
            return _error(exc.status, exc.message, exc.type)
        if path == "/_sim/clock/advance":
            return self._advance(body)
        sim.reset_stats()
        return _json(200, {"ok": True})

    def _advance(self, body: Any) -> _Response:
        usage = 'send {"seconds": N}, N a number of seconds >= 0'
        if not isinstance(body, dict) or "seconds" not in body:
            return _error(400, f"seconds: Field required ({usage})")
        extra = next((key for key in body if key != "seconds"), None)
        if extra is not None:
            return _error(400, f"{extra}: Extra inputs are not permitted ({usage})")
        seconds = body["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            return _error(400, f"seconds: Input should be a number, not {type(seconds).__name__} ({usage})")
        try:
            self.sim.advance(seconds)
        except ValueError as exc:  # not finite, negative, past the year 9999: the clock is unchanged
            return _error(400, f"seconds: {exc}")
        return _json(200, {"now": rfc3339(self.sim.clock.timestamp()), "advanced": seconds})


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "request_too_large", f"Request exceeds the maximum allowed number of bytes ({limit}).")


def _loopback_origin(origin: str) -> bool:
    """Whether an ``Origin`` header names a page served from this machine."""
    host = urlsplit(origin).hostname if origin.startswith(("http://", "https://")) else None
    if not host:
        return False  # "null" (a sandboxed page, a file) and anything unparsable
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=4096)  # a request is routed three times (body limit, inline, handler)
def _route(method: str, path: str) -> tuple[str | None, str, bool]:
    """``(kind, path argument, path exists)`` for an API path without prefix."""
    parts = path.split("/")[2:]  # after "", "v1"
    n = len(parts)
    if n >= 2 and parts[0] == "messages" and parts[1] == "batches":
        if n == 2:
            return {"POST": "batches.create", "GET": "batches.list"}.get(method), "", True
        if n == 3:
            return {"GET": "batches.retrieve", "DELETE": "batches.delete"}.get(method), parts[2], True
        if n == 4 and parts[3] == "cancel":
            return ("batches.cancel" if method == "POST" else None), parts[2], True
        if n == 4 and parts[3] == "results":
            return ("batches.results" if method == "GET" else None), parts[2], True
        return None, "", False
    if n == 1 and parts[0] == "messages":
        return ("messages.create" if method == "POST" else None), "", True
    if n == 2 and parts[0] == "messages" and parts[1] == "count_tokens":
        return ("messages.count_tokens" if method == "POST" else None), "", True
    if parts[:1] == ["models"]:
        if n == 1:
            return ("models.list" if method == "GET" else None), "", True
        if n == 2:
            return ("models.retrieve" if method == "GET" else None), parts[1], True
    return None, "", False
