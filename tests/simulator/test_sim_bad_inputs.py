"""Malformed and hostile requests to the served simulator, raw over a socket.

Each is answered with the right 4xx and an API-shaped error body (with ``request-id`` and the
simulator's identity header) — never a dropped connection — creates no batch, and leaves the
simulator working: its clock readable and a normal batch create accepted afterwards.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import anthropic
import pytest
from simtools import request, requests

from batchkit.simulator import Processing, Server, SimConfig, Simulator, serve
from batchkit.simulator._app import MAX_JSON_DEPTH, too_deep

API = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}
JSON = {"content-type": "application/json"}
GOOD_CREATE = json.dumps({"requests": [request("ok")]}).encode()


@dataclass(frozen=True)
class Bad:
    """One bad request: either ``raw`` bytes as sent, or a method, path, headers and body."""

    method: str = "POST"
    path: str = "/v1/messages/batches"
    headers: dict[str, str] | None = None
    body: bytes = b""
    raw: bytes | None = None
    length: str | None = None  # Content-Length as sent (default: the body's length)

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        headers = {"host": "127.0.0.1", **(API if self.headers is None else self.headers)}
        lines = [f"{self.method} {self.path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"content-length: {len(self.body) if self.length is None else self.length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def advance(seconds: bytes, **headers: str) -> Bad:
    return Bad(path="/_sim/clock/advance", headers={**API, **JSON, **headers}, body=b'{"seconds": ' + seconds + b"}")


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def deep_params(depth: int) -> bytes:
    """A create body whose one request carries a tool schema ``depth`` levels deep."""
    schema = b'{"items": ' * depth + b"{}" + b"}" * depth
    return (
        b'{"requests": [{"custom_id": "a", "params": {"model": "claude-haiku-4-5", "max_tokens": 5, '
        b'"messages": [{"role": "user", "content": "x"}], "tools": [{"name": "t", "input_schema": ' + schema + b"}]}}]}"
    )


CASES = {
    # framing
    "content-length-negative": (Bad(body=GOOD_CREATE, length="-1"), 400, "invalid_request_error", "Content-Length"),
    "content-length-not-a-number": (
        Bad(body=GOOD_CREATE, length="abc"),
        400,
        "invalid_request_error",
        "Content-Length",
    ),
    "content-length-conflicting": (
        Bad(
            raw=b"POST /v1/messages/batches HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\nanthropic-version: 2023-06-01"
            b"\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}"
        ),
        400,
        "invalid_request_error",
        "conflicting",
    ),
    "chunked-body": (
        Bad(
            raw=b"POST /v1/messages/batches HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\nanthropic-version: 2023-06-01"
            b"\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        ),
        411,
        "invalid_request_error",
        "Content-Length",
    ),
    "content-length-a-terabyte": (Bad(length=str(10**12)), 413, "request_too_large", "maximum allowed"),
    "request-line-garbage": (Bad(raw=b"HELLO\r\n\r\n"), 400, "invalid_request_error", "Bad request syntax"),
    "unknown-method": (Bad(raw=b"BREW /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"), 405, "invalid_request_error", "BREW"),
    "header-line-70kb": (
        Bad(raw=b"GET /v1/models HTTP/1.1\r\nx-big: " + b"a" * 70_000 + b"\r\n\r\n"),
        431,
        "invalid_request_error",
        "too long",
    ),
    "url-70kb": (Bad(raw=b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"), 414, "invalid_request_error", "URI"),
    # JSON bodies
    "create-not-json": (Bad(body=b"{nope"), 400, "invalid_request_error", "Invalid JSON"),
    "create-invalid-utf8": (Bad(body=b'{"requests": "\xff"}'), 400, "invalid_request_error", "Invalid JSON"),
    "create-nested-1000": (Bad(body=nested(1000)), 400, "invalid_request_error", "nests more than"),
    "create-params-nested-1000": (Bad(body=deep_params(1000)), 400, "invalid_request_error", "nests more than"),
    "create-params-nested-200": (Bad(body=deep_params(200)), 400, "invalid_request_error", "nests more than"),
    "create-unclosed-5000": (Bad(body=b"[" * 5000), 400, "invalid_request_error", ""),
    "create-requests-not-a-list": (Bad(body=b'{"requests": 5}'), 400, "invalid_request_error", "valid list"),
    "create-duplicate-custom-ids": (
        Bad(body=json.dumps({"requests": [request("a"), request("a")]}).encode()),
        400,
        "invalid_request_error",
        "Duplicate",
    ),
    "messages-nested-1000": (
        Bad(
            path="/v1/messages",
            body=b'{"model": "claude-haiku-4-5", "max_tokens": 5, '
            b'"messages": [{"role": "user", "content": ' + nested(1000) + b"}]}",
        ),
        400,
        "invalid_request_error",
        "nests more than",
    ),
    "messages-body-an-array": (Bad(path="/v1/messages", body=b"[]"), 400, "invalid_request_error", "dictionary"),
    "count-tokens-body-null": (
        Bad(path="/v1/messages/count_tokens", body=b"null"),
        400,
        "invalid_request_error",
        "dictionary",
    ),
    # API headers and routes
    "no-api-key": (
        Bad(headers={"anthropic-version": "2023-06-01"}, body=GOOD_CREATE),
        401,
        "authentication_error",
        "x-api-key",
    ),
    "unknown-anthropic-version": (
        Bad(headers={**API, "anthropic-version": "1999-01-01"}, body=GOOD_CREATE),
        400,
        "invalid_request_error",
        "anthropic-version",
    ),
    "unknown-route": (Bad(method="GET", path="/v1/nothing"), 404, "not_found_error", "Not found"),
    "wrong-method": (
        Bad(method="PUT", path="/v1/messages/batches", body=GOOD_CREATE),
        405,
        "invalid_request_error",
        "not allowed",
    ),
    "list-limit-not-a-number": (
        Bad(method="GET", path="/v1/messages/batches?limit=abc"),
        400,
        "invalid_request_error",
        "limit",
    ),
    "list-limit-zero": (Bad(method="GET", path="/v1/messages/batches?limit=0"), 400, "invalid_request_error", "limit"),
    "retrieve-unknown-batch": (
        Bad(method="GET", path="/v1/messages/batches/msgbatch_nope"),
        404,
        "not_found_error",
        "",
    ),
    "cancel-unknown-batch": (Bad(path="/v1/messages/batches/msgbatch_nope/cancel"), 404, "not_found_error", ""),
    # the clock
    "advance-1e300": (advance(b"1e300"), 400, "invalid_request_error", "past 9999"),
    "advance-nan-string": (advance(b'"nan"'), 400, "invalid_request_error", "number"),
    "advance-inf-string": (advance(b'"inf"'), 400, "invalid_request_error", "number"),
    "advance-1e999": (advance(b"1e999"), 400, "invalid_request_error", "out of range"),
    "advance-400-digit-int": (advance(b"1" + b"0" * 400), 400, "invalid_request_error", "finite"),
    "advance-negative": (advance(b"-5"), 400, "invalid_request_error", "forward"),
    "advance-true": (advance(b"true"), 400, "invalid_request_error", "bool"),
    "advance-no-seconds": (
        Bad(path="/_sim/clock/advance", headers={**API, **JSON}, body=b"{}"),
        400,
        "invalid_request_error",
        "Field required",
    ),
    "advance-extra-field": (
        Bad(path="/_sim/clock/advance", headers={**API, **JSON}, body=b'{"seconds": 1, "minutes": 2}'),
        400,
        "invalid_request_error",
        "minutes",
    ),
    # the control endpoints are not open to every web page
    "control-without-key": (
        Bad(path="/_sim/clock/advance", headers=JSON, body=b'{"seconds": 1}'),
        401,
        "authentication_error",
        "x-api-key",
    ),
    "control-stats-without-key": (Bad(method="GET", path="/_sim/stats", headers={}), 401, "authentication_error", ""),
    "control-form-post": (
        Bad(path="/_sim/reset-stats", headers={**API, "content-type": "text/plain"}, body=b"{}"),
        415,
        "invalid_request_error",
        "application/json",
    ),
    "control-no-content-type": (
        Bad(path="/_sim/reset-stats", headers=API, body=b"{}"),
        415,
        "invalid_request_error",
        "application/json",
    ),
    "control-cross-site-origin": (advance(b"60", origin="https://evil.example"), 403, "permission_error", "Origin"),
    "control-null-origin": (advance(b"60", origin="null"), 403, "permission_error", "Origin"),
    "control-unknown-path": (Bad(method="GET", path="/_sim/shutdown"), 404, "not_found_error", ""),
}


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    sim = Simulator(SimConfig(seed=1, processing=Processing.instant()))
    with serve(sim) as running:
        yield running


def exchange(server: Server, bad: Bad) -> tuple[socket.socket, http.client.HTTPResponse, bytes]:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(bad.encode())
    response = http.client.HTTPResponse(sock, method=bad.method if bad.raw is None else "GET")
    response.begin()  # raises RemoteDisconnected if the server dropped the connection
    return sock, response, response.read()


@pytest.mark.parametrize(("bad", "status", "error_type", "fragment"), list(CASES.values()), ids=list(CASES))
def test_a_bad_request_gets_an_api_error_and_changes_nothing(
    server: Server, bad: Bad, status: int, error_type: str, fragment: str
) -> None:
    sim = server.simulator
    before = sim.stats()
    clock = sim.clock.timestamp()
    sock, response, body = exchange(server, bad)
    try:
        assert response.status == status, body
        error = json.loads(body)
        assert error["type"] == "error" and error["error"]["type"] == error_type
        assert fragment.lower() in error["error"]["message"].lower()
        assert error["request_id"] == response.getheader("request-id")
        assert response.getheader("x-batchkit-simulator")
        if response.getheader("connection") != "close":  # the same connection goes on
            sock.sendall(
                b"GET /v1/models?limit=1 HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\nanthropic-version: 2023-06-01\r\n\r\n"
            )
            again = http.client.HTTPResponse(sock, method="GET")
            again.begin()
            assert again.status == 200 and json.loads(again.read())["data"]
    finally:
        sock.close()
    after = sim.stats()
    assert after["batches_created"] == before["batches_created"]
    assert after["batch_requests_received"] == before["batch_requests_received"]
    assert after["messages_answered"] == before["messages_answered"]
    assert clock <= sim.clock.timestamp() < clock + 3600  # at most the wall time the test took
    client = server.client(max_retries=0)
    created = client.messages.batches.create(requests=requests(2))
    assert client.messages.batches.retrieve(created.id).request_counts.succeeded == 2
    assert sim.stats()["batches_created"] == before["batches_created"] + 1
    client.close()


def test_the_control_endpoints_work_for_a_local_client_with_a_key(server: Server) -> None:
    clock = server.simulator.clock.timestamp()
    for origin in ({}, {"origin": "http://localhost:8888"}, {"origin": "http://127.0.0.1:3000"}):
        sock, response, body = exchange(server, advance(b"60", **origin))
        sock.close()
        assert response.status == 200 and json.loads(body)["advanced"] == 60
    assert server.simulator.clock.timestamp() >= clock + 180


def test_the_sdk_sees_a_bad_advance_as_a_400_and_the_clock_is_unharmed(server: Server) -> None:
    client = server.client(max_retries=0)
    for seconds in (1e300, -1.0, 10**400):  # the SDK itself cannot send nan or inf
        with pytest.raises(anthropic.BadRequestError):
            client.post("/_sim/clock/advance", body={"seconds": seconds}, cast_to=object)
    assert client.get("/_sim/clock", cast_to=object)["now"].startswith("20")
    client.close()


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _random_json(rng: random.Random, depth: int) -> object:
    tricky = ['"', "\\", "[", "]", "{", "}", '\\"', "\\\\", "]]]}}", "[[{"]
    if depth == 0 or rng.random() < 0.2:
        return "".join(rng.choice([*tricky, "a", " "]) for _ in range(rng.randrange(6)))
    if rng.random() < 0.5:
        return [_random_json(rng, depth - 1) for _ in range(rng.randrange(1, 4))]
    return {_random_json(rng, 0): _random_json(rng, depth - 1) for _ in range(rng.randrange(1, 4))}


def test_the_depth_check_agrees_with_the_parsed_depth() -> None:
    rng = random.Random(12)
    for _ in range(400):
        value = _random_json(rng, rng.randrange(1, 9))
        data = json.dumps(value).encode()
        limit = rng.randrange(1, 9)
        assert too_deep(data, limit) == (_depth(value) > limit), data
    assert not too_deep(nested(MAX_JSON_DEPTH)) and too_deep(nested(MAX_JSON_DEPTH + 1))
