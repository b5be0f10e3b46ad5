"""The simulator's state file: its batches written down, so a restarted simulator carries on.

Without a state file the simulator lives in memory and its batches die with its process. With
one (``Simulator(state=PATH)``, ``python -m batchkit.simulator --state PATH``), every batch is
written down when it is created (id, place in creation order, creation time, API version,
betas, the id stem of its messages, its requests as sent), ended (its request counts), canceled
(when) and deleted (when), and so is the simulated clock. A simulator started on the file loads them and carries on:
batches finish on the clock as if the process had never stopped, and their results are made
again from the requests — the same answers, usage and per-request fault draws (those are drawn
from the batch's place in creation order and the ``custom_id``). A batch whose results were
archived (29 days) keeps only its counts, so the file does not grow with every batch's
requests forever, and what is worked through again on a restart is the last 29 simulated
days' batches. What is not written down
starts afresh: the counters of :meth:`Simulator.stats`, HTTP fault draws and schedules, the
prompt cache left by ``/v1/messages`` calls, rate-limit buckets.

The file is a small SQLite database (stdlib ``sqlite3``, WAL). A simulator holds it
exclusively (SQLite's ``locking_mode=EXCLUSIVE``) for its whole life: a second simulator on the
same file is refused with :class:`StateLockedError`. Two simulators cannot share batches
safely — each would answer from its own memory and hand out the same places in creation order
— and the lock goes away with the process that held it, however it ended.

The clock: what is saved is a floor, ``now + CLOCK_STEP × time_scale``, written again whenever
the clock comes within half a step of it. A restarted clock starts from
``max(start, floor)``, so it never shows an earlier time than one a client has already seen
(it may jump ahead by up to one step).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from ._clock import LATEST

__all__ = ["CLOCK_STEP", "SavedBatch", "StateConfigError", "StateError", "StateFile", "StateLockedError"]

CLOCK_STEP = 1.0
"""Wall seconds of simulated time the saved clock floor runs ahead of the clock."""

_SCHEMA = 1
_MIGRATIONS = (
    """
    CREATE TABLE batches (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        version TEXT NOT NULL,
        betas TEXT NOT NULL,
        stem TEXT NOT NULL,
        requests BLOB NOT NULL,
        cancel_at REAL,
        deleted_at REAL,
        counts TEXT,
        ended_at REAL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value);
    """,
)


class StateError(RuntimeError):
    """The state file cannot be used (not a simulator state file, or from a newer version)."""


class StateLockedError(StateError):
    """Another simulator is running on this state file."""


class StateConfigError(StateError):
    """The state file was written by a simulator whose answers differ (another seed, faults,
    processing or responder): restoring its batches would answer them differently."""


class SavedBatch(NamedTuple):
    """One batch as written down."""

    seq: int
    id: str
    created: float
    version: str
    betas: tuple[str, ...]
    stem: str
    requests: bytes
    cancel_at: float | None
    deleted_at: float | None
    counts: dict[str, int] | None
    ended_at: float | None


class StateFile:
    """The one owner of a simulator's state file (thread-safe: one connection, one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._clock_floor = float("-inf")
        try:
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the simulator's state file {self.path}: {exc}") from None
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")  # taken now, held until close: one simulator per file
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" in str(exc):
                raise StateLockedError(
                    f"another simulator is running on the state file {self.path}: stop it first, or "
                    "give this one a state file of its own (or none)"
                ) from None
            raise StateError(f"cannot use {self.path} as the simulator's state file: {exc}") from None
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StateError(
                f"{self.path} is not a simulator state file ({exc}); give another path, or delete it to start fresh"
            ) from None
        self._conn = conn
        try:
            self._migrate()
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # a killed process loses nothing committed
        except BaseException:
            conn.close()
            raise

    def _migrate(self) -> None:
        conn = self._conn
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"{self.path} is not a simulator state file ({exc}); give another path, or delete it to start fresh"
            ) from None
        if version == 0 and tables:
            raise StateError(
                f"{self.path} is not a simulator state file (it holds tables {sorted(tables)}); give another path"
            )
        if version > _SCHEMA:
            raise StateError(
                f"{self.path} was written by a newer batchkit simulator "
                f"(state schema {version}, this one knows {_SCHEMA}); upgrade batchkit"
            )
        for number in range(version, _SCHEMA):
            for statement in filter(str.strip, _MIGRATIONS[number].split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")

    # ------------------------------------------------------------------ reading

    def batches(self) -> list[SavedBatch]:
        """Every batch written down, in creation order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, id, created, version, betas, stem, requests, cancel_at, deleted_at, counts, "
                "ended_at FROM batches ORDER BY seq"
            ).fetchall()
        return [
            SavedBatch(
                seq,
                bid,
                created,
                version,
                tuple(msgspec.json.decode(betas)),
                stem,
                bytes(requests),
                cancel_at,
                deleted_at,
                None if counts is None else msgspec.json.decode(counts),
                ended_at,
            )
            for seq, bid, created, version, betas, stem, requests, cancel_at, deleted_at, counts, ended_at in rows
        ]

    def check_config(self, fingerprint: str) -> None:
        """Write down the configuration the batches are answered under, or refuse another one.

        Raises:
            StateConfigError: the file's batches were answered under another configuration.
        """
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
            if row is None:
                self._conn.execute("INSERT INTO meta (key, value) VALUES ('config', ?)", (fingerprint,))
                return
        if row[0] != fingerprint and self._has_batches():
            raise StateConfigError(
                f"the simulator state file {self.path} holds batches answered under another configuration (seed, "
                "faults, processing or responder): restored, they would be answered differently. Start the "
                "simulator as it was, or give it another state file (or delete this one while no simulator runs)"
            )
        self._write("UPDATE meta SET value = ? WHERE key = 'config'", (fingerprint,))

    def _has_batches(self) -> bool:
        with self._lock:
            return self._conn.execute("SELECT 1 FROM batches LIMIT 1").fetchone() is not None

    def clock_floor(self) -> float | None:
        """The saved clock floor (``None`` for a new file)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'clock'").fetchone()
        if row is not None:
            self._clock_floor = float(row[0])
        return None if row is None else float(row[0])

    # ------------------------------------------------------------------ writing

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._conn.execute(sql, args)

    def created(
        self, seq: int, batch_id: str, created: float, version: str, betas: tuple[str, ...], stem: str, requests: bytes
    ) -> None:
        self._write(
            "INSERT INTO batches (seq, id, created, version, betas, stem, requests) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, batch_id, created, version, msgspec.json.encode(list(betas)).decode(), stem, requests),
        )

    def canceled(self, batch_id: str, at: float) -> None:
        self._write("UPDATE batches SET cancel_at = ? WHERE id = ?", (at, batch_id))

    def ended(self, batch_id: str, counts: dict[str, int], at: float) -> None:
        self._write(
            "UPDATE batches SET counts = ?, ended_at = ? WHERE id = ?",
            (msgspec.json.encode(counts).decode(), at, batch_id),
        )

    def archived(self, batch_id: str) -> None:
        # its results are gone for good: what is left to show is its counts
        self._write("UPDATE batches SET requests = x'' WHERE id = ?", (batch_id,))

    def deleted(self, batch_id: str, at: float) -> None:
        # what a deleted batch needs is its place in the order (list cursors); its requests are gone
        self._write("UPDATE batches SET deleted_at = ?, requests = x'' WHERE id = ?", (at, batch_id))

    def clock(self, now: float, time_scale: float) -> None:
        """Keep the saved floor ahead of ``now`` (a write at most every half step)."""
        if now + 0.5 * CLOCK_STEP * time_scale < self._clock_floor:
            return
        floor = min(now + CLOCK_STEP * time_scale, LATEST)  # a clock that fast must still reopen
        self._write(
            "INSERT INTO meta (key, value) VALUES ('clock', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            (floor,),
        )
        self._clock_floor = max(self._clock_floor, floor)

    def close(self) -> None:
        """Let go of the file (idempotent); another simulator may then open it."""
        with self._lock:
            self._conn.close()
