"""This process's jobs: the weak map a re-attach finds the running one in, and the exit hook.

A job's state lives in the store, so any process can attach to it; within one process there is
at most one :class:`batchkit.Job` object (and so one worker) per job and store, kept here in a
weak map: a job nobody holds, whose worker has finished, is let go with its frame and caches.

Workers are daemon threads, so a script that ends does not wait hours for its batches. But a
script that ends right after ``submit()`` must not take the *creation* of its batches with it:
at interpreter exit a hook lets every worker finish creating what it planned (bounded by
:data:`EXIT_GRACE` seconds, without waiting for results) and says on stderr how to pick each
job up later.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .outcomes import ResultReader

__all__ = ["EXIT_GRACE", "LOCK", "Live", "LiveWorker", "finish_creating_at_exit", "live", "live_job_ids"]

EXIT_GRACE = 120.0
"""Seconds a process that is exiting waits for its workers to finish creating planned batches."""

LOCK = threading.Lock()
"""Guards the map, and every worker's running flag (a worker deciding to stop while it is started again)."""


class LiveWorker(Protocol):
    """What the exit hook asks of a job's worker (:class:`batchkit.engine.worker.Worker`)."""

    running: bool
    done: threading.Event

    def exit_now(self) -> None: ...

    def exit_note(self) -> str: ...


class Live(Protocol):
    """A job of this process, as the exit hook and the listing see it."""

    @property
    def worker(self) -> LiveWorker: ...

    @property
    def reader(self) -> ResultReader: ...


live: weakref.WeakValueDictionary[tuple[str, str], Live] = weakref.WeakValueDictionary()
"""(store path, job id) → the job's object in this process."""


def live_job_ids() -> set[str]:
    """The ids of the jobs this process has objects for."""
    return {job_id for (_, job_id) in list(live.keys())}


def finish_creating_at_exit() -> None:
    """At interpreter exit: let every running worker create what it planned, then say how to go on.

    Runs before the interpreter stops its daemon threads (``threading``'s own exit hooks, the
    ones ``concurrent.futures`` uses; plain ``atexit`` where those are missing).
    """
    running = [job.worker for job in list(live.values()) if job.worker.running]
    if not running:
        return
    for worker in running:
        worker.exit_now()
    deadline = time.monotonic() + EXIT_GRACE
    for worker in running:
        worker.done.wait(max(0.0, deadline - time.monotonic()))
    for worker in running:
        note = worker.exit_note()
        if note:
            print(note, file=sys.stderr)


def _register_exit_hook() -> None:
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError
        register(finish_creating_at_exit)
    except RuntimeError:  # no such hook, or the interpreter is already shutting down
        atexit.register(finish_creating_at_exit)


_register_exit_hook()
