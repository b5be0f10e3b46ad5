"""The job store's file: where a store may live, whether a file is one, whether it can be written.

Everything here looks before anything is written: a file that is not a batchkit store is
refused through a read-only connection that changes neither its content nor its journal mode.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
import time
from pathlib import Path

from batchkit.errors import NotAStoreError, OutputPathError, StoreError, StoreNotFoundError

__all__ = [
    "APPLICATION_ID",
    "BUSY_TIMEOUT",
    "check_output_path",
    "connect",
    "connect_readonly",
    "create_file",
    "existing",
    "peek_job_count",
    "tighten",
    "unwritable",
    "use_wal",
    "verdict",
]

APPLICATION_ID = 0x626B6974
"""``PRAGMA application_id`` of a batchkit store (``b"bkit"``): marks the file as ours."""

_FIRST_TABLES = frozenset({"jobs", "batches", "batch_requests", "batch_results"})
"""The tables of migration 1: a store written before the mark has them all."""


BUSY_TIMEOUT = 60.0
"""Seconds a store waits for another process's write lock before it says so."""


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)


def use_wal(conn: sqlite3.Connection) -> None:
    """Put the store in WAL mode, waiting for other processes as any write does.

    Switching the journal mode is the one step SQLite may refuse at once, without its busy
    handler: while another process is making the same new store, the two connections would
    otherwise wait on each other. So the switch is retried here, within the same timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    pause = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that never writes to the file (SQLite's ``mode=ro``).

    A store in WAL mode with no ``-shm`` beside it, in a folder that cannot be written (a
    read-only file system), cannot be opened ``mode=ro``: it is then opened ``immutable``,
    which is right there, since nothing can be writing it either.
    """
    uri = path.absolute().as_uri()
    conn = sqlite3.connect(
        f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        conn.close()
        if "unable to open" not in str(exc):
            raise
        conn = sqlite3.connect(
            f"{uri}?mode=ro&immutable=1", uri=True, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _not_sqlite(path, exc) from exc
    return conn


_FIX = "batchkit writes only to its own stores: pass store= a new path (or an existing batchkit store)"


def _not_sqlite(path: Path, exc: sqlite3.Error) -> NotAStoreError:
    return NotAStoreError(f"{path} is not a batchkit job store (not an SQLite database: {exc}); {_FIX}", path=path)


def existing(path: Path, *, create: bool) -> bool:
    """Whether a store file exists at ``path``; a clear error where none can be.

    Raises:
        StoreError: the path is a folder, or its folder is a file.
        StoreNotFoundError: no file there and ``create`` is false.
    """
    fix = "pass another store= path (or set BATCHKIT_STORE)"
    if path.is_dir():
        raise StoreError(
            f"the job store path {path} is a folder: name a file, e.g. store={path / 'jobs.sqlite3'}", path=path
        )
    if path.exists():
        return True
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StoreError(
                    f"cannot create the job store at {path}: {parent} is a file, not a folder; {fix}", path=path
                )
            break
    if not create:
        raise StoreNotFoundError(
            f"no job store at {path}: the file does not exist (reading never creates one). Check the "
            "path, or run a call with store= there first",
            path=path,
        )
    return False


def create_file(path: Path) -> None:
    """Create an empty store file readable by its owner only, and its folder if need be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot create the job store at {path}: {_os_reason(exc, path)}", path=path) from exc


def _os_reason(exc: OSError, path: Path) -> str:
    fix = "pass another store= path (or set BATCHKIT_STORE)"
    if exc.errno == errno.EROFS:
        return f"{exc.filename or path.parent} is on a read-only file system; {fix}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to write in {exc.filename or path.parent}; make it writable or {fix}"
    if exc.errno == errno.ENOSPC:
        return f"the disk is full; free some space or {fix}"
    return f"{exc.strerror or exc}; {fix}"


def unwritable(path: Path) -> str | None:
    """Why SQLite could not write the store at ``path``, or None if it can."""
    with contextlib.suppress(OSError, AttributeError):  # no statvfs on Windows
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "it is on a read-only file system"
    if not os.access(path, os.W_OK):
        return "the file is read-only for this user"
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        sidecars = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
        if not all(p.exists() and os.access(p, os.W_OK) for p in sidecars):
            return f"its folder {folder} is read-only for this user (SQLite writes its -wal and -shm files there)"
    return None


def tighten(path: Path) -> None:
    """Make an existing store the user owns (and its WAL files) readable by its owner only."""
    getuid = getattr(os, "getuid", None)  # POSIX only
    if getuid is None:
        return
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            info = file.stat()
            if info.st_uid == getuid() and stat.S_IMODE(info.st_mode) & 0o077:
                os.chmod(file, stat.S_IMODE(info.st_mode) & 0o700)


def verdict(conn: sqlite3.Connection, path: Path) -> tuple[int, int]:
    """(application_id, schema version) of a batchkit store (or of an empty file).

    Raises:
        NotAStoreError: anything else — another application's database, or not a database.
    """
    fix = _FIX
    try:
        # One statement, so one snapshot: read one by one, a store another process creates (its
        # tables, version and mark land in one commit) could be seen half made — unmarked, with
        # tables — and refused as someone else's.
        app_id, version, names = conn.execute(
            "SELECT (SELECT application_id FROM pragma_application_id()), "
            "(SELECT user_version FROM pragma_user_version()), "
            "(SELECT group_concat(name, char(10)) FROM sqlite_master WHERE type = 'table')"
        ).fetchone()
        tables = set(names.split("\n")) if names else set()
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "not a database" not in str(exc):
            raise
        raise _not_sqlite(path, exc) from exc
    if app_id == APPLICATION_ID or (app_id == 0 and not tables and version == 0):
        return app_id, version
    if app_id != 0:
        raise NotAStoreError(
            f"{path} is not a batchkit job store (an SQLite database of another application, "
            f"application_id {app_id:#x}); {fix}",
            path=path,
        )
    if version >= 1 and tables >= _FIRST_TABLES:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        if columns >= {"job_id", "fingerprint", "spec", "row_keys", "skipped"}:
            return app_id, version  # a store from before the mark: marked on open
    listed = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
    raise NotAStoreError(
        f"{path} is not a batchkit job store (an SQLite database with tables {listed}); {fix}", path=path
    )


def check_output_path(path: Path, *, overwrite: bool, what: str = "the file") -> None:
    """Refuse to write ``path`` where a user would not expect it written.

    Raises:
        OutputPathError: its folder is missing or a file, it is a folder or a symlink, or it
            exists and ``overwrite`` is false.
    """
    if path.is_symlink():
        raise OutputPathError(
            f"{path} is a symbolic link: batchkit does not write {what} through links; name the real file", path=path
        )
    if path.is_dir():
        raise OutputPathError(f"{path} is a folder: name a file for {what}, e.g. {path / 'out.csv'}", path=path)
    folder = path.parent
    if not folder.exists():
        raise OutputPathError(
            f"the folder {folder} does not exist: create it first (mkdir -p {folder}) or write {what} elsewhere",
            path=path,
        )
    if not folder.is_dir():
        raise OutputPathError(f"{folder} is a file, not a folder: write {what} elsewhere", path=path)
    if path.exists() and not overwrite:
        raise OutputPathError(
            f"{path} already exists: pass --force (overwrite=True) to replace it, or name another file", path=path
        )


def peek_job_count(path: str | os.PathLike[str]) -> int | None:
    """How many jobs the batchkit store at ``path`` holds, read without writing anything to it;
    None if there is no batchkit store there."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        conn = connect_readonly(path)
    except sqlite3.Error:
        return None
    try:
        verdict(conn, path)
        return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
    except (sqlite3.Error, StoreError):
        return None
    finally:
        conn.close()
