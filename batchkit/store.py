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

The file is created readable by its owner only. It holds no API key and no pickles: params
are JSON, timestamps ISO-8601 UTC, and the schema is a list of numbered migrations recorded in
``PRAGMA user_version``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from .errors import StoreError
from .results import RESULT_FIELDS

__all__ = ["Store", "default_store_path", "utcnow"]

_MIGRATIONS: tuple[str, ...] = (
    # 1 — the first schema.
    """
    CREATE TABLE jobs (
        job_id       TEXT PRIMARY KEY,
        fingerprint  TEXT NOT NULL UNIQUE,
        created_at   TEXT NOT NULL,
        model        TEXT NOT NULL,
        kind         TEXT NOT NULL,
        output       TEXT NOT NULL,
        spec         TEXT NOT NULL,
        n_rows       INTEGER NOT NULL,
        row_keys     BLOB NOT NULL,
        skipped      TEXT NOT NULL,
        status       TEXT NOT NULL
    );
    CREATE TABLE job_keys (
        job_id  TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        key     TEXT NOT NULL,
        PRIMARY KEY (job_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX job_keys_by_key ON job_keys(key);
    CREATE TABLE requests (
        key     TEXT PRIMARY KEY,
        params  BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE batches (
        id              INTEGER PRIMARY KEY,
        job_id          TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        api_id          TEXT UNIQUE,
        state           TEXT NOT NULL,
        owner           TEXT,
        attempt         INTEGER NOT NULL,
        n_requests      INTEGER NOT NULL,
        keys            BLOB NOT NULL,
        intent_at       TEXT NOT NULL,
        created_at      TEXT,
        ended_at        TEXT,
        expires_at      TEXT,
        request_counts  TEXT,
        error           TEXT
    );
    CREATE INDEX batches_by_state ON batches(state);
    CREATE TABLE results (
        key             TEXT PRIMARY KEY,
        status          TEXT NOT NULL,
        answer          TEXT,
        stop_reason     TEXT,
        error_type      TEXT,
        error_message   TEXT,
        input_tokens    INTEGER NOT NULL,
        output_tokens   INTEGER NOT NULL,
        cache_write_5m  INTEGER NOT NULL,
        cache_write_1h  INTEGER NOT NULL,
        cache_read      INTEGER NOT NULL,
        batch_id        TEXT NOT NULL,
        model           TEXT,
        attempts        INTEGER NOT NULL,
        received_at     TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
)

ACTIVE_STATES = ("submitting", "in_progress", "canceling", "ended")
"""Batch states whose requests have no stored result yet (``ended`` = not yet collected)."""


def utcnow() -> str:
    """Now, as an ISO-8601 UTC timestamp with microseconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def default_store_path() -> Path:
    """Where the store lives when neither ``store=`` nor ``BATCHKIT_STORE`` says otherwise."""
    env = os.environ.get("BATCHKIT_STORE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "batchkit" / "jobs.sqlite3"


class Store:
    """One SQLite connection, shared by the threads of a process behind a lock.

    Writes go through :meth:`atomic`, which takes SQLite's write lock up front
    (``BEGIN IMMEDIATE``) so two processes planning the same requests see each other's intent.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self._lock = threading.RLock()
        self._commits = 0
        try:
            self._conn = self._open()
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the job store at {self.path}: {exc}") from exc

    @classmethod
    def resolve(cls, store: Store | str | os.PathLike[str] | None) -> Store:
        """A :class:`Store` from a ``store=`` argument (an open store, a path, or None)."""
        if isinstance(store, Store):
            return store
        path = Path(store).expanduser() if store is not None else default_store_path()
        key = str(path.resolve()) if path.exists() else str(path.absolute())
        with _OPEN_LOCK:
            found = _OPEN.get(key)
            if found is None:
                found = _OPEN[key] = cls(path)
            return found

    def _open(self) -> sqlite3.Connection:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        conn = sqlite3.connect(
            self.path, timeout=60.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=60000")
        return conn

    def _migrate(self) -> None:
        with self.atomic() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(_MIGRATIONS):
                raise StoreError(
                    f"the job store at {self.path} was written by a newer batchkit (schema "
                    f"{version}, this one knows {len(_MIGRATIONS)}); upgrade batchkit or use another store="
                )
            for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: everything inside commits together or not at all."""
        with self._lock:
            conn = self._conn
            if conn.in_transaction:  # nested: the outer transaction owns the commit
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._commits += 1

    def version(self) -> tuple[int, int]:
        """Changes whenever anything is written, by this process or another one."""
        with self._lock:
            return (self._conn.execute("PRAGMA data_version").fetchone()[0], self._commits)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        with _OPEN_LOCK:
            for key, store in list(_OPEN.items()):
                if store is self:
                    del _OPEN[key]

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
    ) -> None:
        conn.execute(
            "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                job_id, fingerprint, utcnow(), model, kind, output,
                orjson.dumps(spec).decode(), len(row_keys), encode_keys(row_keys),
                orjson.dumps({str(k): v for k, v in skipped.items()}).decode(), "running",
            ),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO job_keys VALUES (?, ?)",
            ((job_id, k) for k in dict.fromkeys(k for k in row_keys if k is not None)),
        )

    def load_job(self, job_id: str) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT job_id, fingerprint, created_at, model, kind, output, spec, n_rows, row_keys,"
            " skipped, status FROM jobs WHERE job_id = ?",
            (job_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return {
            "job_id": r[0], "fingerprint": r[1], "created_at": r[2], "model": r[3], "kind": r[4],
            "output": r[5], "spec": orjson.loads(r[6]), "n_rows": r[7],
            "row_keys": decode_keys(r[8], r[7]), "skipped": {int(k): v for k, v in orjson.loads(r[9]).items()},
            "status": r[10],
        }

    def set_job_status(self, job_id: str, status: str) -> None:
        with self.atomic() as conn:
            conn.execute("UPDATE jobs SET status = ? WHERE job_id = ?", (status, job_id))

    def set_row_keys(self, conn: sqlite3.Connection, job_id: str, row_keys: Sequence[str | None]) -> None:
        conn.execute("UPDATE jobs SET row_keys = ? WHERE job_id = ?", (encode_keys(row_keys), job_id))
        conn.executemany(
            "INSERT OR IGNORE INTO job_keys VALUES (?, ?)",
            ((job_id, k) for k in dict.fromkeys(k for k in row_keys if k is not None)),
        )

    # ------------------------------------------------------------------ requests and results

    def add_requests(self, conn: sqlite3.Connection, bodies: Iterable[tuple[str, bytes]]) -> None:
        conn.executemany("INSERT OR IGNORE INTO requests VALUES (?, ?)", bodies)

    def request_bodies(self, keys: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for part in _slices(keys, 900):
            marks = ",".join("?" * len(part))
            out.update(self.query(f"SELECT key, params FROM requests WHERE key IN ({marks})", part))
        return out

    def results_for_job(self, job_id: str) -> dict[str, tuple[Any, ...]]:
        """Every stored result of a job's requests, by key."""
        cols = ", ".join(f"r.{c}" for c in RESULT_FIELDS)
        rows = self.query(
            f"SELECT {cols}, r.attempts, r.batch_id, r.model FROM job_keys j JOIN results r ON r.key = j.key"
            " WHERE j.job_id = ?",
            (job_id,),
        )
        return {row[0]: row for row in rows}

    def answered(self, keys: Iterable[str]) -> set[str]:
        """The keys among ``keys`` whose stored result is final (needs no resubmission)."""
        found: set[str] = set()
        keys = list(keys)
        for part in _slices(keys, 900):
            marks = ",".join("?" * len(part))
            found.update(
                k for (k,) in self.query(
                    f"SELECT key FROM results WHERE key IN ({marks})"
                    " AND status IN ('succeeded', 'truncated')",
                    part,
                )
            )
        return found

    def store_results(
        self, conn: sqlite3.Connection, batch_api_id: str, model: str | None, records: Iterable[Sequence[Any]]
    ) -> None:
        """Upsert result records from one batch.

        A stored success is never replaced, and re-reading the same batch does not count as
        another attempt.
        """
        now = utcnow()
        conn.executemany(
            "INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1,?)"
            " ON CONFLICT(key) DO UPDATE SET"
            " status=excluded.status, answer=excluded.answer, stop_reason=excluded.stop_reason,"
            " error_type=excluded.error_type, error_message=excluded.error_message,"
            " input_tokens=excluded.input_tokens, output_tokens=excluded.output_tokens,"
            " cache_write_5m=excluded.cache_write_5m, cache_write_1h=excluded.cache_write_1h,"
            " cache_read=excluded.cache_read, batch_id=excluded.batch_id, model=excluded.model,"
            " attempts=results.attempts + 1, received_at=excluded.received_at"
            " WHERE results.batch_id != excluded.batch_id"
            " AND results.status NOT IN ('succeeded', 'truncated')",
            ((*r, batch_api_id, model, now) for r in records),
        )

    def mark_status(self, conn: sqlite3.Connection, updates: Iterable[tuple[str, str, str]]) -> None:
        """Set (status, error_message) of stored results, e.g. to ``invalid_output``."""
        conn.executemany("UPDATE results SET status = ?, error_message = ? WHERE key = ?", updates)

    # ------------------------------------------------------------------ batches

    def batches(self, job_id: str | None = None, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT id, job_id, api_id, state, owner, attempt, n_requests, intent_at, created_at,"
            " ended_at, expires_at, request_counts, error FROM batches"
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
            "id", "job_id", "api_id", "state", "owner", "attempt", "n_requests", "intent_at",
            "created_at", "ended_at", "expires_at", "request_counts", "error",
        )
        return [dict(zip(names, row)) for row in self.query(sql + " ORDER BY id", args)]

    def batch_keys(self, batch_id: int) -> list[str]:
        rows = self.query("SELECT keys FROM batches WHERE id = ?", (batch_id,))
        return [k for k in decode_keys(rows[0][0]) if k] if rows else []

    def in_flight_keys(self, conn: sqlite3.Connection) -> set[str]:
        """Keys in any batch that has not yet been collected, by any job or process."""
        found: set[str] = set()
        for (blob,) in conn.execute(
            f"SELECT keys FROM batches WHERE state IN ({','.join('?' * len(ACTIVE_STATES))})",
            ACTIVE_STATES,
        ):
            found.update(k for k in decode_keys(blob) if k)
        return found

    def add_batch(
        self, conn: sqlite3.Connection, *, job_id: str, keys: Sequence[str], attempt: int, owner: str
    ) -> int:
        cur = conn.execute(
            "INSERT INTO batches (job_id, state, owner, attempt, n_requests, keys, intent_at)"
            " VALUES (?, 'submitting', ?, ?, ?, ?, ?)",
            (job_id, owner, attempt, len(keys), encode_keys(keys), utcnow()),
        )
        return int(cur.lastrowid)  # type: ignore[arg-type]

    def update_batch(self, batch_id: int, **fields: Any) -> None:
        with self.atomic() as conn:
            self.update_batch_in(conn, batch_id, **fields)

    def update_batch_in(self, conn: sqlite3.Connection, batch_id: int, **fields: Any) -> None:
        if "request_counts" in fields and not isinstance(fields["request_counts"], (str, type(None))):
            fields["request_counts"] = orjson.dumps(fields["request_counts"]).decode()
        sets = ", ".join(f"{name} = ?" for name in fields)
        conn.execute(f"UPDATE batches SET {sets} WHERE id = ?", (*fields.values(), batch_id))

    # ------------------------------------------------------------------ listing

    def job_rows(self) -> list[tuple[Any, ...]]:
        return self.query(
            "SELECT job_id, created_at, model, kind, output, n_rows, status FROM jobs"
            " ORDER BY created_at DESC"
        )


_OPEN: dict[str, Store] = {}
_OPEN_LOCK = threading.Lock()


def encode_keys(keys: Sequence[str | None]) -> bytes:
    """Row keys as one blob: newline-separated, empty for a row with no request."""
    return "\n".join(k or "" for k in keys).encode()


def decode_keys(blob: bytes, n: int | None = None) -> list[str | None]:
    """The inverse of :func:`encode_keys`; ``n`` disambiguates a blob of one empty key."""
    if not blob:
        return [None] * (n or 0)
    return [k or None for k in blob.decode().split("\n")]


def _slices(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
