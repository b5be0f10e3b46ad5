"""How batchkit knows it talks to its simulator: it asks the server, never the host name.

A gateway on 127.0.0.1 in front of the real API must get the real store and the real poll
schedule; the simulator, served or in process, its own. The question is asked once per client.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anthropic
import httpx2
import pandas as pd
import pytest

import batchkit
from batchkit.backends import clients as backend
from batchkit.engine.locations import default_store_path
from batchkit.errors import NoCredentialsError, ServerUnreachableError
from batchkit.simulator import serve
from tests.conftest import frame, make_sim

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class Gateway:
    """A tiny HTTP proxy on 127.0.0.1: what a company gateway to the API looks like.

    It forwards everything to ``upstream``. With ``strip=True`` it drops the simulator's
    identity header — it then stands for a gateway to the *real* API (which never sends it),
    while the answers still come from a simulator so the test runs offline.
    """

    def __init__(self, upstream: str, *, strip: bool) -> None:
        self.seen: list[str] = []
        outer = self
        http = httpx2.Client(base_url=upstream, timeout=30)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                outer.seen.append(f"{self.command} {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                answer = http.request(self.command, self.path, headers=headers, content=body)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() in HOP_BY_HOP or (strip and key.lower() == "x-batchkit-simulator"):
                        continue
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._http = http
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()


@pytest.fixture
def served() -> Iterator[tuple]:
    sim = make_sim()
    with serve(sim) as server:
        yield sim, server


@pytest.fixture
def xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The default store location in play (no BATCHKIT_STORE)."""
    monkeypatch.delenv("BATCHKIT_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "batchkit"


def claimed(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT value FROM meta WHERE name = 'backend'").fetchone()[0]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def test_a_loopback_gateway_to_the_real_api_gets_the_real_store_and_poll_schedule(served, xdg) -> None:
    _, server = served
    gateway = Gateway(server.base_url, strip=True)
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key="sk-ant-real", max_retries=0)
    try:
        assert backend.is_simulator(client) is False
        assert backend.poll_schedule(client, None) == backend.REAL_API_POLL_SCHEDULE
        assert default_store_path(client) == xdg / "jobs.sqlite3"
        job = frame(3).claude.submit("Say {t}", output="o", client=client, poll_interval=0.05)
        out = job.wait(timeout=30).result()
        assert list(out["o"]) == ["re:Say row 0", "re:Say row 1", "re:Say row 2"]
        assert job.store.path == xdg / "jobs.sqlite3" and claimed(job.store.path) == "Anthropic API"
        assert not (xdg / "simulator.sqlite3").exists()
        # One free question (a model list), then only the calls the job needed.
        assert gateway.seen[0] == "GET /v1/models?limit=1"
        assert sum(line.startswith("GET /v1/models") for line in gateway.seen) == 1
        job.store.close()
    finally:
        client.close()  # its kept-alive connection, else closed whenever the garbage is collected
        gateway.close()


def test_a_proxy_in_front_of_the_simulator_is_still_the_simulator(served, xdg) -> None:
    _, server = served
    gateway = Gateway(server.base_url, strip=False)
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key="k")
    try:
        assert backend.is_simulator(client) is True
        assert backend.poll_schedule(client, None) == backend.LOCAL_POLL_SCHEDULE
        assert default_store_path(client) == xdg / "simulator.sqlite3"
    finally:
        client.close()
        gateway.close()


def test_the_simulator_is_asked_once_per_client_and_its_copies_share_the_answer(served) -> None:
    sim, server = served
    with server.client() as client:
        assert backend.is_simulator(client) and backend.api_name(client) == "simulator"
        assert backend.is_simulator(client.with_options(max_retries=0))
        assert backend.poll_schedule(client, None) == backend.LOCAL_POLL_SCHEDULE
        assert sim.stats()["models.list"] == 1
        job = frame(2).claude.submit("Say {t}", output="o", client=client)
        job.wait(timeout=30)
        frame(2).claude.submit("Again {t}", output="o", client=client).wait(timeout=30)
    assert sim.stats()["models.list"] == 1  # no request per call once known


def test_concurrent_first_questions_send_one_request(served) -> None:
    sim, server = served
    client = server.client()
    barrier = threading.Barrier(8)
    answers: list[bool] = []

    def ask() -> None:
        barrier.wait()
        answers.append(backend.is_simulator(client))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert answers == [True] * 8 and sim.stats()["models.list"] == 1


def test_an_in_process_simulator_client_is_known_without_a_request(xdg) -> None:
    sim = make_sim()
    client = sim.client()
    assert backend.is_simulator(client) and default_store_path(client) == xdg / "simulator.sqlite3"
    assert sim.stats()["models.list"] == 0


def test_calls_without_a_client_share_one_built_from_the_environment(served, monkeypatch) -> None:
    _, server = served
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-one")
    first = backend.resolve_client()
    assert backend.resolve_client() is first  # its connections are reused from call to call
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-two")
    second = backend.resolve_client()
    assert second is not first and second.api_key == "sk-two" and not first.is_closed()
    backend.close_environment_client()
    assert second.is_closed() and backend.resolve_client() is not second


def test_the_environment_base_url_is_asked_once_per_process(served, xdg, monkeypatch) -> None:
    sim, server = served
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-anything")
    try:
        assert default_store_path() == xdg / "simulator.sqlite3"
        assert default_store_path() == xdg / "simulator.sqlite3"
        for _ in range(3):  # each call without client= builds a client from the environment
            assert backend.is_simulator(backend.resolve_client())
        assert sim.stats()["models.list"] == 1
        backend.forget_server_identities()
        assert default_store_path() == xdg / "simulator.sqlite3"
        assert sim.stats()["models.list"] == 2  # asked again
    finally:
        backend.forget_server_identities()  # the port may serve something else later


def test_a_server_that_does_not_answer_stops_the_call_before_anything_is_stored(xdg, monkeypatch) -> None:
    url = closed_port_url()
    client = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0)
    with pytest.raises(ServerUnreachableError, match=f"cannot reach {url}.*batchkit sim") as info:
        frame(2).claude.submit("Say {t}", output="o", client=client)
    assert info.value.url == url and isinstance(info.value, ConnectionError)
    assert not xdg.exists()  # no store was written, no job recorded
    assert backend.poll_schedule(client, None) == backend.REAL_API_POLL_SCHEDULE
    # Without a client of the caller's (e.g. `batchkit jobs`), the real store: it is asked again later.
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
    assert default_store_path() == xdg / "jobs.sqlite3"


def test_the_real_api_host_is_never_asked(xdg) -> None:
    client = anthropic.Anthropic(api_key="sk-ant-x")  # offline: a request would fail
    assert backend.is_simulator(client) is False and default_store_path(client) == xdg / "jobs.sqlite3"


def test_nothing_to_send_needs_no_client_or_key() -> None:
    skipped = pd.DataFrame({"t": [None, None]})
    job = skipped.claude.submit("Say {t}", output="o")  # no key, no client, no simulator
    assert list(job.wait(timeout=10).outcomes()["status"]) == ["skipped", "skipped"]
    with pytest.raises(NoCredentialsError):
        frame(1).claude.submit("Say {t}", output="o")


def test_start_simulator_uses_the_simulator_store(xdg) -> None:
    server = batchkit.start_simulator()
    try:
        job = frame(1).claude.submit("Say {t}", output="o", poll_interval=0.05)
        job.wait(timeout=30)
        assert job.store.path == xdg / "simulator.sqlite3" and claimed(job.store.path) == "simulator"
        job.store.close()
    finally:
        server.stop()
