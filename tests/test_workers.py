"""Jobs' loops run on kept worker threads: reused one job after another, never making a job wait."""

from __future__ import annotations

import threading
import time

import pytest

import batchkit  # noqa: F401  (registers df.claude)
from batchkit.engine import workers as _workers
from tests.conftest import frame, make_sim


def _run_on_worker(name: str, release: threading.Event | None = None) -> tuple[threading.Event, list[threading.Thread]]:
    ran, seen = threading.Event(), []

    def target() -> None:
        seen.append(threading.current_thread())
        assert threading.current_thread().name == name
        if release is not None:
            release.wait(10)
        ran.set()

    _workers.start(target, name)
    return ran, seen


def _idle_again(thread: threading.Thread) -> None:
    deadline = time.monotonic() + 5
    while thread.name != _workers.IDLE_NAME and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_finished_jobs_thread_runs_the_next_job():
    first_ran, first = _run_on_worker("batchkit-test-a")
    assert first_ran.wait(5)
    _idle_again(first[0])
    second_ran, second = _run_on_worker("batchkit-test-b")
    assert second_ran.wait(5)
    assert second[0] is first[0]  # the same thread (and so the same malloc arena)
    assert first[0].daemon


def test_jobs_running_at_once_each_get_a_thread_and_none_waits():
    release = threading.Event()
    runs = [_run_on_worker(f"batchkit-test-{i}", release) for i in range(3)]
    deadline = time.monotonic() + 5
    while sum(len(seen) for _, seen in runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    threads = {seen[0] for _, seen in runs}
    assert len(threads) == 3  # all three started without waiting for one another
    release.set()
    assert all(ran.wait(5) for ran, _ in runs)


def test_a_worker_left_idle_ends(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(_workers, "IDLE_SECONDS", 0.2)
    ran, seen = _run_on_worker("batchkit-test-idle")
    assert ran.wait(5)
    seen[0].join(5)  # it waited its (short) idle time for another job, then ended
    assert not seen[0].is_alive()


def test_jobs_one_after_another_run_on_one_kept_thread(monkeypatch: pytest.MonkeyPatch):
    ran_on: list[threading.Thread] = []
    start = _workers.start

    def recording(target, name):
        def run() -> None:
            ran_on.append(threading.current_thread())
            target()

        start(run, name)

    monkeypatch.setattr(_workers, "start", recording)
    client = make_sim().client()
    for i in range(4):  # one job after another, like a run's partitions
        df = frame(20)
        df["t"] = df["t"] + f" {i}"
        out = df.claude.batch("Say {t}", output="a", client=client, progress=False)
        assert out["a"].notna().all()
        _idle_again(ran_on[-1])
    assert len(ran_on) >= 4 and len(set(ran_on)) == 1  # not a thread per job


def _start_in_child(conn) -> None:
    ran = threading.Event()
    _workers.start(ran.set, "batchkit-test-child")
    conn.send(ran.wait(5))


def test_a_forked_child_starts_its_own_workers():
    import multiprocessing
    import warnings

    ran, _ = _run_on_worker("batchkit-test-parent")
    assert ran.wait(5)
    deadline = time.monotonic() + 5
    while not _workers._idle and time.monotonic() < deadline:  # the parent keeps an idle worker
        time.sleep(0.01)
    assert _workers._idle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: what users' pools do
        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe()
        process = context.Process(target=_start_in_child, args=(child,))
        process.start()
    assert parent.poll(10) and parent.recv() is True  # the child's job ran: no hand-off to a thread it lacks
    process.join(10)
