"""The store's one SQLite connection: opening, schema migrations, transactions, SQLite's errors.

One connection per store file per process, shared by the process's threads behind a re-entrant
lock. Writes go through :meth:`StoreCore.transaction` (inside this folder also
:meth:`StoreCore._atomic`, the same transaction on the raw connection), which takes SQLite's
write lock up front (``BEGIN IMMEDIATE``) so two processes planning the same requests see each
other's intent. A transaction opened inside another is a ``SAVEPOINT``: a
failure inside the inner block rolls back that block only, and the outer one goes on (or fails
as a whole when the error is not caught). What the process remembers of rows written by a block
that is rolled back (decoded result columns, the in-memory index) is let go with it.

SQLite failures are translated in exactly one place (:meth:`StoreCore._translate`): a full disk,
a read-only file, a lock held too long, a damaged file each become a
:class:`~batchkit.errors.StoreError` naming the cause and the fix; a bug (wrong SQL, a broken
constraint) passes through unchanged.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from batchkit.errors import NotAStoreError, StoreError, StoreReadOnlyError

from .schema import MIGRATIONS as _MIGRATIONS
from .storefile import (
    APPLICATION_ID,
    BUSY_TIMEOUT,
    connect,
    connect_readonly,
    create_file,
    existing,
    tighten,
    unwritable,
    use_wal,
    verdict,
)
from .transaction import Transaction

if TYPE_CHECKING:
    from .store import Store

__all__ = ["NEXT_ID", "StoreCore", "utcnow"]

# The id of a new row: above every id the table holds or ever held (removing jobs records the
# highest id it took away in ``meta``: SQLite alone would give it out again).
NEXT_ID = (
    "(SELECT max(coalesce((SELECT max(id) FROM {table}), 0),"
    " coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE name = '{table}_id_floor'), 0)) + 1)"
)


def utcnow() -> str:
    """Now, as an ISO-8601 UTC timestamp with microseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class StoreCore:
    """The connection, its lock and its transactions; every part of :class:`~batchkit.stores.store.Store`
    builds on it.

    Args:
        path: the store's file (``:memory:`` for a store in memory).
        create: create the store if the file does not exist.
        readonly: open for reading only.
    """

    def __init__(self, path: Path, *, create: bool, readonly: bool) -> None:
        self.path = path
        self.readonly_reason: str | None = "it was opened with readonly=True" if readonly else None
        self._asked_readonly = readonly
        self._lock = threading.RLock()
        self._commits = 0
        self._closed = False
        self._depth = 0  # open SAVEPOINTs inside the current transaction
        self._undo: list[Callable[[], None]] = []  # what to forget if the transaction is rolled back
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
        with self._atomic() as conn:
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
    def _atomic(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the raw connection, for the store's own parts (callers outside
        :mod:`batchkit.stores` use :meth:`transaction`, which carries the store's verbs). Nested,
        it is a ``SAVEPOINT``.

        Raises:
            StoreReadOnlyError: the store is read-only.
            StoreError: SQLite could not write (a full disk, an I/O error, a lock held too long);
                the message gives the real cause, and nothing of the transaction was kept.
        """
        with self._lock:
            if self._conn.in_transaction:
                with self._savepoint() as conn:
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
                self._forget_written(0)
                if isinstance(exc, sqlite3.Error):
                    self._reraise(exc, "write to")
                raise
            self._undo.clear()
            self._commits += 1

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction carrying the store's writing verbs: everything inside commits
        together or not at all.

        >>> with store.transaction() as tx:   # doctest: +SKIP
        ...     tx.update_batch(unit_id, state="collected")
        ...     tx.put_results(unit_id, model, columns)

        Opened inside another transaction it is a ``SAVEPOINT``: an exception leaving the inner
        block rolls back what the inner block wrote, and only that (the outer block decides for
        the rest).

        Raises:
            StoreReadOnlyError: the store is read-only.
            StoreError: SQLite could not write; nothing of the transaction was kept.
        """
        with self._atomic() as conn:
            yield Transaction(self, conn)  # type: ignore[arg-type]  # only a Store opens one

    @contextlib.contextmanager
    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        """A block inside the open transaction that can be rolled back alone."""
        conn, name, mark = self._conn, f"batchkit_{self._depth}", len(self._undo)
        try:
            conn.execute(f"SAVEPOINT {name}")
        except sqlite3.Error as exc:
            self._reraise(exc, "write to")
        self._depth += 1
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
            self._forget_written(mark)
            raise
        else:
            try:
                conn.execute(f"RELEASE {name}")
            except sqlite3.Error as exc:
                self._reraise(exc, "write to")
        finally:
            self._depth -= 1

    def _on_rollback(self, undo: Callable[[], None]) -> None:
        """Run ``undo`` if the transaction (or savepoint) now open is rolled back."""
        self._undo.append(undo)

    def _forget_written(self, mark: int) -> None:
        """Undo what the process remembers of writes rolled back (registered after ``mark``)."""
        while len(self._undo) > mark:
            self._undo.pop()()

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
        """Raw SQL, for tests and diagnostics only: batchkit's own modules outside
        :mod:`batchkit.stores` ask the store's named verbs instead."""
        return self._rows(sql, args)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of one read, with SQLite's failures translated."""
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                self._reraise(exc, "read")

    def backend_name(self) -> str | None:
        """Which API this store's answers come from (``simulator``, ``Anthropic API``, …), as
        :meth:`claim_backend` recorded it; None before anything was sent."""
        rows = self._rows("SELECT value FROM meta WHERE name = 'backend'")
        return str(rows[0][0]) if rows else None

    def claim_backend(self, backend: str) -> None:
        """Record which API this store's answers come from; refuse to mix two.

        Raises:
            StoreError: the store already holds answers from another API.
        """
        if self.backend_name() == backend:
            return  # nothing to write: a read-only store can still serve a finished call
        with self._atomic() as conn:
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

    # ------------------------------------------------------------------ closing

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


_OPEN: dict[str, Store] = {}
"""One open store per file per process (see :meth:`batchkit.stores.store.Store.resolve`)."""
_OPEN_LOCK = threading.Lock()
_LIVE: weakref.WeakSet[StoreCore] = weakref.WeakSet()


@atexit.register
def _checkpoint_at_exit() -> None:
    """After a normal exit the main file holds everything (a copy of it alone loses nothing)."""
    for store in list(_LIVE):
        with contextlib.suppress(Exception):
            store.checkpoint(wait=5.0)  # a worker thread mid-transaction must not hang the exit
