"""The threads that run jobs' loops: daemon threads, reused once a loop returns.

A job's worker polls, downloads and stores for as long as its batches run; a partitioned run
makes a job per partition, so a million-row run is dozens of jobs one after another. With a new
thread per job, glibc hands each new thread the next of its malloc arenas in turn (up to eight
per core), and every arena a job's results passed through keeps its high-water mark: the
client's peak memory grew with the number of partitions run (about 1.4× from 1,000,000 to
3,000,000 rows on the Polars lazy path) until every arena had been warmed. A thread kept for the
next job keeps its arena, so a run's memory is that of the jobs running at once.

Threads are made only when every kept one is busy, so jobs never wait for each other; the idle
one that ran last goes first (its arena is the warmest), and one left idle for
:data:`IDLE_SECONDS` ends. They are daemon threads like the workers were: the
interpreter's exit hook in :mod:`batchkit.engine.jobs` lets running jobs finish creating what they
planned, and does not wait for their batches to end.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

__all__ = ["IDLE_NAME", "IDLE_SECONDS", "start"]

IDLE_SECONDS = 60.0
"""How long a worker with no job to run is kept for the next one."""

IDLE_NAME = "batchkit-worker-idle"
"""The name of a kept worker while it has no job (a running one is named after its job)."""


class _Worker:
    def __init__(self) -> None:
        self.ready = threading.Event()
        self.task: tuple[Callable[[], None], str] | None = None


_idle: list[_Worker] = []  # kept workers waiting for a task; the last one in is the first out (the warmest)
_lock = threading.Lock()


def _forget_in_child() -> None:
    """A forked child has none of its parent's threads: it must not hand a job to one of them."""
    global _lock
    _idle.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forget_in_child)


def start(target: Callable[[], None], name: str) -> None:
    """Run ``target`` on a worker thread named ``name``: the idle one that ran most recently, else a new one."""
    with _lock:
        worker = _idle.pop() if _idle else None
        if worker is not None:
            worker.task = (target, name)
            worker.ready.set()
            return
    worker = _Worker()
    worker.task = (target, name)
    threading.Thread(target=_serve, args=(worker,), name=name, daemon=True).start()


def _serve(worker: _Worker) -> None:
    me = threading.current_thread()
    while True:
        task, worker.task = worker.task, None
        assert task is not None
        target, me.name = task
        try:
            target()
        except BaseException as exc:  # a target's own errors are its to surface; never lose the thread quietly
            threading.excepthook(threading.ExceptHookArgs((type(exc), exc, exc.__traceback__, me)))
        del target, task
        me.name = IDLE_NAME
        with _lock:
            worker.ready.clear()
            _idle.append(worker)
        if not worker.ready.wait(IDLE_SECONDS):
            with _lock:
                if worker in _idle:  # nobody claimed it: end (a claim after the timeout sets ready under the lock)
                    _idle.remove(worker)
                    return
            worker.ready.wait()  # claimed just as it timed out: the task is being handed over
