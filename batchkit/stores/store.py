"""The job store: one SQLite file that remembers every request, batch and answer.

It is what makes batchkit never pay twice. Requests are keyed by their content hash, so an
answer stored once serves every later call that renders the same request; batches are written
down *before* ``create`` is called (intent before money) and results the moment a batch ends,
before anything is merged.

Location, first that is set wins:

============================  ==========================================================
``store=`` argument           a path, or a :class:`Store`
``BATCHKIT_STORE``            environment variable, a path
default                       ``$XDG_DATA_HOME/batchkit/jobs.sqlite3``
                              (``~/.local/share/batchkit/jobs.sqlite3``)
============================  ==========================================================

:class:`Store` is one object made of parts, one module per reason to change:

=============================  ===================================================================
:mod:`.connection`             the connection, its lock, transactions (savepoints when nested),
                               migrations, SQLite's errors translated
:mod:`.transaction`            :class:`~batchkit.stores.transaction.Transaction`, the writing verbs
                               of one transaction (``with store.transaction() as tx: ...``)
:mod:`.jobs`                   jobs: written down, found by fingerprint, their status
:mod:`.units`                  units of work (``batches``) and their request bodies
:mod:`.ownership`              who owns a unit: claim, renew, release, take over (one rule)
:mod:`.results`                results kept as columns per unit, the in-memory and on-disk key index
:mod:`.runs`                   partitioned runs
:mod:`.schema`, :mod:`.storefile`, :mod:`.prune`   the schema's migrations; the file; removing jobs
=============================  ===================================================================

A unit of work is a row of ``batches`` whatever sends it (:mod:`batchkit.stores.units`); realtime
answers are stored as they arrive, a small group per transaction, each group a ``batches`` row of
its own with its ``batch_results`` columns (:mod:`batchkit.stores.results`), so a dead process
loses only the requests on the wire and every reader treats realtime and batch answers alike.

The file is created readable by its owner only (an existing store the user owns is tightened
to that on open). It holds no API key and no pickles: params are JSON, timestamps ISO-8601 UTC,
and the schema is a list of numbered migrations recorded in ``PRAGMA user_version`` — SQL, or a
Python step run in the same transaction (4: request keys leave out cache breakpoints, see
:func:`batchkit.stores.schema._unmarked_keys`; about 3 s for 20,000 cached requests, once).

A batchkit store is marked with SQLite's ``PRAGMA application_id`` (:data:`APPLICATION_ID`);
a store written before the mark existed is recognised by its tables and marked on open. Any
other database — or any other file — is refused before anything is written to it.

The store uses SQLite's write-ahead log while open and checkpoints it into the main file on
:meth:`Store.close` and at interpreter exit, so after a normal exit the ``.sqlite3`` file alone
holds every job. :meth:`Store.backup` (``batchkit backup DEST``) copies a store consistently
even while jobs run. :meth:`Store.forget` and :meth:`Store.prune` (``batchkit forget JOB``,
``batchkit prune --older-than 30d``) remove jobs and what they hold — keeping the answers a
remaining job uses (:mod:`batchkit.stores.prune`) — and then shrink the file.

A store that cannot be written — a read-only file, folder or file system — opens read-only:
everything that only reads (``batchkit jobs``, ``status``, ``results``, :func:`batchkit.engine.jobs`,
``Job.load(...).outcomes()``) works, and anything that writes raises
:class:`~batchkit.errors.StoreReadOnlyError` naming the cause and the fix. SQLite failures while
writing (a full disk, an I/O error) surface as :class:`~batchkit.errors.StoreError` with their
real cause, and the transaction is rolled back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from batchkit.core.states import AWAITING_RESULTS
from batchkit.errors import JobNotFoundError, OutputPathError, StoreError

from . import prune as _prune
from .connection import _OPEN, _OPEN_LOCK
from .digests import UnitDigests
from .jobs import Jobs
from .ownership import Ownership
from .prune import Removal
from .results import Results
from .runs import Runs
from .storefile import check_output_path, connect_readonly
from .units import Units

_AWAITING = tuple(AWAITING_RESULTS)

__all__ = ["Store", "locate_default_with", "store_path"]


def store_path(*, simulated: bool) -> Path:
    """Where the store lives when neither ``store=`` nor ``BATCHKIT_STORE`` says otherwise.

    Calls answered by batchkit's simulator get a store of their own, ``simulator.sqlite3``: its
    answers are canned, and a real call with the same content must never be answered from
    them. Whether calls go to the simulator is the caller's to say (``simulated``: the server was
    asked, see :func:`batchkit.backends.clients.is_simulator`); the store asks no server.
    """
    env = os.environ.get("BATCHKIT_STORE")
    if env:
        return Path(env).expanduser()
    return default_store_dir() / ("simulator.sqlite3" if simulated else "jobs.sqlite3")


def default_store_dir() -> Path:
    """The folder of the default store: that of ``BATCHKIT_STORE`` if set, else
    ``$XDG_DATA_HOME/batchkit`` or ``~/.local/share/batchkit`` (no server is asked)."""
    env = os.environ.get("BATCHKIT_STORE")
    if env:
        return Path(env).expanduser().parent
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "batchkit"


def locate_default_with(locate: Callable[[], Path]) -> None:
    """Say where the store with no path given is (``Store()``, ``Store.resolve(None)``).

    Which file that is depends on whether calls go to the simulator, which only a server can say;
    the store asks no server, so the engine hands its answer in here when it is imported
    (:func:`batchkit.engine.locations.default_store_path`; ``import batchkit`` imports it). Until
    then the default is the real API's store (:func:`store_path` with ``simulated=False``)."""
    global _locate_default
    _locate_default = locate


def _real_api_store() -> Path:
    return store_path(simulated=False)


_locate_default: Callable[[], Path] = _real_api_store


class Store(Results, Units, Ownership, Jobs, Runs):
    """The job store: one SQLite connection, shared by the threads of a process behind a lock.

    Writes go through :meth:`transaction` (``with store.transaction() as tx: tx.update_batch(...)``),
    which takes SQLite's write lock up front (``BEGIN IMMEDIATE``) so two processes planning the
    same requests see each other's intent; nested, it is a savepoint that rolls back alone.

    Args:
        path: the store's file (default: :func:`batchkit.engine.locations.default_store_path`).
        create: create the store if the file does not exist (``False``: raise
            :class:`~batchkit.errors.StoreNotFoundError` instead — what reading calls want).
        readonly: open for reading only, even if the file could be written. A store that cannot
            be written opens read-only by itself; :attr:`readonly_reason` says why.

    Raises:
        StoreError: the path cannot hold a store (its folder is a file, it is a folder, …), or
            the store is from a newer batchkit.
        StoreNotFoundError: no file at ``path`` and ``create`` is false (or ``readonly``).
        NotAStoreError: the file is not a batchkit store; nothing was written to it.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, create: bool = True, readonly: bool = False
    ) -> None:
        self._init_results()
        self._unit_digests = UnitDigests()
        super().__init__(
            Path(path).expanduser() if path is not None else _locate_default(), create=create, readonly=readonly
        )

    @classmethod
    def resolve(cls, store: Store | str | os.PathLike[str] | None, *, create: bool = True) -> Store:
        """A :class:`Store` from a ``store=`` argument (an open store, a path, or None).

        One :class:`Store` per file per process. ``create=False`` raises
        :class:`~batchkit.errors.StoreNotFoundError` rather than create a missing store.
        """
        if isinstance(store, Store):
            return store
        path = Path(store).expanduser() if store is not None else _locate_default()
        key = str(path.resolve()) if path.exists() else str(path.absolute())
        with _OPEN_LOCK:
            found = _OPEN.get(key)
            if found is None:
                found = _OPEN[key] = cls(path, create=create)
            return found

    @staticmethod
    def opened(path: str | os.PathLike[str]) -> Store | None:
        """This process's open :class:`Store` for the file at ``path``, if there is one (none is opened)."""
        found = Path(path).expanduser()
        key = str(found.resolve()) if found.exists() else str(found.absolute())
        with _OPEN_LOCK:
            store = _OPEN.get(key)
        return store

    # ------------------------------------------------------------------ backup

    def backup(self, dest: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Copy the whole store, consistently, to one self-contained file at ``dest``.

        Safe while jobs run (the copy is one snapshot; writers are not held up) and from a
        read-only store. The copy is written to a temporary file beside ``dest``, must pass
        SQLite's ``PRAGMA integrity_check``, and is then renamed into place, after any ``-wal``
        and ``-shm`` left beside ``dest`` are removed (SQLite would replay a stale ``-wal`` over
        the new copy). To move a store: back it up to the new place, point ``store=`` or
        ``BATCHKIT_STORE`` at the copy, and delete the old file with its ``-wal`` and ``-shm``.

        >>> batchkit.Store().backup("~/backups/jobs.sqlite3")   # doctest: +SKIP

        Args:
            dest: a file path, or an existing folder (the copy keeps the store's file name).
            overwrite: replace an existing file at ``dest``.

        Returns:
            The path written.

        Raises:
            OutputPathError: ``dest``'s folder is missing, ``dest`` exists (without
                ``overwrite``), is a symlink, or is the store itself.
            StoreError: the copy could not be written (e.g. a full disk); ``dest`` is untouched.
        """
        target_path = Path(dest).expanduser()
        if target_path.is_dir() and not target_path.is_symlink():
            target_path = target_path / self.path.name
        check_output_path(target_path, overwrite=overwrite, what="the backup")
        if str(self.path) != ":memory:" and target_path.exists() and target_path.samefile(self.path):
            raise OutputPathError(
                f"{target_path} is the job store itself: name another file to back it up to", path=target_path
            )
        tmp = target_path.with_name(f".{target_path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            self._copy_to(tmp)
            # SQLite replays a -wal it finds beside a database over it, whatever the file: one left
            # by a process that had the old DEST open would overwrite the new copy with old pages.
            for suffix in ("-wal", "-shm"):
                target_path.with_name(target_path.name + suffix).unlink(missing_ok=True)
            os.replace(tmp, target_path)
        except sqlite3.Error as exc:
            tmp.unlink(missing_ok=True)
            what = f"cannot write the backup at {target_path}: {exc}"
            if "full" in str(exc):
                what += ". Free some space on that disk or back up to another one"
            raise StoreError(what, path=target_path) from exc
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(
                f"cannot write the backup at {target_path}: {exc.strerror or exc}. Back up to a folder "
                "you can write to",
                path=target_path,
            ) from exc
        return target_path

    def _copy_to(self, tmp: Path) -> None:
        """Copy the store page by page into the new file ``tmp``, which must then pass SQLite's integrity check."""
        target = sqlite3.connect(tmp)
        try:
            if str(self.path) == ":memory:":
                with self._lock:
                    self._conn.backup(target)
            else:
                # A connection of its own: one read transaction, so the store's threads and
                # other processes keep writing while the pages are copied.
                source = connect_readonly(self.path)
                try:
                    source.backup(target)
                finally:
                    source.close()
            target.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
            problems = [r[0] for r in target.execute("PRAGMA integrity_check").fetchall()]
        finally:
            target.close()
        if problems != ["ok"]:
            raise sqlite3.DatabaseError(f"the copy failed SQLite's integrity check ({'; '.join(problems[:3])})")

    # ------------------------------------------------------------------ removing jobs

    def forget(self, job_id: str, *, force: bool = False) -> Removal:
        """Remove one job and what it holds, then shrink the file.

        What goes, and what stays because another job still uses it, is described in
        :mod:`batchkit.stores.prune`: answers another remaining job's rows need are kept (and pass to
        that job). Run it while no other process uses the job; a process that has the store open
        reads the answers it looked up before from disk again only after it reopens the store.

        >>> print(batchkit.Store().forget("job_1a2b3c"))   # doctest: +SKIP
        removed 1 job (job_1a2b3c): 2 units (batches and realtime rounds), 300 stored results
        the store at …/jobs.sqlite3: 4.2 MB → 0.4 MB (3.8 MB freed)

        Args:
            job_id: the job (``batchkit.jobs()`` lists them).
            force: remove it even if some of its batches are still in flight: they keep running
                at the API (and are billed), and their answers are no longer collected.

        Raises:
            JobNotFoundError: no such job in this store.
            JobStateError: the job has batches in flight and ``force`` is false; nothing was removed.
            StoreReadOnlyError: the store cannot be written.
        """
        if self.job_status(job_id) is None:
            raise JobNotFoundError(
                f"no job {job_id!r} in the store at {self.path}; `batchkit jobs` (batchkit.jobs()) lists the "
                "jobs there",
                job_id=job_id,
            )
        return self._remove([job_id], force=force, dry_run=False, command=f"forget job {job_id}")

    def prune(self, *, older_than: str | dt.timedelta, force: bool = False, dry_run: bool = False) -> Removal:
        """Remove every job created more than ``older_than`` ago, as :meth:`forget` does one.

        >>> print(batchkit.Store().prune(older_than="30d", dry_run=True))   # doctest: +SKIP

        Args:
            older_than: ``"30d"``, ``"12h"``, ``"90m"`` (also ``w``, ``s``) or a ``timedelta``.
            force: remove jobs with batches still in flight too (see :meth:`forget`).
            dry_run: say what would go, remove nothing.

        Raises:
            InvalidOptionError: ``older_than`` is not a positive duration.
            JobStateError: some of those jobs have batches in flight and ``force`` is false;
                nothing was removed (they are named).
        """
        cutoff = (dt.datetime.now(dt.UTC) - _prune.parse_age(older_than)).isoformat(timespec="microseconds")
        cutoff = cutoff.replace("+00:00", "Z")  # as utcnow() writes created_at
        return self._remove(
            self.jobs_created_before(cutoff),
            force=force,
            dry_run=dry_run,
            command=f"prune jobs older than {older_than}",
        )

    def _remove(self, job_ids: Sequence[str], *, force: bool, dry_run: bool, command: str) -> Removal:
        path = str(self.path)
        if dry_run:
            with self._lock:
                plan = _prune.plan(self._conn, job_ids, active=_AWAITING)
            size = self._file_bytes()
            return self._removal(plan, force, size, max(size - plan.payload_bytes, 0), dry_run=True)
        if not job_ids:
            size = self._file_bytes()
            return Removal((), 0, 0, {}, {}, (), (), size, size, path=path)
        self.checkpoint()
        before = self._file_bytes()
        with self._atomic() as conn:
            plan = _prune.plan(conn, job_ids, active=_AWAITING)
            if plan.in_flight and not force:
                raise _prune.in_flight_error(plan, command=command)
            _prune.apply(conn, plan)
        with self._lock:
            self._after_removals()  # what this process kept of the results that went
        try:
            self.vacuum()
        except StoreError as exc:  # the removal stands; SQLite reuses the freed pages meanwhile
            return dataclasses.replace(
                self._removal(plan, force, before, self._file_bytes(), dry_run=False), not_shrunk=str(exc)
            )
        return self._removal(plan, force, before, self._file_bytes(), dry_run=False)

    def _removal(self, plan: _prune.Plan, force: bool, before: int, after: int, *, dry_run: bool) -> Removal:
        in_flight = [unit for units in plan.in_flight.values() for unit in units]
        adopted: dict[str, int] = {}
        for job_id in plan.kept.values():
            adopted[job_id] = adopted.get(job_id, 0) + 1
        return Removal(
            tuple(plan.jobs),
            sum(1 for unit in plan.units if unit not in plan.kept),
            plan.results_removed,
            dict(plan.kept_results),
            adopted,
            tuple(api_id or f"unit {unit}" for unit, api_id, _, _ in in_flight) if force else (),
            tuple(plan.runs),
            before,
            after,
            dry_run=dry_run,
            path=str(self.path),
            in_flight=() if force else tuple(plan.in_flight),
        )
