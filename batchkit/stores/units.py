"""Units of work: the ``batches`` rows that carry requests, and their request bodies.

A unit of work is a row of ``batches`` whatever sends it; its ``mode`` says how (``batch``: one
Message Batch; ``realtime``: its requests one by one, see :mod:`batchkit.backends.realtime`) and
so the price its answers were paid at. A unit is written down *before* it is created at the API
(intent before money: state ``submitting``), with its whole request body kept apart in
``batch_requests``; who owns it, and for how long, is :mod:`batchkit.stores.ownership`.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from batchkit.core import _json
from batchkit.core.keys import encode_keys, present_keys
from batchkit.core.states import AWAITING_RESULTS, SendMode, UnitState

from .connection import NEXT_ID, utcnow
from .digests import UnitDigests, digests_of, members
from .leases import keep_leases, lease_until
from .ownership import Ownership

__all__ = ["Units"]

_AWAITING = tuple(AWAITING_RESULTS)
_UNIT_FIELDS = (
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
    "betas",
)


class Units(Ownership):  # creating a unit claims it
    """Recording units of work and reading them back (part of :class:`~batchkit.stores.store.Store`)."""

    _unit_digests: UnitDigests
    """The sorted digests of the keys of each unit in flight (set by the store)."""

    def batches(self, job_id: str | None = None, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Units as records (one dict per ``batches`` row, oldest first), of one job and in some
        states when asked."""
        sql = f"SELECT {', '.join(_UNIT_FIELDS)} FROM batches"
        where: list[str] = []
        args: list[Any] = []
        if job_id is not None:
            where.append("job_id = ?")
            args.append(job_id)
        if states:
            wanted = tuple(states)
            where.append(f"state IN ({','.join('?' * len(wanted))})")
            args.extend(wanted)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [dict(zip(_UNIT_FIELDS, row, strict=True)) for row in self._rows(sql + " ORDER BY id", args)]

    def batch_body(self, batch_id: int) -> bytes:
        with self._lock:
            try:  # read straight from the blob: one copy of a 256 MB body in memory, not two
                with self._conn.blobopen("batch_requests", "body", batch_id, readonly=True) as blob:
                    return blob.read()
            except sqlite3.OperationalError:  # no such row: the same error as before
                pass
        return bytes(self._rows("SELECT body FROM batch_requests WHERE batch_id = ?", (batch_id,))[0][0])

    def batch_keys(self, batch_id: int) -> list[str]:
        return present_keys(self._keys_blob(None, batch_id))

    def in_flight_keys(self) -> set[str]:
        """Keys in any batch that has not yet been collected, by any job or process (while
        planning, read them under the write lock: :meth:`Transaction.in_flight_keys
        <batchkit.stores.transaction.Transaction.in_flight_keys>`)."""
        return self._in_flight_keys(None)

    def _in_flight_keys(self, conn: sqlite3.Connection | None) -> set[str]:
        """:meth:`in_flight_keys`, read in ``conn``'s transaction when given."""
        sql = (
            "SELECT r.keys FROM batches b JOIN batch_requests r ON r.batch_id = b.id"
            f" WHERE b.state IN ({','.join('?' * len(_AWAITING))})"
        )
        rows = conn.execute(sql, _AWAITING) if conn is not None else self._rows(sql, _AWAITING)
        found: set[str] = set()
        for (blob,) in rows:
            found.update(present_keys(blob))
        return found

    def unit_digests(self, batch: Mapping[str, Any]) -> np.ndarray:
        """The sorted digests of a unit's keys (``batch``: its record): whether it may carry some
        keys, in bulk (:func:`batchkit.stores.digests.members`); kept while the unit is in flight."""
        batch_id = int(batch["id"])
        return self._unit_digests.get((batch_id, batch["intent_at"]), lambda: self._keys_blob(None, batch_id))

    def in_flight_among(self, keys: Sequence[str]) -> set[str]:
        """The keys among ``keys`` in a unit still awaiting its results: :meth:`in_flight_keys` ∩
        ``keys``, without reading every in-flight key (under the write lock: the transaction's verb)."""
        return self._in_flight_among(None, keys)

    def _in_flight_among(self, conn: sqlite3.Connection | None, keys: Sequence[str]) -> set[str]:
        """:meth:`in_flight_among`, read in ``conn``'s transaction when given. Each unit in flight is
        ruled out by its keys' digests; only a unit that may carry one of ``keys`` is read, and
        what it carries is compared key by key (two keys may share a digest)."""
        sql = f"SELECT id, intent_at FROM batches WHERE state IN ({','.join('?' * len(_AWAITING))})"
        units = conn.execute(sql, _AWAITING).fetchall() if conn is not None else self._rows(sql, _AWAITING)
        found: set[str] = set()
        if not units or not len(keys):
            return found
        wanted = digests_of(keys)
        order = np.argsort(wanted)
        wanted = wanted[order]
        for unit in units:
            batch_id = int(unit[0])
            held = self._unit_digests.get(tuple(unit), functools.partial(self._keys_blob, conn, batch_id))
            hit = members(wanted, held)
            if hit.any():
                maybe = {keys[i] for i in order[hit].tolist()}
                found.update(maybe.intersection(present_keys(self._keys_blob(conn, batch_id))))
        return found

    def _keys_blob(self, conn: sqlite3.Connection | None, batch_id: int) -> bytes:
        """A unit's keys as stored (:func:`batchkit.core.keys.encode_keys`); empty when it has none."""
        sql = "SELECT keys FROM batch_requests WHERE batch_id = ?"
        rows = conn.execute(sql, (batch_id,)).fetchall() if conn is not None else self._rows(sql, (batch_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] else b""

    def _add_batch(
        self,
        conn: sqlite3.Connection,
        *,
        job_id: str,
        keys: Sequence[str],
        body: bytes | tuple[int, Iterable[bytes]],
        attempt: int,
        owner: str,
        mode: str = SendMode.BATCH,
        betas: Sequence[str] | None = None,
    ) -> int:
        """Record the intent to send a unit (state ``submitting``), with its whole body (bytes, or
        ``(size, pieces)`` written piece by piece).

        ``mode`` is the backend that will send it (``batch``: one Message Batch; ``realtime``: its
        requests one by one, each answer stored by :meth:`Transaction.add_answers
        <batchkit.stores.transaction.Transaction.add_answers>` as it arrives). ``betas``
        are the ``anthropic-beta`` values it is sent with, decided as it is planned (read back as
        the row's ``betas``: comma-joined, ``''`` for none; None leaves them to the backend).
        """
        cur = conn.execute(
            "INSERT INTO batches (id, job_id, state, owner, attempt, n_requests, intent_at, mode, lease_until, betas)"
            f" VALUES ({NEXT_ID.format(table='batches')}, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                UnitState.SUBMITTING,
                owner,
                attempt,
                len(keys),
                utcnow(),
                mode,
                lease_until(),
                None if betas is None else ",".join(betas),
            ),
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

    def update_batch(self, batch_id: int, **fields: Any) -> None:
        with self._atomic() as conn:
            self._update_batch_in(conn, batch_id, **fields)

    def _update_batch_in(self, conn: sqlite3.Connection, batch_id: int, **fields: Any) -> None:
        if "request_counts" in fields and not isinstance(fields["request_counts"], (str, type(None))):
            fields["request_counts"] = _json.dumps(fields["request_counts"]).decode()
        sets = ", ".join(f"{name} = ?" for name in fields)
        conn.execute(f"UPDATE batches SET {sets} WHERE id = ?", (*fields.values(), batch_id))

    def request_bodies(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The params JSON of requests sent before, read back from the batches that carried them."""
        return {key: _json.dumps_sorted(params) for key, params in self.request_params(keys).items()}

    def request_params(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The params of requests sent before (what the model saw), from the batches that carried them.

        Keys never sent (or whose batches are gone) are left out.
        """
        wanted = set(keys)
        found: dict[str, dict[str, Any]] = {}
        for (batch_id,) in self._rows("SELECT id FROM batches ORDER BY id DESC"):
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
