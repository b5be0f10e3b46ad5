"""The commands that read or change a job store: ``jobs``, ``status``, ``wait``, ``cancel``,
``backup``, ``forget``, ``prune`` — and how every command finds its store.

A command never creates a store (a path with no store is an error), and without ``--store`` or
``BATCHKIT_STORE`` a job is looked for in both default stores, which live side by side in the
standard location (the real API's and the simulator's), so a simulator job is found from a plain
shell too. Each command says first thing on stdout which store it read.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from batchkit.core.states import JobState

if TYPE_CHECKING:
    from batchkit.engine.jobs import Job
    from batchkit.stores.store import Store

__all__ = [
    "STORE_NAMES",
    "cmd_backup",
    "cmd_cancel",
    "cmd_forget",
    "cmd_jobs",
    "cmd_prune",
    "cmd_status",
    "cmd_wait",
    "job_store",
    "load_job",
    "open_store",
    "store_path",
]

STORE_NAMES = {"jobs.sqlite3": "the real API's", "simulator.sqlite3": "the simulator's"}
"""The default stores' file names, which live side by side in the standard location."""


def store_path(args: argparse.Namespace) -> tuple[Path, bool]:
    """The store a command reads, and whether the user named it (``--store`` or ``BATCHKIT_STORE``)."""
    from batchkit.engine.locations import default_store_path

    if args.store:
        return Path(args.store).expanduser(), True
    return default_store_path(), bool(os.environ.get("BATCHKIT_STORE"))


def open_store(args: argparse.Namespace) -> Store:
    """The store a command reads, opened without creating it."""
    from batchkit.errors import StoreNotFoundError
    from batchkit.stores.store import Store

    path, named = store_path(args)
    if not path.exists() and not path.is_symlink():
        how = ("--store" if args.store else "BATCHKIT_STORE") if named else "the default location"
        raise StoreNotFoundError(
            f"no job store at {path} (from {how}): the file does not exist, and batchkit only creates a "
            "store when a call writes to it. Check the path, or pass --store PATH of an existing store",
            path=path,
        )
    return Store.resolve(path, create=False)


def _other_default(path: Path) -> Path:
    """The other default store beside ``path`` (one of :data:`STORE_NAMES`)."""
    return path.with_name(next(name for name in STORE_NAMES if name != path.name))


def _other_store_note(path: Path) -> str | None:
    """A pointer to the other default store beside this one, when it has jobs."""
    from batchkit.stores.storefile import peek_job_count

    if path.name not in STORE_NAMES:
        return None
    other = _other_default(path)
    count = peek_job_count(other)
    if not count:
        return None
    return (
        f"note: {other} ({STORE_NAMES[other.name]} store) has {count:,} job{'s' * (count != 1)}: "
        f"batchkit jobs --store {other}"
    )


def job_store(args: argparse.Namespace) -> Store:
    """The store that holds ``args.job`` (a job's or a run's id): the store the user named, else
    the default store, else the other default store beside it — so a simulator job is found
    from a plain shell too. It says which store it read, first thing on stdout."""
    from batchkit.errors import JobNotFoundError
    from batchkit.stores.store import Store

    path, named = store_path(args)
    if named or path.name not in STORE_NAMES:
        store = open_store(args)
        print(f"job store: {store.path}")
        return store
    other = _other_default(path)
    existing = [p for p in (path, other) if p.exists()]
    if not existing:
        return open_store(args)  # the usual "no job store" error
    for candidate in existing:
        store = Store.resolve(candidate, create=False)
        if store.load_job(args.job) is not None or store.run_parts(args.job):
            print(f"job store: {store.path} ({STORE_NAMES[candidate.name]} store)")
            return store
    raise JobNotFoundError(
        f"no job or run {args.job!r} in either default store ({' or '.join(str(p) for p in existing)}): "
        "`batchkit jobs` lists the jobs, or pass --store PATH of the store that holds it",
        job_id=args.job,
    )


def load_job(args: argparse.Namespace) -> Job:
    from batchkit.engine.jobs import Job

    return Job.load(args.job, store=job_store(args))


# --------------------------------------------------------------------------- commands


def cmd_jobs(args: argparse.Namespace) -> int:
    from batchkit.engine.listing import jobs

    path, named = store_path(args)
    if not named and not path.exists():
        print(f"job store: {path} (does not exist yet: no jobs)")
    else:
        store = open_store(args)
        frame = jobs(store)
        mode = " (read-only)" if store.readonly else ""
        print(f"job store: {store.path}{mode}: {len(frame):,} job{'s' * (len(frame) != 1)}")
        if not frame.empty:
            print(frame.to_string(index=False))
    note = _other_store_note(path)
    if note:
        print(note)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    job = load_job(args)
    print(f"{job.job_id}  {job.status}  model={job.model}  created={job.created_at}")
    print(job.summary())
    batches = job.batches()
    if not batches.empty:
        print(batches[["api_id", "state", "attempt", "n_requests", "created_at", "ended_at"]].to_string(index=False))
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    from batchkit.display.views import TextProgress

    job = load_job(args)
    # On a terminal, the job's progress on stderr while it runs (stdout keeps its store line and its
    # one summary line, for scripts).
    view = TextProgress(job, file=sys.stderr) if sys.stderr.isatty() else None
    job.wait()
    if view is not None:
        view.finish()
    print(f"{job.job_id}: {job.summary()}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    job = load_job(args)
    status = job.status
    if status != JobState.RUNNING:
        what = "had already been canceled" if status == JobState.CANCELED else "had already ended"
        print(f"{job.job_id} {what}: nothing to cancel ({job.summary()})")
        return 0
    job.cancel()
    print(f"{job.job_id} canceled: {job.summary()}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    store = open_store(args)
    written = store.backup(args.dest, overwrite=args.force)
    size = written.stat().st_size
    print(f"backed up the job store at {store.path} to {written} ({size / 1e6:,.1f} MB)")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    print(open_store(args).forget(args.job, force=args.force))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    print(open_store(args).prune(older_than=args.older_than, force=args.force, dry_run=args.dry_run))
    return 0
