"""Over real HTTP: serve() in a thread, spawn() as a separate process, and the CLI."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import anthropic
import httpx2
import pytest
from simtools import BODY_CUT, requests, strict_results

from batchkit.simulator import Faults, Processing, SimConfig, Simulator, serve, spawn
from batchkit.simulator.__main__ import build_parser, config_from_args


def test_serve_over_http_full_cycle_and_results_url_host() -> None:
    sim = Simulator(SimConfig(processing=Processing.instant()))
    with serve(sim, port=0) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        client = server.client(_strict_response_validation=True, max_retries=0)
        created = client.messages.batches.create(requests=requests(120))
        batch = client.messages.batches.retrieve(created.id)
        assert batch.results_url == f"{server.base_url}/v1/messages/batches/{created.id}/results"
        results = strict_results(client, created.id)
        assert len(results) == 120 and all(r.result.type == "succeeded" for r in results.values())
        assert (
            client.messages.count_tokens(
                model="claude-haiku-4-5", messages=[{"role": "user", "content": "hello world"}]
            ).input_tokens
            == 10
        )
        client.close()
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"{server.base_url}/_sim/stats")


def test_served_on_a_platform_without_epoll(monkeypatch: pytest.MonkeyPatch) -> None:
    # macOS and Windows have no epoll: the loop falls back to the selectors module
    from batchkit.simulator import _loop

    monkeypatch.setattr(_loop, "select", type(sys)("select_without_epoll"))
    sim = Simulator(SimConfig(processing=Processing.instant()))
    with serve(sim, port=0) as server:
        client = server.client(_strict_response_validation=True, max_retries=0)
        created = client.messages.batches.create(requests=requests(30))
        results = strict_results(client, created.id)
        assert len(results) == 30 and all(r.result.type == "succeeded" for r in results.values())
        message = client.messages.create(
            model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "hello"}]
        )
        assert message.content[0].type == "text"
        client.close()


def test_serve_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        serve(Simulator(), host="0.0.0.0")


def test_dropped_results_stream_over_http_cuts_the_socket() -> None:
    sim = Simulator(
        SimConfig(processing=Processing.instant(), faults=Faults(schedule=[("batches.results", 1, "drop")]))
    )
    with serve(sim) as server:
        client = server.client(max_retries=0)
        created = client.messages.batches.create(requests=requests(300))
        client.messages.batches.retrieve(created.id)
        got = []
        with pytest.raises(BODY_CUT):
            for item in client.messages.batches.results(created.id):
                got.append(item.custom_id)
        assert 0 < len(got) < 300
        assert len(list(client.messages.batches.results(created.id))) == 300
        client.close()


def test_body_over_limit_over_http_is_413() -> None:
    with serve(Simulator(SimConfig(max_batch_body_bytes=5_000))) as server:
        client = server.client()
        with pytest.raises(anthropic.RequestTooLargeError):
            client.messages.batches.create(requests=requests(200))
        assert client.models.list().data  # the connection state survived
        client.close()


def test_a_body_that_stops_arriving_gets_408_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    from batchkit.simulator import _http

    monkeypatch.setattr(_http._Handler, "timeout", 0.5)  # instead of two minutes
    with serve(Simulator()) as server, socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\nanthropic-version: 2023-06-01"
            b'\r\ncontent-length: 1000\r\n\r\n{"model"'
        )
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        assert response.status == 408 and response.getheader("connection") == "close"
        assert json.loads(response.read())["error"]["type"] == "timeout_error"
        assert server.client(max_retries=0).models.list().data  # still serving


def test_a_content_length_that_is_not_a_number_is_answered_not_dropped() -> None:
    with serve(Simulator()) as server:
        for length in ("-1", "abc", "1e3", " 12 34"):
            with socket.create_connection((server.host, server.port), timeout=10) as sock:
                sock.sendall(
                    f"POST /v1/messages/batches HTTP/1.1\r\nhost: x\r\ncontent-length: {length}\r\n\r\n".encode()
                    + b"x" * 100
                )
                response = http.client.HTTPResponse(sock, method="POST")
                response.begin()
                assert response.status == 400, length
                assert "Content-Length" in json.loads(response.read())["error"]["message"]
        assert server.stats()["batches_created"] == 0


def test_cli_flags_build_the_config() -> None:
    args = build_parser().parse_args(
        [
            "--port",
            "0",
            "--time-scale",
            "60",
            "--seed",
            "9",
            "--fixed-latency",
            "2",
            "--per-request",
            "0.1",
            "--concurrency",
            "50",
            "--errored-rate",
            "api_error=0.05,overloaded_error=0.02",
            "--expired-rate",
            "0.01",
            "--http-error-rate",
            "429=0.05,500=0.01",
            "--drop-results-rate",
            "0.1",
            "--slow",
            "0.01",
            "--rpm",
            "100",
            "--tpm",
            "5000",
            "--cache-miss-rate",
            "0.2",
            "--fault-schedule",
            "batches.create:1:500;*:2/3:529;batches.results:1:slow:0.1",
        ]
    )
    config = config_from_args(args)
    assert config.time_scale == 60 and config.seed == 9 and config.cache_miss_rate == 0.2
    assert config.processing == Processing(fixed_latency=2, per_request=0.1, concurrency=50)
    faults = config.faults
    assert faults.errored_rate == {"api_error": 0.05, "overloaded_error": 0.02}
    assert faults.http_error_rate == {429: 0.05, 500: 0.01} and faults.expired_rate == 0.01
    assert (faults.rpm, faults.tpm, faults.slow, faults.drop_results_rate) == (100, 5000, 0.01, 0.1)
    assert faults.schedule == (("batches.create", 1, 500), ("*", [2, 3], 529), ("batches.results", 1, "slow:0.1"))


@pytest.mark.slow
def test_spawn_separate_process_stats_and_clock() -> None:
    faults = Faults(schedule=[("batches.create", 1, 500)])
    with spawn(port=0, seed=3, processing=Processing(), faults=faults) as proc:
        assert proc.pid and proc.base_url.startswith("http://127.0.0.1:")
        client = proc.client(_strict_response_validation=True, max_retries=2)
        created = client.messages.batches.create(requests=requests(10))  # 500, retried, created
        assert client.messages.batches.retrieve(created.id).processing_status == "in_progress"
        proc.advance(3600)
        assert client.messages.batches.retrieve(created.id).request_counts.succeeded == 10
        stats = proc.stats()
        assert stats["batches.create"] == 2 and stats["batches_created"] == 1
        assert stats["faults"] == {"http_500": 1} and stats["cpu_seconds"] > 0
        client.close()
    assert proc.process.returncode == 0  # stopped cleanly on SIGTERM


@pytest.mark.slow
def test_a_spawned_simulator_with_its_own_keys_is_still_controlled() -> None:
    with spawn(port=0, extra_args=["--api-key", "sk-mine", "--instant"]) as proc:
        proc.advance(60)
        proc.reset_stats()
        client = proc.client(max_retries=0)
        assert client.messages.batches.create(requests=requests(2)).request_counts.processing == 2
        assert proc.stats()["batches_created"] == 1
        refused = httpx2.get(f"{proc.base_url}/_sim/stats", headers={"x-api-key": "sk-other"})
        assert refused.status_code == 401 and refused.headers["x-batchkit-simulator"]
        client.close()


@pytest.mark.slow
def test_a_third_party_script_with_only_the_two_env_vars(tmp_path: Path) -> None:
    script = tmp_path / "pipeline.py"
    script.write_text(
        textwrap.dedent("""
        import time
        import anthropic

        client = anthropic.Anthropic()
        batch = client.messages.batches.create(requests=[
            {"custom_id": f"row-{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 20,
             "messages": [{"role": "user", "content": f"Classify the sentiment as positive or negative: review {i} was great"}]}}
            for i in range(25)])
        while client.messages.batches.retrieve(batch.id).processing_status != "ended":
            time.sleep(0.1)
        answers = {r.custom_id: r.result.message.content[0].text for r in client.messages.batches.results(batch.id)}
        print(len(answers), sorted(set(answers.values())))
    """)
    )
    with spawn(port=0, time_scale=10) as proc:
        env = {"ANTHROPIC_BASE_URL": proc.base_url, "ANTHROPIC_API_KEY": "sk-anything"}
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "25 ['positive']"


@pytest.mark.slow
def test_cli_prints_exactly_one_line_and_stops_on_sigterm() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchkit.simulator", "--port", "0", "--instant"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("batchkit simulator listening on http://127.0.0.1:")
        base_url = line.split()[-1]
        assert httpx2.get(f"{base_url}/_sim/stats", headers={"x-api-key": "k"}).json()["batches_created"] == 0
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=10)[0]
    assert proc.returncode == 0 and rest == ""
