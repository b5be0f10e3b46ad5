"""The state file: a simulator started again on it carries on with its batches."""

from __future__ import annotations

import signal
from pathlib import Path

import anthropic
import pytest
from simtools import requests

from batchkit.simulator import (
    Processing,
    SimConfig,
    Simulator,
    StateConfigError,
    StateError,
    StateLockedError,
    spawn,
)
from batchkit.simulator.__main__ import main

SLOW = Processing(fixed_latency=60.0, per_request=1.0, concurrency=5)


def start(path: Path, **config: object) -> tuple[Simulator, anthropic.Anthropic]:
    config.setdefault("processing", SLOW)
    sim = Simulator(config=SimConfig(seed=7, **config), state=path)  # type: ignore[arg-type]
    return sim, sim.client(_strict_response_validation=True, max_retries=0)


def results(client: anthropic.Anthropic, batch_id: str) -> list[dict]:
    return [r.model_dump() for r in client.messages.batches.results(batch_id)]


def test_batches_carry_on_after_a_restart_with_the_same_results(tmp_path):
    path = tmp_path / "sim-state.sqlite3"
    sim, client = start(path)
    done = client.messages.batches.create(requests=requests(12, "d"))
    sim.advance(3600)
    answers = results(client, done.id)
    running = client.messages.batches.create(requests=requests(30, "r"))
    canceled = client.messages.batches.create(requests=requests(3, "c"))
    client.messages.batches.cancel(canceled.id)
    gone = client.messages.batches.create(requests=requests(2, "g"))
    sim.advance(3600)
    client.messages.batches.delete(gone.id)
    late = client.messages.batches.create(requests=requests(20, "l"))
    sim.close()  # as a killed process would: nothing more is written

    sim, client = start(path)
    try:
        assert client.messages.batches.retrieve(late.id).processing_status == "in_progress"
        sim.advance(3600)
        assert results(client, done.id) == answers  # made again from the requests, the same
        assert client.messages.batches.retrieve(late.id).request_counts.succeeded == 20
        assert [r.custom_id for r in client.messages.batches.results(late.id)] == [f"l{i}" for i in range(20)]
        assert client.messages.batches.retrieve(canceled.id).request_counts.canceled == 3
        with pytest.raises(anthropic.NotFoundError, match="deleted"):
            client.messages.batches.retrieve(gone.id)
        new = client.messages.batches.create(requests=requests(1, "n"))
        listed = [b.id for b in client.messages.batches.list(limit=2).data]
        assert listed == [new.id, late.id]  # newest first, the order kept across the restart
        older = client.messages.batches.list(limit=10, after_id=late.id)
        assert [b.id for b in older.data] == [canceled.id, running.id, done.id]
        assert sim.stats()["batch_requests_received"] == 1  # the restored batches were not sent again
    finally:
        sim.close()


def test_batches_are_not_restored_under_a_configuration_that_answers_them_differently(tmp_path):
    path = tmp_path / "sim-state.sqlite3"
    sim, client = start(path)
    client.messages.batches.create(requests=requests(3, "x"))
    sim.close()
    with pytest.raises(StateConfigError, match="another configuration"):
        Simulator(config=SimConfig(seed=8, processing=SLOW), state=path)  # another seed: other fault draws
    with pytest.raises(StateConfigError):
        Simulator(config=SimConfig(seed=7, processing=SLOW), responder=lambda params: "other", state=path)
    sim, client = start(path, time_scale=60)  # the same answers, only faster: restored
    try:
        assert len(client.messages.batches.list().data) == 1
    finally:
        sim.close()
    empty = tmp_path / "empty.sqlite3"
    start(empty)[0].close()
    Simulator(config=SimConfig(seed=9), state=empty).close()  # no batches yet: any configuration


def test_a_clock_run_far_ahead_still_reopens(tmp_path):
    path = tmp_path / "sim-state.sqlite3"
    sim, _ = start(path, time_scale=1e12)
    sim.clock.timestamp()
    sim.stats()
    sim.close()
    sim, _ = start(path, time_scale=1e12)  # its saved clock is clamped to the clock's last day
    sim.close()


def test_the_clock_never_runs_backwards_across_a_restart(tmp_path):
    path = tmp_path / "sim-state.sqlite3"
    sim, client = start(path, time_scale=3600.0)
    sim.advance(10 * 86400)
    batch = client.messages.batches.create(requests=requests(2))
    seen = sim.clock.timestamp()
    sim.close()
    sim, client = start(path, time_scale=3600.0)
    try:
        assert sim.clock.timestamp() >= seen
        assert client.messages.batches.retrieve(batch.id).created_at.timestamp() <= sim.clock.timestamp()
    finally:
        sim.close()


def test_archived_batches_keep_their_counts_not_their_requests(tmp_path):
    path = tmp_path / "sim-state.sqlite3"
    sim, client = start(path)
    batch = client.messages.batches.create(requests=requests(4))
    sim.advance(30 * 86400)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.archived_at is not None
    sim.close()
    sim, client = start(path)
    try:
        again = client.messages.batches.retrieve(batch.id)
        assert again.request_counts == ended.request_counts and again.ended_at == ended.ended_at
        with pytest.raises(anthropic.NotFoundError, match="archived"):
            client.messages.batches.results(batch.id)
    finally:
        sim.close()


def test_a_second_simulator_on_the_same_state_file_is_refused(tmp_path):
    path = tmp_path / "sim-state.sqlite3"
    first, _ = start(path)
    with pytest.raises(StateLockedError, match="another simulator is running on the state file"):
        Simulator(state=path)
    first.close()
    Simulator(state=path).close()  # free again once the first let go


def test_a_file_that_is_not_a_state_file_is_refused(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database at all, just some words " * 100)
    with pytest.raises(StateError, match="not a simulator state file"):
        Simulator(state=junk)


def test_without_a_state_file_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sim = Simulator(config=SimConfig(processing=Processing.instant()))
    sim.client().messages.batches.create(requests=requests(2))
    assert sim.state_path is None and list(tmp_path.iterdir()) == []


def test_a_served_simulator_killed_with_sigkill_keeps_its_batches(tmp_path, capsys):
    path = tmp_path / "sim-state.sqlite3"
    args = ["--state", str(path), "--fixed-latency", "1", "--per-request", "0"]
    with spawn(extra_args=args) as proc, proc.client(max_retries=0) as client:
        batch = client.messages.batches.create(requests=requests(5))
        proc.process.send_signal(signal.SIGKILL)
        proc.process.wait()
    with spawn(extra_args=args) as proc, proc.client(max_retries=0) as client:
        proc.advance(60)
        assert client.messages.batches.retrieve(batch.id).request_counts.succeeded == 5
        assert len(list(client.messages.batches.results(batch.id))) == 5
        with pytest.raises(SystemExit) as exited:  # a second one on the same file, while it runs
            main(["--port", "0", *args])
    assert exited.value.code == 2
    assert "another simulator is running on the state file" in capsys.readouterr().err
