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

Results are kept per batch, as columns (keys, statuses, answers, stop reasons, token counts,
errors — a handful of blobs per batch, see :class:`batchkit.core.results.ResultColumns`), because one
SQLite row per answer costs more client CPU than everything else batchkit does for that answer.
Lookups by request key go through an in-memory index of every stored result, built once per
process and brought up to date incrementally (it costs about 0.1 µs per stored result). A
store used by a partitioned run (:mod:`batchkit.engine.runs`, :attr:`Store.index_on_disk`) looks keys up
in an on-disk index instead (``result_index``, a ``WITHOUT ROWID`` table filled from
``batch_results`` past a mark as it is needed; about 3.5 µs per stored result, 2 µs per lookup),
so memory does not grow with every key ever stored.

A unit of work is a row of ``batches`` whatever sends it; its ``mode`` says how (``batch``: one
Message Batch; ``realtime``: its requests one by one, see :mod:`batchkit.backends.realtime`) and
so the price its answers were paid at. Realtime answers are stored as they arrive, a small group
per transaction: each group is a ``batches`` row of its own (``state='collected'``, no
``api_id``, ``error='answers of unit N'``) with its ``batch_results`` columns, so a dead process
loses only the requests on the wire and every reader treats realtime and batch answers alike.

The file is created readable by its owner only (an existing store the user owns is tightened
to that on open). It holds no API key and no pickles: params are JSON, timestamps ISO-8601 UTC,
and the schema is a list of numbered migrations recorded in ``PRAGMA user_version`` — SQL, or a
Python step run in the same transaction (4: request keys leave out cache breakpoints, see
:func:`_unmarked_keys`; about 3 s for 20,000 cached requests, once).

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

import atexit
import contextlib
import dataclasses
import datetime as dt
import os
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import numpy as np

from batchkit.core import _json
from batchkit.core.results import ANSWERED, ResultColumns
from batchkit.errors import (
    JobNotFoundError,
    NotAStoreError,
    OutputPathError,
    StoreError,
    StoreReadOnlyError,
)

from . import prune as _prune
from .leases import keep_leases, lease_until
from .prune import Removal
from .schema import ACTIVE_STATES, decode_keys, encode_keys
from .schema import MIGRATIONS as _MIGRATIONS
from .storefile import (
    APPLICATION_ID,
    BUSY_TIMEOUT,
    check_output_path,
    connect,
    connect_readonly,
    create_file,
    existing,
    peek_job_count,
    tighten,
    unwritable,
    use_wal,
    verdict,
)

__all__ = [
    "APPLICATION_ID",
    "IndexEntry",
    "Removal",
    "Store",
    "check_output_path",
    "default_store_path",
    "peek_job_count",
    "utcnow",
]


_POS_SHIFT, _RID_SHIFT, _ATTEMPTS_SHIFT = 8, 28, 52
_NO_ATTEMPTS = (1 << _ATTEMPTS_SHIFT) - 1
_MEMO_MIN, _MEMO_SLOTS = 1000, 4
"""On-disk lookups of at least this many keys are remembered, the last few of them (see ``_disk_entries``)."""
_LOOKUP_CHUNK = 900
"""Keys per ``IN (…)`` query of the on-disk index (under SQLite's oldest variable limit, 999)."""
_ANSWERED_SQL = ",".join(str(code) for code in sorted(ANSWERED))
# The id of a new row: above every id the table holds or ever held (removing jobs records the
# highest id it took away in ``meta``: SQLite alone would give it out again).
_NEXT_ID = (
    "(SELECT max(coalesce((SELECT max(id) FROM {table}), 0),"
    " coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE name = '{table}_id_floor'), 0)) + 1)"
)
# A key seen before merges as in the in-memory index: one more attempt, and an answer is never
# replaced by a later failure (the latest failure's error type is kept).
_UPSERT = (
    "INSERT INTO result_index (key, packed, error_type) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET"
    f" packed = ((CASE WHEN (packed & 255) IN ({_ANSWERED_SQL}) AND (excluded.packed & 255) NOT IN ({_ANSWERED_SQL})"
    f" THEN packed ELSE excluded.packed END) & {_NO_ATTEMPTS}) | (((packed >> {_ATTEMPTS_SHIFT}) + 1)"
    f" << {_ATTEMPTS_SHIFT}), error_type = coalesce(excluded.error_type, error_type)"
)


def unpack(packed: Any) -> tuple[Any, Any, Any, Any]:
    """(status code, position, results id, attempts) from packed index values (ints or arrays).

    A key's outcome is packed in one int — status code in bits 0–7, position in its batch's
    results in 8–27, the stored batch results' id in 28–51, attempts from bit 52 — so a job of a
    million rows reads its outcomes as one int64 array instead of a million objects.
    """
    return (
        packed & 0xFF,
        (packed >> _POS_SHIFT) & 0xFFFFF,
        (packed >> _RID_SHIFT) & 0xFFFFFF,
        packed >> _ATTEMPTS_SHIFT,
    )


class IndexEntry(NamedTuple):
    """What the store knows of one request key."""

    code: int
    """Status code (:data:`batchkit.core.results.STATUS_CODE`) of its best result: an answer if any
    batch answered it, else the latest failure."""
    results_id: int
    """The stored batch results holding that result."""
    pos: int
    """Its position in them."""
    attempts: int
    """How many batches brought back a result for it."""
    error_type: str | None


def _merge(old: int | None, new: int) -> int:
    """Two packed outcomes of one key, merged as the index merges them (see :data:`_UPSERT`)."""
    if old is None:
        return new
    keep = (old & 0xFF) in ANSWERED and (new & 0xFF) not in ANSWERED
    return ((old if keep else new) & _NO_ATTEMPTS) | (((old >> _ATTEMPTS_SHIFT) + 1) << _ATTEMPTS_SHIFT)


def utcnow() -> str:
    """Now, as an ISO-8601 UTC timestamp with microseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def default_store_path(client: Any = None) -> Path:
    """Where the store lives when neither ``store=`` nor ``BATCHKIT_STORE`` says otherwise.

    Calls answered by batchkit's simulator get a store of their own, ``simulator.sqlite3``: its
    answers are canned, and a real call with the same content must never be answered from
    them. Which server answers is asked of it (:func:`batchkit.backends.clients.is_simulator`), for
    ``client`` — else the default client, else ``ANTHROPIC_BASE_URL`` — never guessed from a
    host name: a gateway to the real API on 127.0.0.1 gets the real store.

    Raises:
        ServerUnreachableError: ``client`` was given and its server does not answer.
    """
    env = os.environ.get("BATCHKIT_STORE")
    if env:
        return Path(env).expanduser()
    return default_store_dir() / ("simulator.sqlite3" if _simulated(client) else "jobs.sqlite3")


def default_store_dir() -> Path:
    """The folder of the default store: that of ``BATCHKIT_STORE`` if set, else
    ``$XDG_DATA_HOME/batchkit`` or ``~/.local/share/batchkit`` (no server is asked)."""
    env = os.environ.get("BATCHKIT_STORE")
    if env:
        return Path(env).expanduser().parent
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "batchkit"


def _simulated(client: Any = None) -> bool:
    """Whether calls go to the simulator: ``client``'s, the default client's or the
    environment's server says so. Without a client of the caller's, a server that does not
    answer counts as the real API (it answers nothing either way; asked again next time)."""
    from batchkit.backends.clients import get_default_client, is_simulator, url_is_simulator
    from batchkit.errors import ServerUnreachableError

    if client is not None:
        return is_simulator(client)
    try:
        client = get_default_client()
        if client is not None:
            return is_simulator(client)
        url = os.environ.get("ANTHROPIC_BASE_URL")
        return url_is_simulator(url) if url else False
    except ServerUnreachableError:
        return False


class Store:
    """One SQLite connection, shared by the threads of a process behind a lock.

    Writes go through :meth:`atomic`, which takes SQLite's write lock up front
    (``BEGIN IMMEDIATE``) so two processes planning the same requests see each other's intent.

    Args:
        path: the store's file (default: :func:`default_store_path`).
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
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self.readonly_reason: str | None = "it was opened with readonly=True" if readonly else None
        self._asked_readonly = readonly
        self._lock = threading.RLock()
        self._commits = 0
        self._index: dict[str, int] = {}
        self._error_types: dict[str, str] = {}
        self._index_upto = 0
        self._columns: dict[int, ResultColumns] = {}
        self._aliases: dict[str, str] | None = None
        self._removals: str | None = None  # meta 'removals' as last seen (see _after_removals)
        self._closed = False
        # The last few large on-disk lookups (keys → (index mark, what was found)): bounded by a few partitions.
        self._memo: dict[frozenset[str], tuple[int, dict[str, tuple[int, str | None]]]] = {}
        self.index_on_disk = False
        """Look keys up in the on-disk index (:meth:`lookup`) instead of the in-memory one, so memory
        does not grow with every key ever stored: set by a partitioned run (:mod:`batchkit.engine.runs`)."""
        try:
            self._conn = self._open(create=create)
        except sqlite3.Error as exc:
            self._reraise(exc, "open")
        try:
            self._migrate()
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, sqlite3.Error):
                self._reraise(exc, "open")
            raise
        _LIVE.add(self)

    @property
    def readonly(self) -> bool:
        """Whether this store was opened for reading only (see :attr:`readonly_reason`)."""
        return self.readonly_reason is not None

    @classmethod
    def resolve(cls, store: Store | str | os.PathLike[str] | None, *, create: bool = True) -> Store:
        """A :class:`Store` from a ``store=`` argument (an open store, a path, or None).

        One :class:`Store` per file per process. ``create=False`` raises
        :class:`~batchkit.errors.StoreNotFoundError` rather than create a missing store.
        """
        if isinstance(store, Store):
            return store
        path = Path(store).expanduser() if store is not None else default_store_path()
        key = str(path.resolve()) if path.exists() else str(path.absolute())
        with _OPEN_LOCK:
            found = _OPEN.get(key)
            if found is None:
                found = _OPEN[key] = cls(path, create=create)
            return found

    # ------------------------------------------------------------------ opening

    def _open(self, *, create: bool) -> sqlite3.Connection:
        path = self.path
        if str(path) == ":memory:":
            return self._configure(connect(path))
        exists = existing(path, create=create and not self.readonly)
        if exists:
            # Look before writing anything: a read-only connection, which changes neither the
            # file nor its journal mode, decides whether this is a batchkit store at all.
            probe = connect_readonly(path)
            try:
                verdict(probe, path)
            except BaseException:
                probe.close()
                raise
            tighten(path)
            why = self.readonly_reason or unwritable(path)
            if why is not None:
                self.readonly_reason = why
                return probe
            probe.close()
        else:
            create_file(path)
        return self._configure(connect(path))

    @staticmethod
    def _configure(conn: sqlite3.Connection) -> sqlite3.Connection:
        # Large pages for a new store: batch bodies and result columns are blobs of up to
        # hundreds of MB, and SQLite writes a blob page by page (64 KB pages write a 30 MB body
        # in about a third of the CPU time of the default 4 KB). A no-op on an existing store.
        conn.execute("PRAGMA page_size=65536")
        use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _migrate(self) -> None:
        if self.readonly:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            self._check_version(version)
            if version < len(_MIGRATIONS):
                raise StoreReadOnlyError(
                    f"the job store at {self.path} is read-only ({self.readonly_reason}) and was written by "
                    f"an older batchkit (schema {version}; this one reads {len(_MIGRATIONS)}): open it once "
                    "where it can be written so batchkit can upgrade it, or read it with that batchkit",
                    path=self.path,
                )
            return
        with self.atomic() as conn:
            app_id, version = verdict(conn, self.path)  # again, under the write lock
            self._check_version(version)
            for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                if callable(script):  # a step SQL cannot express, in the same transaction
                    script(conn)
                else:
                    for statement in script.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            if app_id != APPLICATION_ID:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def _check_version(self, version: int) -> None:
        if version > len(_MIGRATIONS):
            raise StoreError(
                f"the job store at {self.path} was written by a newer batchkit (schema "
                f"{version}, this one knows {len(_MIGRATIONS)}); upgrade batchkit or use another store=",
                path=self.path,
            )

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: everything inside commits together or not at all.

        Raises:
            StoreReadOnlyError: the store is read-only.
            StoreError: SQLite could not write (a full disk, an I/O error, a lock held too long);
                the message gives the real cause, and nothing of the transaction was kept.
        """
        with self._lock:
            conn = self._conn
            if conn.in_transaction:  # nested: the outer transaction owns the commit
                yield conn
                return
            if self.readonly and not self._writable_again():
                raise StoreReadOnlyError(self._readonly_message(), path=self.path)
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self._reraise(exc, "write to")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                # SQLite may have rolled back already (a full disk does): a second ROLLBACK
                # would fail with "cannot rollback" and hide the real cause.
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    self._reraise(exc, "write to")
                raise
            self._commits += 1

    def _writable_again(self) -> bool:
        """Reopen for writing a store that opened read-only by itself, if it can now be written
        (the user followed the advice, e.g. ``chmod u+w``, in the same notebook)."""
        if self._asked_readonly or str(self.path) == ":memory:" or unwritable(self.path) is not None:
            return False
        try:
            conn = self._configure(connect(self.path))
        except sqlite3.Error:
            return False
        old, self._conn, self.readonly_reason = self._conn, conn, None
        old.close()
        self._migrate()
        return True

    def _readonly_message(self) -> str:
        reason = self.readonly_reason or "it is read-only"
        if "readonly=True" in reason:
            fix = "open it without readonly=True to write"
        elif "file system" in reason:
            fix = (
                f"copy it somewhere writable (`batchkit backup NEW_PATH --store {self.path}` reads it) "
                "and pass store=NEW_PATH or set BATCHKIT_STORE"
            )
        elif "folder" in reason:
            fix = (
                f"make the folder writable (chmod u+w {self.path.parent}) or copy the store somewhere "
                "writable with `batchkit backup NEW_PATH` and use that"
            )
        else:
            fix = (
                f"make it writable (chmod u+w {self.path}) or copy it somewhere writable with "
                "`batchkit backup NEW_PATH` and use that"
            )
        return f"cannot write to the job store at {self.path}: {reason}. Reading works; to write, {fix}"

    def _reraise(self, exc: sqlite3.Error, action: str) -> NoReturn:
        translated = self._translate(exc, action)
        if translated is exc:
            raise exc
        raise translated from exc

    def _translate(self, exc: sqlite3.Error, action: str) -> Exception:
        """A :class:`StoreError` naming the real cause of a SQLite failure and its fix.

        Errors that are bugs rather than conditions of the disk (a wrong SQL statement, a
        broken constraint) are returned unchanged.
        """
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc)
        where = f"cannot {action} the job store at {self.path}"
        if name == "SQLITE_FULL" or "disk is full" in text:
            return StoreError(
                f"{where}: the disk is full (SQLite: {text}); nothing of this step was written. Free "
                "some space on that disk, or move the store to a disk with room (`batchkit backup "
                "NEW_PATH`, then store=NEW_PATH or BATCHKIT_STORE)",
                path=self.path,
            )
        if name.startswith("SQLITE_READONLY") or "readonly database" in text:
            if self.readonly_reason is None:
                self.readonly_reason = unwritable(self.path) or f"SQLite refused to write ({text})"
            return StoreReadOnlyError(self._readonly_message(), path=self.path)
        if name.startswith("SQLITE_BUSY") or "database is locked" in text:
            return StoreError(
                f"{where}: another process has held its write lock for over a minute ({text}). Let that "
                "process finish (or stop it) and run this again",
                path=self.path,
            )
        if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "not a database" in text or "malformed" in text:
            return NotAStoreError(
                f"{where}: the file is damaged or is not an SQLite database ({text}). Restore it from a "
                "backup (`batchkit backup`), or pass another store= path",
                path=self.path,
            )
        if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_PERM")) or any(
            cause in text for cause in ("disk I/O error", "unable to open")
        ):
            return StoreError(
                f"{where}: the operating system refused the file ({text}). Check that its disk is mounted "
                "and writable and that the file and its folder are yours, or pass another store= path",
                path=self.path,
            )
        return exc

    def version(self) -> tuple[int, int]:
        """Changes whenever anything is written, by this process or another one."""
        with self._lock:
            return (self._conn.execute("PRAGMA data_version").fetchone()[0], self._commits)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                self._reraise(exc, "read")

    def claim_backend(self, backend: str) -> None:
        """Record which API this store's answers come from; refuse to mix two.

        Raises:
            StoreError: the store already holds answers from another API.
        """
        row = self.query("SELECT value FROM meta WHERE name = 'backend'")
        if row and row[0][0] == backend:
            return  # nothing to write: a read-only store can still serve a finished call
        with self.atomic() as conn:
            found = conn.execute("SELECT value FROM meta WHERE name = 'backend'").fetchone()
            if found is None:
                conn.execute("INSERT INTO meta VALUES ('backend', ?)", (backend,))
            elif found[0] != backend:
                raise StoreError(
                    f"the job store at {self.path} holds answers from the {found[0]}, and this call goes to "
                    f"the {backend}: answers are reused by content, so the two must not share a store. "
                    "Pass another store= (or set BATCHKIT_STORE) for this one.",
                    path=self.path,
                )

    # ------------------------------------------------------------------ closing, backup

    def checkpoint(self, *, wait: float = -1) -> bool:
        """Move everything in the write-ahead log into the main file (and empty the log).

        Done by :meth:`close` and at interpreter exit, so the ``.sqlite3`` file alone holds the
        whole store afterwards. Returns False if another connection kept it from completing
        (nothing is lost: that connection's own close finishes it), or if this store's lock was
        not free within ``wait`` seconds (-1: wait as long as it takes).
        """
        if self.readonly or self._closed or not self._lock.acquire(timeout=wait):
            return False
        try:
            conn = self._conn
            if self._closed or conn.in_transaction:
                return False
            try:
                conn.execute("PRAGMA busy_timeout=2000")  # never hang an exit on another process
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error:
                return False
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")  # as connect() set it
            return not busy
        finally:
            self._lock.release()

    def close(self) -> None:
        """Checkpoint the write-ahead log into the main file and close the connection."""
        with self._lock:
            if not self._closed:
                self.checkpoint()
                self._conn.close()
                self._closed = True
        _LIVE.discard(self)
        with _OPEN_LOCK:
            for key, store in list(_OPEN.items()):
                if store is self:
                    del _OPEN[key]

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
        if not self.query("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)):
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
        ids = [r[0] for r in self.query("SELECT job_id FROM jobs WHERE created_at < ? ORDER BY created_at", (cutoff,))]
        return self._remove(ids, force=force, dry_run=dry_run, command=f"prune jobs older than {older_than}")

    def _remove(self, job_ids: Sequence[str], *, force: bool, dry_run: bool, command: str) -> Removal:
        path = str(self.path)
        if dry_run:
            with self._lock:
                plan = _prune.plan(self._conn, job_ids, active=ACTIVE_STATES)
            size = self._file_bytes()
            return self._removal(plan, force, size, max(size - plan.payload_bytes, 0), dry_run=True)
        if not job_ids:
            size = self._file_bytes()
            return Removal((), 0, 0, {}, {}, (), (), size, size, path=path)
        self.checkpoint()
        before = self._file_bytes()
        with self.atomic() as conn:
            plan = _prune.plan(conn, job_ids, active=ACTIVE_STATES)
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

    def _after_removals(self) -> None:
        """Let go of everything this process remembers of stored results (the in-memory index,
        decoded columns, remembered lookups) once jobs were removed, by any process: it may point
        into results that are gone. Removals are counted in ``meta`` (``removals``); called with
        the lock held, before each use of the index."""
        row = self._conn.execute("SELECT value FROM meta WHERE name = 'removals'").fetchone()
        seen = row[0] if row else None
        if seen != self._removals:
            self._removals = seen
            self._index, self._error_types, self._index_upto = {}, {}, 0
            self._columns.clear()
            self._memo.clear()
            self._aliases = None

    def vacuum(self) -> None:
        """Give the space of removed rows back to the file system (SQLite's ``VACUUM``).

        Rewrites the whole file (it needs that much free disk for a moment), outside any
        transaction, then moves the write-ahead log into the main file so the file itself shrinks.
        """
        if str(self.path) == ":memory:":
            return
        with self._lock:
            try:
                self._conn.execute("VACUUM")
            except sqlite3.Error as exc:
                self._reraise(exc, "write to")
        self.checkpoint()

    def _file_bytes(self) -> int:
        """Size of the store's main file and its write-ahead log."""
        if str(self.path) == ":memory:":
            return 0
        wal = self.path.with_name(self.path.name + "-wal")
        return sum(p.stat().st_size for p in (self.path, wal) if p.exists())

    # ------------------------------------------------------------------ jobs

    def find_job(self, fingerprint: str) -> str | None:
        rows = self.query("SELECT job_id FROM jobs WHERE fingerprint = ?", (fingerprint,))
        return rows[0][0] if rows else None

    def insert_job(
        self,
        conn: sqlite3.Connection,
        *,
        job_id: str,
        fingerprint: str,
        model: str,
        kind: str,
        output: str,
        spec: dict[str, Any],
        row_keys: Sequence[str | None],
        skipped: dict[int, str],
        mode: str = "batch",
        mode_reason: str | None = None,
    ) -> dict[str, Any]:
        """Write a new job down; returns its record as :meth:`load_job` would read it back.

        ``mode`` and ``mode_reason`` go in with the row: a job's row holds every row key, and
        SQLite rewrites a whole row on update (3 MB for 100,000 rows), so a new job's mode is
        never written by a separate :meth:`set_job_mode`.
        """
        spec_json = _json.dumps(spec)
        record = {
            "job_id": job_id,
            "fingerprint": fingerprint,
            "created_at": utcnow(),
            "model": model,
            "kind": kind,
            "output": output,
            "spec": _json.loads(spec_json),
            "n_rows": len(row_keys),
            "row_keys": list(row_keys),
            "skipped": dict(skipped),
            "status": "running",
            "mode": mode,
            "mode_reason": mode_reason,
        }
        conn.execute(
            "INSERT INTO jobs (job_id, fingerprint, created_at, model, kind, output, spec, n_rows, row_keys,"
            " skipped, status, mode, mode_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                job_id,
                fingerprint,
                record["created_at"],
                model,
                kind,
                output,
                spec_json.decode(),
                len(row_keys),
                encode_keys(row_keys),
                _json.dumps({str(k): v for k, v in skipped.items()}).decode(),
                "running",
                mode,
                mode_reason,
            ),
        )
        return record

    def load_job(self, job_id: str) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT job_id, fingerprint, created_at, model, kind, output, spec, n_rows, row_keys,"
            " skipped, status FROM jobs WHERE job_id = ?",
            (job_id,),
        )
        if not rows:
            return None
        r = rows[0]
        mode, reason = self.query("SELECT mode, mode_reason FROM jobs WHERE job_id = ?", (job_id,))[0]
        return {
            "job_id": r[0],
            "fingerprint": r[1],
            "created_at": r[2],
            "model": r[3],
            "kind": r[4],
            "output": r[5],
            "spec": _json.loads(r[6]),
            "n_rows": r[7],
            "row_keys": decode_keys(r[8], r[7]),
            "skipped": {int(k): v for k, v in _json.loads(r[9]).items()},
            "status": r[10],
            "mode": mode,
            "mode_reason": reason,
        }

    def set_job_mode(self, conn: sqlite3.Connection, job_id: str, mode: str, reason: str | None) -> None:
        """Write down the mode a job sends its requests in (``batch``/``realtime``) and why."""
        conn.execute("UPDATE jobs SET mode = ?, mode_reason = ? WHERE job_id = ?", (mode, reason, job_id))

    def set_job_status(self, job_id: str, status: str) -> None:
        with self.atomic() as conn:
            conn.execute("UPDATE jobs SET status = ? WHERE job_id = ?", (status, job_id))

    def set_row_keys(self, conn: sqlite3.Connection, job_id: str, row_keys: Sequence[str | None]) -> None:
        conn.execute("UPDATE jobs SET row_keys = ? WHERE job_id = ?", (encode_keys(row_keys), job_id))

    # ------------------------------------------------------------------ results

    def store_results(self, conn: sqlite3.Connection, batch_id: int, model: str | None, columns: ResultColumns) -> None:
        """Keep one batch's results. A batch already stored (by another process) is left as is.

        The columns stay decoded in memory too: the job that stored them reads them next. Results
        of a unit sent before migration 4 come back under old keys and are stored under new ones.
        """
        aliases = self._key_aliases(conn)
        if aliases and not aliases.keys().isdisjoint(columns.keys):
            columns.keys = [aliases.get(k, k) for k in columns.keys]
        cur = conn.execute(
            "INSERT OR IGNORE INTO batch_results (id, batch_id, model, received_at, keys, statuses, answers,"
            f" stop_reasons, usage, errors) VALUES ({_NEXT_ID.format(table='batch_results')},"
            " ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (batch_id, model, utcnow(), *columns.to_blobs()),
        )
        if cur.rowcount == 1:
            with self._lock:
                self._remember(int(cur.lastrowid), columns)  # type: ignore[arg-type]

    def _key_aliases(self, conn: sqlite3.Connection) -> dict[str, str]:
        """Old key → new key of units created before migration 4 (read once; empty in a new store)."""
        if self._aliases is None:
            self._aliases = dict(conn.execute("SELECT old, new FROM key_aliases").fetchall())
        return self._aliases

    def _remember(self, results_id: int, columns: ResultColumns) -> None:
        self._columns[results_id] = columns
        while len(self._columns) > 8:
            self._columns.pop(next(iter(self._columns)))

    def release(self, results_ids: Iterable[int], keys: Iterable[str] = ()) -> None:
        """Let go of what is kept in memory for results no longer needed: the decoded columns of
        ``results_ids`` and the remembered lookup of exactly ``keys``. Both are read from disk again
        if asked for.

        A partitioned run releases each partition once it is output, so what the store keeps in
        memory is the partitions still in flight, however long the run.
        """
        with self._lock:
            for results_id in results_ids:
                self._columns.pop(int(results_id), None)
            wanted = frozenset(keys)
            if wanted:
                self._memo.pop(wanted, None)

    def index(self) -> dict[str, int]:
        """Every stored result's key → its best outcome, packed in an int (see :func:`unpack`).

        The best outcome is an answer if any batch answered the key, else the latest failure.
        Brought up to date from the batches stored since the last call, by any process.
        """
        with self._lock:
            self._after_removals()
            new = [
                r
                for (r,) in self._conn.execute(
                    "SELECT id FROM batch_results WHERE id > ? ORDER BY id", (self._index_upto,)
                )
            ]
            index, error_types = self._index, self._error_types
            for results_id in new:
                self._index_upto = results_id
                cols = self._columns.get(results_id)
                if cols is not None:
                    keys, statuses, errors = cols.keys, bytes(cols.statuses), cols.errors
                else:
                    keys_blob, statuses, errors_blob = self._conn.execute(
                        "SELECT keys, statuses, errors FROM batch_results WHERE id = ?", (results_id,)
                    ).fetchone()
                    keys = keys_blob.decode().split("\n") if statuses else []
                    errors = {int(pos): tuple(v) for pos, v in _json.loads(errors_blob).items()}
                if not statuses:
                    continue
                codes = np.frombuffer(statuses, dtype=np.uint8).astype(np.int64)
                packed = (
                    codes
                    | (np.arange(len(codes), dtype=np.int64) << _POS_SHIFT)
                    | (results_id << _RID_SHIFT)
                    | (1 << _ATTEMPTS_SHIFT)
                ).tolist()
                # Keys seen before (retries, repeats across jobs) merge with what is known of
                # them; the rest, usually all of them, go in at once.
                seen = {key: index[key] for key in index.keys() & keys} if index else {}
                index.update(zip(keys, packed, strict=True))
                for key, old in seen.items():
                    new_value = index[key]
                    attempts = ((old >> _ATTEMPTS_SHIFT) + 1) << _ATTEMPTS_SHIFT
                    keep = (old & 0xFF) in ANSWERED and (new_value & 0xFF) not in ANSWERED
                    index[key] = ((old if keep else new_value) & _NO_ATTEMPTS) | attempts
                for pos, (error_type, _message) in errors.items():
                    error_types[keys[pos]] = error_type
            return index

    @property
    def index_version(self) -> int:
        """Grows whenever :meth:`index` takes in newly stored results."""
        return self._index_upto

    def results_since(self, after: int, upto: int) -> list[tuple[int, int]]:
        """(id, number of results) of the batch results stored after index version ``after``,
        up to ``upto``."""
        return self.query(
            "SELECT id, length(statuses) FROM batch_results WHERE id > ? AND id <= ? ORDER BY id", (after, upto)
        )

    def result_usage(self, results_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(status codes, ``(n, 5)`` token counts) of one stored batch, without its answers."""
        statuses, usage = self.query("SELECT statuses, usage FROM batch_results WHERE id = ?", (results_id,))[0]
        n = len(statuses)
        return np.frombuffer(statuses, dtype=np.uint8), np.frombuffer(usage, dtype="<i8").reshape(n, -1)

    def result_keys(self, results_id: int) -> list[str]:
        """The request keys of one stored batch's results."""
        if results_id in self._columns:
            return self._columns[results_id].keys
        (blob,) = self.query("SELECT keys FROM batch_results WHERE id = ?", (results_id,))[0]
        return blob.decode().split("\n") if blob else []

    def error_type(self, key: str) -> str | None:
        """The error type of ``key``'s latest failure (meaningful when its best outcome failed)."""
        if self.index_on_disk:
            return self._disk_entries([key]).get(key, (0, None))[1]
        self.index()
        return self._error_types.get(key)

    def entry(self, key: str) -> IndexEntry | None:
        """What the store knows of one request key, unpacked."""
        if self.index_on_disk:
            found = self._disk_entries([key]).get(key)
            if found is None:
                return None
            code, pos, results_id, attempts = unpack(found[0])
            return IndexEntry(code, results_id, pos, attempts, found[1])
        packed = self.index().get(key)
        if packed is None:
            return None
        code, pos, results_id, attempts = unpack(packed)
        return IndexEntry(code, results_id, pos, attempts, self._error_types.get(key))

    def columns(self, results_id: int) -> ResultColumns:
        """One stored batch's result columns (the last few are kept decoded in memory)."""
        with self._lock:
            found = self._columns.get(results_id)
            if found is None:
                row = self._conn.execute(
                    "SELECT keys, statuses, answers, stop_reasons, usage, errors FROM batch_results WHERE id = ?",
                    (results_id,),
                ).fetchone()
                found = ResultColumns.from_blobs(*row)
                self._remember(results_id, found)
            return found

    def results_of_job(self, job_id: str) -> list[int]:
        """The ids of the stored batch results that came from this job's own batches."""
        return [
            r
            for (r,) in self.query(
                "SELECT r.id FROM batch_results r JOIN batches b ON b.id = r.batch_id WHERE b.job_id = ?", (job_id,)
            )
        ]

    def answered(self, keys: Iterable[str]) -> set[str]:
        """The keys among ``keys`` that already have an answer (paid for: never send again)."""
        if self.index_on_disk:
            wanted = list(keys)
            return {k for k, p in zip(wanted, self.lookup(wanted).tolist(), strict=True) if (p & 0xFF) in ANSWERED}
        index = self.index()
        if not index:
            return set()
        return {k for k in keys if (e := index.get(k)) is not None and (e & 0xFF) in ANSWERED}

    def request_bodies(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The params JSON of requests sent before, read back from the batches that carried them."""
        return {key: _json.dumps_sorted(params) for key, params in self.request_params(keys).items()}

    def request_params(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The params of requests sent before (what the model saw), from the batches that carried them.

        Keys never sent (or whose batches are gone) are left out.
        """
        wanted = set(keys)
        found: dict[str, dict[str, Any]] = {}
        for (batch_id,) in self.query("SELECT id FROM batches ORDER BY id DESC"):
            if not wanted:
                break
            if wanted.isdisjoint(self.batch_keys(batch_id)):
                continue
            body = self.batch_body(batch_id)
            for item in _json.loads(body)["requests"]:
                if item["custom_id"] in wanted:
                    found[item["custom_id"]] = item["params"]
                    wanted.discard(item["custom_id"])
        return found

    # ------------------------------------------------------------------ the on-disk key index

    def sync_index(self) -> int:
        """Bring the on-disk key index (``result_index``) up to date with every stored result.

        Results stored since its mark — by a partition job, a pandas job or another process — go
        in one transaction, a stored batch at a time (memory bounded by one batch). A read-only
        store is left as it is (:meth:`lookup` reads what is not indexed yet from the results).

        Returns:
            The mark: the id of the last stored batch results the index holds.
        """
        with self._lock:
            upto = self._index_mark(self._conn)
            last = self._conn.execute("SELECT max(id) FROM batch_results").fetchone()[0] or 0
            if last <= upto or self.readonly:
                return upto
            with self.atomic() as conn:
                upto = self._index_mark(conn)  # again, under the write lock: another process may have synced
                for (results_id,) in conn.execute(
                    "SELECT id FROM batch_results WHERE id > ? ORDER BY id", (upto,)
                ).fetchall():
                    # In key order: SQLite then appends to a few pages instead of splitting pages
                    # all over the index (about 4x less CPU than in the results' order).
                    conn.executemany(_UPSERT, sorted(zip(*self._packed_results(conn, results_id), strict=True)))
                    upto = results_id
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('result_index_upto', ?)", (str(upto),))
            return upto

    @staticmethod
    def _index_mark(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE name = 'result_index_upto'").fetchone()
        return int(row[0]) if row else 0

    def _packed_results(
        self, conn: sqlite3.Connection, results_id: int
    ) -> tuple[list[str], list[int], list[str | None]]:
        """(keys, packed outcomes, error types) of one stored batch's results, for the on-disk index."""
        cols = self._columns.get(results_id)
        if cols is not None:
            keys, statuses, errors = cols.keys, bytes(cols.statuses), cols.errors
        else:
            keys_blob, statuses, errors_blob = conn.execute(
                "SELECT keys, statuses, errors FROM batch_results WHERE id = ?", (results_id,)
            ).fetchone()
            keys = keys_blob.decode().split("\n") if statuses else []
            errors = {int(pos): tuple(v) for pos, v in _json.loads(errors_blob).items()}
        if not statuses:
            return [], [], []
        codes = np.frombuffer(statuses, dtype=np.uint8).astype(np.int64)
        packed = (
            codes
            | (np.arange(len(codes), dtype=np.int64) << _POS_SHIFT)
            | (results_id << _RID_SHIFT)
            | (1 << _ATTEMPTS_SHIFT)
        ).tolist()
        error_types: list[str | None] = [None] * len(keys)
        for pos, (error_type, _message) in errors.items():
            error_types[pos] = error_type
        return keys, packed, error_types

    def lookup(self, keys: Sequence[str]) -> np.ndarray:
        """Each key's best outcome, packed (see :func:`unpack`; 0: nothing stored), from the on-disk
        index: memory grows with ``len(keys)``, not with the store.

        >>> store.lookup(job.row_keys[:3])   # doctest: +SKIP
        array([...], dtype=int64)
        """
        found = self._disk_entries(keys)
        return np.fromiter((found[k][0] if k in found else 0 for k in keys), dtype=np.int64, count=len(keys))

    def _disk_entries(self, keys: Sequence[str]) -> dict[str, tuple[int, str | None]]:
        """key → (packed outcome, error type) of the keys among ``keys`` the store has a result for."""
        found: dict[str, tuple[int, str | None]] = {}
        if not len(keys):
            return found
        with self._lock:
            self._after_removals()
            upto = self.sync_index()
            conn = self._conn
            wanted = frozenset(keys)
            if len(wanted) >= _MEMO_MIN:
                memo = self._memo.get(wanted)
                if memo is not None:  # a partition's keys are asked for several times as it is planned
                    found = self._memo_update(conn, wanted, memo, upto)
                    return dict(found)
            found = self._indexed(conn, wanted)
            tail = [r for (r,) in conn.execute("SELECT id FROM batch_results WHERE id > ? ORDER BY id", (upto,))]
            if tail:  # a read-only store: what is not indexed yet is read from the results themselves
                for results_id in tail:
                    for key, packed, error_type in zip(*self._packed_results(conn, results_id), strict=True):
                        if key in wanted:
                            old = found.get(key)
                            found[key] = (
                                _merge(old[0] if old else None, packed),
                                error_type or (old[1] if old else None),
                            )
            if len(wanted) >= _MEMO_MIN and not tail:
                self._memo[wanted] = (upto, dict(found))
                while len(self._memo) > _MEMO_SLOTS:
                    self._memo.pop(next(iter(self._memo)))
        return found

    @staticmethod
    def _indexed(conn: sqlite3.Connection, keys: Iterable[str]) -> dict[str, tuple[int, str | None]]:
        """What the on-disk index holds of ``keys`` (as synced: see :meth:`sync_index`)."""
        found: dict[str, tuple[int, str | None]] = {}
        ordered = sorted(keys)  # neighbouring keys share pages: about 2x faster than in any order
        for start in range(0, len(ordered), _LOOKUP_CHUNK):
            part = ordered[start : start + _LOOKUP_CHUNK]
            for key, packed, error_type in conn.execute(
                f"SELECT key, packed, error_type FROM result_index WHERE key IN ({','.join('?' * len(part))})",
                part,
            ):
                found[key] = (packed, error_type)
        return found

    def _memo_update(
        self,
        conn: sqlite3.Connection,
        wanted: frozenset[str],
        memo: tuple[int, dict[str, tuple[int, str | None]]],
        upto: int,
    ) -> dict[str, tuple[int, str | None]]:
        """A remembered lookup brought up to ``upto``: only its keys among newly stored results are read again."""
        mark, found = memo
        if mark != upto:
            changed: set[str] = set()
            for (results_id,) in conn.execute(
                "SELECT id FROM batch_results WHERE id > ? AND id <= ? ORDER BY id", (mark, upto)
            ).fetchall():
                changed.update(k for k in self.result_keys(results_id) if k in wanted)
            if changed:
                found.update(self._indexed(conn, changed))
            self._memo[wanted] = (upto, found)
        return found

    # ------------------------------------------------------------------ runs

    def open_run(self, run_id: str, source: str) -> None:
        """Write a partitioned run down (or mark an existing one running again)."""
        with self.atomic() as conn:
            conn.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, 'running')", (run_id, source, utcnow()))
            conn.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", (run_id,))

    def add_run_part(self, run_id: str, part: int, job_id: str, n_rows: int) -> None:
        """Record the job of a run's partition ``part`` (0-based, input order)."""
        with self.atomic() as conn:
            conn.execute("INSERT OR REPLACE INTO run_parts VALUES (?, ?, ?, ?)", (run_id, part, job_id, n_rows))

    def end_run(self, run_id: str, status: str, n_parts: int | None = None) -> None:
        """Set a run's status; with ``n_parts``, forget partitions past its last (a shorter input)."""
        with self.atomic() as conn:
            conn.execute("UPDATE runs SET status = ? WHERE run_id = ?", (status, run_id))
            if n_parts is not None:
                conn.execute("DELETE FROM run_parts WHERE run_id = ? AND part >= ?", (run_id, n_parts))

    def load_run(self, run_id: str) -> dict[str, Any] | None:
        """A run's record (``run_id``, ``source``, ``created_at``, ``status``), or None."""
        rows = self.query("SELECT run_id, source, created_at, status FROM runs WHERE run_id = ?", (run_id,))
        return dict(zip(("run_id", "source", "created_at", "status"), rows[0], strict=True)) if rows else None

    def run_parts(self, run_id: str) -> list[str]:
        """The job ids of a run's partitions, in partition order (empty for an unknown run)."""
        return [r[0] for r in self.query("SELECT job_id FROM run_parts WHERE run_id = ? ORDER BY part", (run_id,))]

    def run_part_rows(self, run_id: str) -> list[tuple[int, str, int]]:
        """``(part, job id, rows)`` of each of a run's partitions, in order."""
        return self.query("SELECT part, job_id, n_rows FROM run_parts WHERE run_id = ? ORDER BY part", (run_id,))

    # ------------------------------------------------------------------ batches

    def batches(self, job_id: str | None = None, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT id, job_id, api_id, state, owner, attempt, n_requests, intent_at, created_at,"
            " ended_at, expires_at, request_counts, error, mode, lease_until FROM batches"
        )
        where, args = [], []
        if job_id is not None:
            where.append("job_id = ?")
            args.append(job_id)
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args.extend(states)
        if where:
            sql += " WHERE " + " AND ".join(where)
        names = (
            "id",
            "job_id",
            "api_id",
            "state",
            "owner",
            "attempt",
            "n_requests",
            "intent_at",
            "created_at",
            "ended_at",
            "expires_at",
            "request_counts",
            "error",
            "mode",
            "lease_until",
        )
        return [dict(zip(names, row, strict=True)) for row in self.query(sql + " ORDER BY id", args)]

    def batch_body(self, batch_id: int) -> bytes:
        with self._lock:
            try:  # read straight from the blob: one copy of a 256 MB body in memory, not two
                with self._conn.blobopen("batch_requests", "body", batch_id, readonly=True) as blob:
                    return blob.read()
            except sqlite3.OperationalError:  # no such row: the same error as before
                pass
        return bytes(self.query("SELECT body FROM batch_requests WHERE batch_id = ?", (batch_id,))[0][0])

    def batch_keys(self, batch_id: int) -> list[str]:
        rows = self.query("SELECT keys FROM batch_requests WHERE batch_id = ?", (batch_id,))
        return [k for k in decode_keys(rows[0][0]) if k] if rows else []

    def in_flight_keys(self, conn: sqlite3.Connection | None = None) -> set[str]:
        """Keys in any batch that has not yet been collected, by any job or process (read in
        ``conn``'s transaction when given, e.g. while planning)."""
        sql = (
            "SELECT r.keys FROM batches b JOIN batch_requests r ON r.batch_id = b.id"
            f" WHERE b.state IN ({','.join('?' * len(ACTIVE_STATES))})"
        )
        rows = conn.execute(sql, ACTIVE_STATES) if conn is not None else self.query(sql, ACTIVE_STATES)
        found: set[str] = set()
        for (blob,) in rows:
            found.update(k for k in decode_keys(blob) if k)
        return found

    def add_batch(
        self,
        conn: sqlite3.Connection,
        *,
        job_id: str,
        keys: Sequence[str],
        body: bytes | tuple[int, Iterable[bytes]],
        attempt: int,
        owner: str,
        mode: str = "batch",
    ) -> int:
        """Record the intent to send a unit (state ``submitting``), with its whole body (bytes, or
        ``(size, pieces)`` written piece by piece).

        ``mode`` is the backend that will send it (``batch``: one Message Batch; ``realtime``: its
        requests one by one, each answer stored by :meth:`add_answers` as it arrives).
        """
        cur = conn.execute(
            "INSERT INTO batches (id, job_id, state, owner, attempt, n_requests, intent_at, mode, lease_until)"
            f" VALUES ({_NEXT_ID.format(table='batches')}, ?, 'submitting', ?, ?, ?, ?, ?, ?)",
            (job_id, owner, attempt, len(keys), utcnow(), mode, lease_until()),
        )
        keep_leases(self)
        batch_id = int(cur.lastrowid)  # type: ignore[arg-type]
        # Kept apart from the batch's own row, which is updated at every poll: SQLite rewrites a
        # whole row on update, and this one can be 256 MB.
        # Written into the blob in place, bytes or not: bound as a parameter, a body is copied
        # twice more in memory (the bound value, then the row SQLite builds from it).
        size, pieces = (len(body), (body,)) if isinstance(body, (bytes, bytearray, memoryview)) else body
        # A streamed body (size, pieces) — images: written into the blob piece by piece, so
        # neither it nor SQLite's copy of it is ever whole in memory.
        conn.execute("INSERT INTO batch_requests VALUES (?, ?, zeroblob(?))", (batch_id, encode_keys(keys), size))
        with conn.blobopen("batch_requests", "body", batch_id) as blob:
            for piece in pieces:
                blob.write(piece)
            if blob.tell() != size:
                raise ValueError(f"a streamed batch body was {blob.tell():,} bytes, not the {size:,} announced")
        return batch_id

    def add_answers(
        self,
        conn: sqlite3.Connection,
        *,
        unit: int,
        job_id: str,
        attempt: int,
        mode: str,
        model: str | None,
        columns: ResultColumns,
    ) -> int:
        """Keep a group of answers that arrived one by one (realtime) while their unit runs.

        Each group is a record of its own in ``batches`` (state ``collected``, ``api_id`` NULL,
        ``error`` naming the unit it belongs to) with its results in ``batch_results``, exactly
        as a collected batch's: the index, the cost and the outcomes read both alike. A group has
        no ``batch_requests`` row — its request bodies are in its unit's.
        """
        now = utcnow()
        cur = conn.execute(
            "INSERT INTO batches (id, job_id, state, attempt, n_requests, intent_at, created_at, ended_at, error, mode,"
            f" lost_keys) VALUES ({_NEXT_ID.format(table='batches')}, ?, 'collected', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                attempt,
                len(columns.keys),
                now,
                now,
                now,
                f"answers of unit {unit}",
                mode,
                encode_keys(columns.lost) if columns.lost else None,
            ),
        )
        group = int(cur.lastrowid)  # type: ignore[arg-type]
        self.store_results(conn, group, model, columns)
        return group

    def lost_responses(self, job_id: str) -> list[str]:
        """Keys of ``job_id``'s realtime requests whose responses were lost on the way back, once
        per lost response (see :attr:`batchkit.core.results.ResultColumns.lost`)."""
        rows = self.query("SELECT lost_keys FROM batches WHERE job_id = ? AND lost_keys IS NOT NULL", (job_id,))
        return [k for (blob,) in rows for k in decode_keys(blob) if k]

    def results_modes(self, results_ids: Iterable[int]) -> dict[int, str]:
        """The mode (``batch``/``realtime``) each stored result set was paid at."""
        ids = list(results_ids)
        if not ids:
            return {}
        found: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            found.update(
                self.query(
                    "SELECT r.id, b.mode FROM batch_results r JOIN batches b ON b.id = r.batch_id"
                    f" WHERE r.id IN ({','.join('?' * len(part))})",
                    part,
                )
            )
        return found

    # ------------------------------------------------------------------ ownership (see batchkit.stores.leases)

    def claim_unit(self, unit_id: int, owner: str, *, was: str | None, states: Sequence[str] = ACTIVE_STATES) -> bool:
        """Take unit ``unit_id`` over from ``was`` (its owner as last read), if it still is
        theirs and in one of ``states``: a compare-and-set, so of several processes taking over
        the same dead owner's unit exactly one wins. The winner holds it with a fresh lease."""
        with self.atomic() as conn:
            cur = conn.execute(
                f"UPDATE batches SET owner = ?, lease_until = ? WHERE id = ? AND owner IS ?"
                f" AND state IN ({','.join('?' * len(states))})",
                (owner, lease_until(), unit_id, was, *states),
            )
            won = cur.rowcount == 1
        if won:
            keep_leases(self)
        return won

    def renew_leases(self, owner: str, until: str) -> int:
        """Extend every lease ``owner`` holds on a unit still in flight; how many (a closed or
        read-only store, or one where ``owner`` holds nothing, is not written to)."""
        active = f"owner = ? AND state IN ({','.join('?' * len(ACTIVE_STATES))})"
        if (
            self._closed
            or self.readonly
            or not self.query(f"SELECT 1 FROM batches WHERE {active} LIMIT 1", (owner, *ACTIVE_STATES))
        ):
            return 0
        with self.atomic() as conn:
            return conn.execute(
                f"UPDATE batches SET lease_until = ? WHERE {active}", (until, owner, *ACTIVE_STATES)
            ).rowcount

    def update_batch(self, batch_id: int, **fields: Any) -> None:
        with self.atomic() as conn:
            self.update_batch_in(conn, batch_id, **fields)

    def update_batch_in(self, conn: sqlite3.Connection, batch_id: int, **fields: Any) -> None:
        if "request_counts" in fields and not isinstance(fields["request_counts"], (str, type(None))):
            fields["request_counts"] = _json.dumps(fields["request_counts"]).decode()
        sets = ", ".join(f"{name} = ?" for name in fields)
        conn.execute(f"UPDATE batches SET {sets} WHERE id = ?", (*fields.values(), batch_id))

    # ------------------------------------------------------------------ listing

    def job_rows(self) -> list[tuple[Any, ...]]:
        return self.query(
            "SELECT job_id, created_at, model, kind, output, n_rows, status FROM jobs ORDER BY created_at DESC"
        )


_OPEN: dict[str, Store] = {}
_OPEN_LOCK = threading.Lock()
_LIVE: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _checkpoint_at_exit() -> None:
    """After a normal exit the main file holds everything (a copy of it alone loses nothing)."""
    for store in list(_LIVE):
        with contextlib.suppress(Exception):
            store.checkpoint(wait=5.0)  # a worker thread mid-transaction must not hang the exit
