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
errors — a handful of blobs per batch, see :class:`batchkit.results.ResultColumns`), because one
SQLite row per answer costs more client CPU than everything else batchkit does for that answer.
Lookups by request key go through an in-memory index of every stored result, built once per
process and brought up to date incrementally (it costs about 0.1 µs per stored result).

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
from typing import Any, NamedTuple

import numpy as np

from . import _json
from .errors import StoreError
from .results import ANSWERED, ResultColumns

__all__ = ["IndexEntry", "Store", "default_store_path", "utcnow"]


_POS_SHIFT, _RID_SHIFT, _ATTEMPTS_SHIFT = 8, 28, 52
_NO_ATTEMPTS = (1 << _ATTEMPTS_SHIFT) - 1


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
    """Status code (:data:`batchkit.results.STATUS_CODE`) of its best result: an answer if any
    batch answered it, else the latest failure."""
    results_id: int
    """The stored batch results holding that result."""
    pos: int
    """Its position in them."""
    attempts: int
    """How many batches brought back a result for it."""
    error_type: str | None

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
    CREATE TABLE batches (
        id              INTEGER PRIMARY KEY,
        job_id          TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        api_id          TEXT UNIQUE,
        state           TEXT NOT NULL,
        owner           TEXT,
        attempt         INTEGER NOT NULL,
        n_requests      INTEGER NOT NULL,
        intent_at       TEXT NOT NULL,
        created_at      TEXT,
        ended_at        TEXT,
        expires_at      TEXT,
        request_counts  TEXT,
        error           TEXT
    );
    CREATE INDEX batches_by_state ON batches(state);
    CREATE TABLE batch_requests (
        batch_id  INTEGER PRIMARY KEY REFERENCES batches(id) ON DELETE CASCADE,
        keys      BLOB NOT NULL,
        body      BLOB NOT NULL
    );
    CREATE TABLE batch_results (
        id            INTEGER PRIMARY KEY,
        batch_id      INTEGER NOT NULL UNIQUE REFERENCES batches(id) ON DELETE CASCADE,
        model         TEXT,
        received_at   TEXT NOT NULL,
        keys          BLOB NOT NULL,
        statuses      BLOB NOT NULL,
        answers       BLOB NOT NULL,
        stop_reasons  BLOB NOT NULL,
        usage         BLOB NOT NULL,
        errors        BLOB NOT NULL
    );
    """,
    # 2 — which API the answers came from, so simulated answers never serve real calls.
    """
    CREATE TABLE meta (
        name   TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    """,
)

ACTIVE_STATES = ("submitting", "in_progress", "canceling", "ended")
"""Batch states whose requests have no stored result yet (``ended`` = not yet collected)."""


def utcnow() -> str:
    """Now, as an ISO-8601 UTC timestamp with microseconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def default_store_path(client: Any = None) -> Path:
    """Where the store lives when neither ``store=`` nor ``BATCHKIT_STORE`` says otherwise.

    Calls answered by batchkit's simulator get a store of their own, ``simulator.sqlite3``: its
    answers are canned, and a real call with the same content must never be answered from
    them. Which server answers is asked of it (:func:`batchkit.backend.is_simulator`), for
    ``client`` — else the default client, else ``ANTHROPIC_BASE_URL`` — never guessed from a
    host name: a gateway to the real API on 127.0.0.1 gets the real store.

    Raises:
        ServerUnreachableError: ``client`` was given and its server does not answer.
    """
    env = os.environ.get("BATCHKIT_STORE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "batchkit" / ("simulator.sqlite3" if _simulated(client) else "jobs.sqlite3")


def _simulated(client: Any = None) -> bool:
    """Whether calls go to the simulator: ``client``'s, the default client's or the
    environment's server says so. Without a client of the caller's, a server that does not
    answer counts as the real API (it answers nothing either way; asked again next time)."""
    from .backend import get_default_client, is_simulator, url_is_simulator
    from .errors import ServerUnreachableError

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
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self._lock = threading.RLock()
        self._commits = 0
        self._index: dict[str, int] = {}
        self._error_types: dict[str, str] = {}
        self._index_upto = 0
        self._columns: dict[int, ResultColumns] = {}
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
        # Large pages for a new store: batch bodies and result columns are blobs of up to
        # hundreds of MB, and SQLite writes a blob page by page (64 KB pages write a 30 MB body
        # in about a third of the CPU time of the default 4 KB). A no-op on an existing store.
        conn.execute("PRAGMA page_size=65536")
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

    def claim_backend(self, backend: str) -> None:
        """Record which API this store's answers come from; refuse to mix two.

        Raises:
            StoreError: the store already holds answers from another API.
        """
        with self.atomic() as conn:
            row = conn.execute("SELECT value FROM meta WHERE name = 'backend'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('backend', ?)", (backend,))
            elif row[0] != backend:
                raise StoreError(
                    f"the job store at {self.path} holds answers from the {row[0]}, and this call goes to "
                    f"the {backend}: answers are reused by content, so the two must not share a store. "
                    "Pass another store= (or set BATCHKIT_STORE) for this one."
                )

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
    ) -> dict[str, Any]:
        """Write a new job down; returns its record as :meth:`load_job` would read it back."""
        spec_json = _json.dumps(spec)
        record = {
            "job_id": job_id, "fingerprint": fingerprint, "created_at": utcnow(), "model": model,
            "kind": kind, "output": output, "spec": _json.loads(spec_json), "n_rows": len(row_keys),
            "row_keys": list(row_keys), "skipped": dict(skipped), "status": "running",
        }
        conn.execute(
            "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                job_id, fingerprint, record["created_at"], model, kind, output, spec_json.decode(),
                len(row_keys), encode_keys(row_keys),
                _json.dumps({str(k): v for k, v in skipped.items()}).decode(), "running",
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
        return {
            "job_id": r[0], "fingerprint": r[1], "created_at": r[2], "model": r[3], "kind": r[4],
            "output": r[5], "spec": _json.loads(r[6]), "n_rows": r[7],
            "row_keys": decode_keys(r[8], r[7]), "skipped": {int(k): v for k, v in _json.loads(r[9]).items()},
            "status": r[10],
        }

    def set_job_status(self, job_id: str, status: str) -> None:
        with self.atomic() as conn:
            conn.execute("UPDATE jobs SET status = ? WHERE job_id = ?", (status, job_id))

    def set_row_keys(self, conn: sqlite3.Connection, job_id: str, row_keys: Sequence[str | None]) -> None:
        conn.execute("UPDATE jobs SET row_keys = ? WHERE job_id = ?", (encode_keys(row_keys), job_id))

    # ------------------------------------------------------------------ results

    def store_results(
        self, conn: sqlite3.Connection, batch_id: int, model: str | None, columns: ResultColumns
    ) -> None:
        """Keep one batch's results. A batch already stored (by another process) is left as is.

        The columns stay decoded in memory too: the job that stored them reads them next.
        """
        cur = conn.execute(
            "INSERT OR IGNORE INTO batch_results (batch_id, model, received_at, keys, statuses, answers,"
            " stop_reasons, usage, errors) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (batch_id, model, utcnow(), *columns.to_blobs()),
        )
        if cur.rowcount == 1:
            with self._lock:
                self._remember(int(cur.lastrowid), columns)  # type: ignore[arg-type]

    def _remember(self, results_id: int, columns: ResultColumns) -> None:
        self._columns[results_id] = columns
        while len(self._columns) > 8:
            self._columns.pop(next(iter(self._columns)))

    def index(self) -> dict[str, int]:
        """Every stored result's key → its best outcome, packed in an int (see :func:`unpack`).

        The best outcome is an answer if any batch answered the key, else the latest failure.
        Brought up to date from the batches stored since the last call, by any process.
        """
        with self._lock:
            new = [r for (r,) in self._conn.execute(
                "SELECT id FROM batch_results WHERE id > ? ORDER BY id", (self._index_upto,)
            )]
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
                    codes | (np.arange(len(codes), dtype=np.int64) << _POS_SHIFT)
                    | (results_id << _RID_SHIFT) | (1 << _ATTEMPTS_SHIFT)
                ).tolist()
                # Keys seen before (retries, repeats across jobs) merge with what is known of
                # them; the rest, usually all of them, go in at once.
                seen = {key: index[key] for key in index.keys() & keys} if index else {}
                index.update(zip(keys, packed))
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
        )  # type: ignore[return-value]

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
        self.index()
        return self._error_types.get(key)

    def entry(self, key: str) -> IndexEntry | None:
        """What the store knows of one request key, unpacked."""
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
            r for (r,) in self.query(
                "SELECT r.id FROM batch_results r JOIN batches b ON b.id = r.batch_id WHERE b.job_id = ?", (job_id,)
            )
        ]

    def answered(self, keys: Iterable[str]) -> set[str]:
        """The keys among ``keys`` that already have an answer (paid for: never send again)."""
        index = self.index()
        if not index:
            return set()
        return {k for k in keys if (e := index.get(k)) is not None and (e & 0xFF) in ANSWERED}

    def request_bodies(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The params JSON of requests sent before, read back from the batches that carried them."""
        wanted = set(keys)
        found: dict[str, bytes] = {}
        for (batch_id,) in self.query("SELECT id FROM batches ORDER BY id DESC"):
            if not wanted:
                break
            if wanted.isdisjoint(self.batch_keys(batch_id)):
                continue
            body = self.batch_body(batch_id)
            for item in _json.loads(body)["requests"]:
                if item["custom_id"] in wanted:
                    found[item["custom_id"]] = _json.dumps_sorted(item["params"])
                    wanted.discard(item["custom_id"])
        return found

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

    def batch_body(self, batch_id: int) -> bytes:
        return bytes(self.query("SELECT body FROM batch_requests WHERE batch_id = ?", (batch_id,))[0][0])

    def batch_keys(self, batch_id: int) -> list[str]:
        rows = self.query("SELECT keys FROM batch_requests WHERE batch_id = ?", (batch_id,))
        return [k for k in decode_keys(rows[0][0]) if k] if rows else []

    def in_flight_keys(self, conn: sqlite3.Connection) -> set[str]:
        """Keys in any batch that has not yet been collected, by any job or process."""
        found: set[str] = set()
        for (blob,) in conn.execute(
            "SELECT r.keys FROM batches b JOIN batch_requests r ON r.batch_id = b.id"
            f" WHERE b.state IN ({','.join('?' * len(ACTIVE_STATES))})",
            ACTIVE_STATES,
        ):
            found.update(k for k in decode_keys(blob) if k)
        return found

    def add_batch(
        self, conn: sqlite3.Connection, *, job_id: str, keys: Sequence[str], body: bytes, attempt: int,
        owner: str,
    ) -> int:
        """Record the intent to create a batch (state ``submitting``), with its whole body."""
        cur = conn.execute(
            "INSERT INTO batches (job_id, state, owner, attempt, n_requests, intent_at)"
            " VALUES (?, 'submitting', ?, ?, ?, ?)",
            (job_id, owner, attempt, len(keys), utcnow()),
        )
        batch_id = int(cur.lastrowid)  # type: ignore[arg-type]
        # Kept apart from the batch's own row, which is updated at every poll: SQLite rewrites a
        # whole row on update, and this one can be 256 MB.
        conn.execute("INSERT INTO batch_requests VALUES (?, ?, ?)", (batch_id, encode_keys(keys), body))
        return batch_id

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
            "SELECT job_id, created_at, model, kind, output, n_rows, status FROM jobs"
            " ORDER BY created_at DESC"
        )


_OPEN: dict[str, Store] = {}
_OPEN_LOCK = threading.Lock()


def encode_keys(keys: Sequence[str | None]) -> bytes:
    """Row keys as one blob: newline-separated, empty for a row with no request."""
    return "\n".join(keys if None not in keys else [k or "" for k in keys]).encode()  # type: ignore[arg-type]


def decode_keys(blob: bytes, n: int | None = None) -> list[str | None]:
    """The inverse of :func:`encode_keys`; ``n`` disambiguates a blob of one empty key."""
    if not blob:
        return [None] * (n or 0)
    return [k or None for k in blob.decode().split("\n")]


