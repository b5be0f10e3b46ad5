"""The threads that run jobs' loops: daemon threads, reused once a loop returns.

A job's worker polls, downloads and stores for as long as its batches run; a partitioned run
makes a job per partition, so a million-row run is dozens of jobs one after another. With a new
thread per job, glibc hands each new thread the next of its malloc arenas in turn (up to eight
per core), and every arena a job's results passed through keeps its high-water mark: the
client's peak memory grew with the number of partitions run (about 1.4× from 1,000,000 to
3,000,000 rows on the Polars lazy path) until every arena had been warmed. A thread kept for the
next job keeps its arena, so a run's memory is that of the jobs running at once.

Threads are made only when every kept one is busy, so jobs never wait for each other; one left
idle for :data:`IDLE_SECONDS` ends. They are daemon threads like the workers were: the
interpreter's exit hook in :mod:`batchkit.jobs` lets running jobs finish creating what they
planned, and does not wait for their batches to end.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

__all__ = ["IDLE_SECONDS", "start"]

IDLE_SECONDS = 60.0
"""How long a worker with no job to run is kept for the next one."""

IDLE_NAME = "batchkit-worker-idle"
"""The name of a kept worker while it has no job (a running one is named after its job)."""

_tasks: queue.SimpleQueue[tuple[Callable[[], None], str]] = queue.SimpleQueue()
_lock = threading.Lock()
_idle = 0  # workers waiting for a task (a new one counts from its start)
_unclaimed = 0  # tasks put and not yet taken


def start(target: Callable[[], None], name: str) -> None:
    """Run ``target`` on a worker thread named ``name``: a kept idle one, else a new one."""
    global _idle, _unclaimed
    with _lock:
        _tasks.put((target, name))
        _unclaimed += 1
        spawn = _unclaimed > _idle
        if spawn:
            _idle += 1
    if spawn:
        threading.Thread(target=_serve, name=name, daemon=True).start()


def _serve() -> None:
    global _idle, _unclaimed
    me = threading.current_thread()
    while True:
        try:
            target, name = _tasks.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            with _lock:
                if _unclaimed == 0:
                    _idle -= 1
                    return
            continue
        with _lock:
            _idle -= 1
            _unclaimed -= 1
        me.name = name
        try:
            target()
        except BaseException as exc:  # a target's own errors are its to surface; never lose the thread quietly
            threading.excepthook(threading.ExceptHookArgs((type(exc), exc, exc.__traceback__, me)))
        finally:
            del target
            me.name = IDLE_NAME
            with _lock:
                _idle += 1
