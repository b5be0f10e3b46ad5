"""Results and their index: the answers the store keeps, and how a request key finds its answer.

Results are kept per stored unit, as columns (keys, statuses, answers, stop reasons, token
counts, errors — a handful of blobs per unit, see :class:`batchkit.core.results.ResultColumns`),
because one SQLite row per answer costs more client CPU than everything else batchkit does for
that answer. A collected Message Batch stores its results at once
(:meth:`~batchkit.stores.transaction.Transaction.put_results`); a realtime unit stores its answers
as they arrive, a small group per transaction
(:meth:`~batchkit.stores.transaction.Transaction.add_answers`), each group a ``batches`` row of
its own so every reader treats realtime and batch answers alike.

Lookups by request key go through an in-memory index of every stored result (:meth:`Results.index`),
built once per process and brought up to date incrementally (about 0.1 µs per stored result). A
store used by a partitioned run (:attr:`Results.index_on_disk`) keeps no object per key: it asks a
compact summary of the stored keys first (:class:`~batchkit.stores.digests.KeyDigests`, 8 bytes a
key, brought up to date from ``batch_results`` past its mark, by any process), which answers
"certainly not stored" for a whole partition at once (about 0.2 µs a key), and looks up only the
possible hits in an on-disk index (``result_index``, a ``WITHOUT ROWID`` table; about 2 µs a
lookup). That index is filled from ``batch_results`` past a mark of its own only when a lookup
has a possible hit (about 3.5 µs per stored result, :meth:`Results.fill_index`), so a run of new
keys never writes it, and a key answered before — by an earlier partition, an earlier run or
another process — is still found and never paid again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from batchkit.core import _json
from batchkit.core.keys import decode_keys, encode_keys
from batchkit.core.results import ANSWERED, USAGE_FIELDS, ResultColumns
from batchkit.core.states import UnitState

from .connection import NEXT_ID, StoreCore, utcnow
from .digests import KeyDigests, digests_of, digests_of_blob

__all__ = ["IndexEntry", "Results", "unpack"]

_POS_SHIFT, _RID_SHIFT, _ATTEMPTS_SHIFT = 8, 28, 52
_NO_ATTEMPTS = (1 << _ATTEMPTS_SHIFT) - 1
_MEMO_MIN, _MEMO_SLOTS = 1000, 4
"""On-disk lookups of at least this many keys are remembered, the last few of them (see ``_disk_entries``)."""
_LOOKUP_CHUNK = 900
"""Keys per ``IN (…)`` query of the on-disk index (under SQLite's oldest variable limit, 999)."""
_ANSWERED_SQL = ",".join(str(code) for code in sorted(ANSWERED))
_ANSWERED_CODES = np.array(sorted(ANSWERED), dtype=np.int64)
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


def _in_key_order(keys: list[str], packed: list[int], errors: list[str | None]) -> list[tuple[str, int, str | None]]:
    """The rows of one stored batch's results for the index, sorted by key (a batch's keys are
    distinct: sorting the keys alone gives the order of sorting the rows, and is quicker)."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return list(
        zip(map(keys.__getitem__, order), map(packed.__getitem__, order), map(errors.__getitem__, order), strict=True)
    )


def _merge(old: int | None, new: int) -> int:
    """Two packed outcomes of one key, merged as the index merges them (see :data:`_UPSERT`)."""
    if old is None:
        return new
    keep = (old & 0xFF) in ANSWERED and (new & 0xFF) not in ANSWERED
    return ((old if keep else new) & _NO_ATTEMPTS) | (((old >> _ATTEMPTS_SHIFT) + 1) << _ATTEMPTS_SHIFT)


class Results(StoreCore):
    """Storing results and finding them by request key (part of :class:`~batchkit.stores.store.Store`)."""

    index_on_disk: bool
    """Look keys up through the summary of stored keys and the on-disk index (:meth:`lookup`)
    instead of the in-memory index, so memory grows by 8 bytes a stored key, not by a dict entry:
    set by a partitioned run (:mod:`batchkit.engine.runs`)."""

    def _init_results(self) -> None:
        self._index: dict[str, int] = {}
        self._error_types: dict[str, str] = {}
        self._index_upto = 0
        self._columns: dict[int, ResultColumns] = {}
        self._aliases: dict[str, str] | None = None
        self._removals: str | None = None  # meta 'removals' as last seen (see _after_removals)
        # The last few large on-disk lookups (keys → (index mark, what was found)): bounded by a few partitions.
        self._memo: dict[frozenset[str], tuple[int, dict[str, tuple[int, str | None]]]] = {}
        self._digests = KeyDigests()  # of every stored key, up to results id _digests_upto
        self._digests_upto = 0
        self.index_on_disk = False

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
            self._digests, self._digests_upto = KeyDigests(), 0
            self._columns.clear()
            self._memo.clear()
            self._aliases = None

    def _store_results(
        self, conn: sqlite3.Connection, batch_id: int, model: str | None, columns: ResultColumns
    ) -> None:
        """Keep one batch's results. A batch already stored (by another process) is left as is.

        The columns stay decoded in memory too: the job that stored them reads them next. Results
        of a unit sent before migration 4 come back under old keys and are stored under new ones.
        """
        aliases = self._key_aliases(conn)
        if aliases and not aliases.keys().isdisjoint(columns.keys):
            columns.keys = [aliases.get(k, k) for k in columns.keys]
        cur = conn.execute(
            "INSERT OR IGNORE INTO batch_results (id, batch_id, model, received_at, keys, statuses, answers,"
            f" stop_reasons, usage, errors) VALUES ({NEXT_ID.format(table='batch_results')},"
            " ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (batch_id, model, utcnow(), *columns.to_blobs()),
        )
        if cur.rowcount == 1:
            results_id = int(cur.lastrowid)  # type: ignore[arg-type]
            with self._lock:
                self._remember(results_id, columns)
                self._on_rollback(lambda: self._unstored(results_id))

    def _unstored(self, results_id: int) -> None:
        """Forget results whose transaction was rolled back: their id will be given out again."""
        self._columns.pop(results_id, None)
        if self._index_upto >= results_id:  # the in-memory index took them in: build it again
            self._index, self._error_types, self._index_upto = {}, {}, 0
        # Their digests may stay (a digest is only a possible hit), but the id will be given out
        # again: read the results from there on again.
        self._digests_upto = min(self._digests_upto, results_id - 1)
        self._memo.clear()

    def _key_aliases(self, conn: sqlite3.Connection) -> dict[str, str]:
        """Old key → new key of units created before migration 4 (read once; empty in a new store)."""
        if self._aliases is None:
            self._aliases = dict(conn.execute("SELECT old, new FROM key_aliases").fetchall())
        return self._aliases

    def _remember(self, results_id: int, columns: ResultColumns, *, read_back: bool = False) -> None:
        if not read_back or len(self._columns) < 8:  # read back: only into room, not over what a reader reads next
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
            if self._memo:  # a partition's keys made into a set only when a lookup is remembered
                self._memo.pop(frozenset(keys), None)

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
        return self._rows(
            "SELECT id, length(statuses) FROM batch_results WHERE id > ? AND id <= ? ORDER BY id", (after, upto)
        )

    def results_units_since(self, after: int, upto: int) -> list[tuple[int, int, str | None]]:
        """(id, unit id, the unit's intent time) of the batch results stored after index version
        ``after``, up to ``upto``: which unit each came from (the intent time is None for a unit
        whose keys are not kept with it, a group of realtime answers)."""
        return self._rows(
            "SELECT r.id, r.batch_id, CASE WHEN q.batch_id IS NULL THEN NULL ELSE b.intent_at END"
            " FROM batch_results r JOIN batches b ON b.id = r.batch_id"
            " LEFT JOIN batch_requests q ON q.batch_id = r.batch_id WHERE r.id > ? AND r.id <= ? ORDER BY r.id",
            (after, upto),
        )

    def result_usage(self, results_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(status codes, ``(n, 5)`` token counts) of one stored batch, without its answers."""
        statuses, usage = self._rows("SELECT statuses, usage FROM batch_results WHERE id = ?", (results_id,))[0]
        n = len(statuses)
        return np.frombuffer(statuses, dtype=np.uint8), np.frombuffer(usage, dtype="<i8").reshape(n, len(USAGE_FIELDS))

    def result_keys(self, results_id: int) -> list[str]:
        """The request keys of one stored batch's results."""
        if results_id in self._columns:
            return self._columns[results_id].keys
        (blob,) = self._rows("SELECT keys FROM batch_results WHERE id = ?", (results_id,))[0]
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
        """One stored batch's result columns (the last few stored are kept decoded; see :meth:`_remember`)."""
        with self._lock:
            found = self._columns.get(results_id)
            if found is None:
                row = self._conn.execute(
                    "SELECT keys, statuses, answers, stop_reasons, usage, errors FROM batch_results WHERE id = ?",
                    (results_id,),
                ).fetchone()
                found = ResultColumns.from_blobs(*row)
                self._remember(results_id, found, read_back=True)
            return found

    def results_of_job(self, job_id: str) -> list[int]:
        """The ids of the stored batch results that came from this job's own batches."""
        return [
            r
            for (r,) in self._rows(
                "SELECT r.id FROM batch_results r JOIN batches b ON b.id = r.batch_id WHERE b.job_id = ?", (job_id,)
            )
        ]

    def answered(self, keys: Iterable[str]) -> set[str]:
        """The keys among ``keys`` that already have an answer (paid for: never send again)."""
        if self.index_on_disk:
            wanted = list(keys)
            hit = np.isin(self.lookup(wanted) & 0xFF, _ANSWERED_CODES)
            return set(np.array(wanted, dtype=object)[hit].tolist()) if hit.any() else set()
        index = self.index()
        if not index:
            return set()
        return {k for k in keys if (e := index.get(k)) is not None and (e & 0xFF) in ANSWERED}

    # ------------------------------------------------------------------ the on-disk key index

    def sync_index(self) -> int:
        """Bring the summary of the stored keys up to date with every stored result — a partition
        job's, a pandas job's or another process's — and return its mark: the id of the last stored
        batch results it holds (it grows as results are stored; what :meth:`lookup` sees).

        Cheap: the keys of the results stored since the last call, read as bytes (about 0.1 µs a
        key). The on-disk index is filled only when a lookup needs it (:meth:`fill_index`).
        """
        with self._lock:
            self._after_removals()
            return self._sync_digests(self._conn)

    def _sync_digests(self, conn: sqlite3.Connection) -> int:
        added = []
        for results_id, n, keys_blob in conn.execute(
            "SELECT id, length(statuses), keys FROM batch_results WHERE id > ? ORDER BY id", (self._digests_upto,)
        ):
            added.append(digests_of_blob(keys_blob, n))
            self._digests_upto = results_id
        if added:
            self._digests.add(np.concatenate(added))
        return self._digests_upto

    def fill_index(self) -> int:
        """Bring the on-disk key index (``result_index``) up to date with every stored result.

        Results stored since its mark go in one transaction, a stored batch at a time (memory
        bounded by one batch). :meth:`lookup` does this when it finds a possible hit; a run whose
        answers are read back by key elsewhere (Dask workers, read-only) fills it once, at its end.
        A read-only store is left as it is (:meth:`lookup` reads what is not indexed yet from the
        results).

        Returns:
            The mark: the id of the last stored batch results the index holds.
        """
        with self._lock:
            upto = self._index_mark(self._conn)
            last = self._conn.execute("SELECT max(id) FROM batch_results").fetchone()[0] or 0
            if last <= upto or self.readonly:
                return upto
            with self._atomic() as conn:
                upto = self._index_mark(conn)  # again, under the write lock: another process may have synced
                for (results_id,) in conn.execute(
                    "SELECT id FROM batch_results WHERE id > ? ORDER BY id", (upto,)
                ).fetchall():
                    # In key order: SQLite then appends to a few pages instead of splitting pages
                    # all over the index (about 4x less CPU than in the results' order).
                    conn.executemany(_UPSERT, _in_key_order(*self._packed_results(conn, results_id)))
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

    def first_outcomes(self, results_id: int) -> tuple[list[str], np.ndarray]:
        """(keys, packed outcomes) of one stored batch's results, each as the index holds a key whose
        first result it is (a key with an earlier result holds both merged: :meth:`lookup` it)."""
        with self._lock:
            keys, packed, _ = self._packed_results(self._conn, results_id)
        return keys, np.array(packed, dtype=np.int64)

    def lookup(self, keys: Sequence[str]) -> np.ndarray:
        """Each key's best outcome, packed (see :func:`unpack`; 0: nothing stored): keys never stored
        are ruled out by the summary of stored keys, the others read from the on-disk index.

        >>> store.lookup(job.row_keys[:3])   # doctest: +SKIP
        array([...], dtype=int64)
        """
        found = self._disk_entries(keys)
        packed = dict(zip(found, map(itemgetter(0), found.values()), strict=True))
        return np.fromiter(map(packed.get, keys, repeat(0)), dtype=np.int64, count=len(keys))

    def _disk_entries(self, keys: Sequence[str]) -> dict[str, tuple[int, str | None]]:
        """key → (packed outcome, error type) of the keys among ``keys`` the store has a result for.

        The summary of the stored keys rules out, in bulk, every key never stored; only the
        possible hits are looked up on disk (the on-disk index filled first, if it lags)."""
        found: dict[str, tuple[int, str | None]] = {}
        if not len(keys):
            return found
        with self._lock:
            self._after_removals()
            conn = self._conn
            self._sync_digests(conn)
            maybe = self._digests.may_contain(digests_of(keys))
            if not maybe.any():
                return found  # none was ever stored: the on-disk index is not touched
            wanted = frozenset(keys) if maybe.all() else frozenset(keys[i] for i in np.flatnonzero(maybe).tolist())
            upto = self.fill_index()
            if len(wanted) >= _MEMO_MIN:
                memo = self._memo.get(wanted)
                if memo is not None:  # a partition's keys are asked for several times as it is planned
                    found = self._memo_update(conn, wanted, memo, upto)
                    return dict(found)
            found = self._indexed(conn, wanted)
            tail = self._tail_entries(conn, wanted, upto, found)
            if len(wanted) >= _MEMO_MIN and not tail:
                self._memo[wanted] = (upto, dict(found))
                while len(self._memo) > _MEMO_SLOTS:
                    self._memo.pop(next(iter(self._memo)))
        return found

    def _tail_entries(
        self, conn: sqlite3.Connection, wanted: frozenset[str], upto: int, found: dict[str, tuple[int, str | None]]
    ) -> bool:
        """Merge into ``found`` what results stored past the on-disk index's mark ``upto`` hold of
        ``wanted`` (a read-only store, or results stored by another process a moment ago); whether
        there were any. Only results holding a wanted key's digest are decoded."""
        tail = [r for (r,) in conn.execute("SELECT id FROM batch_results WHERE id > ? ORDER BY id", (upto,))]
        if not tail:
            return False
        wanted_digests = digests_of(list(wanted))
        for results_id in tail:
            keys_blob, n = conn.execute(
                "SELECT keys, length(statuses) FROM batch_results WHERE id = ?", (results_id,)
            ).fetchone()
            if not np.isin(digests_of_blob(keys_blob, n), wanted_digests).any():
                continue
            for key, packed, error_type in zip(*self._packed_results(conn, results_id), strict=True):
                if key in wanted:
                    old = found.get(key)
                    found[key] = (_merge(old[0] if old else None, packed), error_type or (old[1] if old else None))
        return True

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
                changed.update(wanted.intersection(self.result_keys(results_id)))
            if changed:
                found.update(self._indexed(conn, changed))
            self._memo[wanted] = (upto, found)
        return found

    def _add_answers(
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
            f" lost_keys) VALUES ({NEXT_ID.format(table='batches')}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                UnitState.COLLECTED,
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
        self._store_results(conn, group, model, columns)
        return group

    def lost_responses(self, job_id: str) -> list[str]:
        """Keys of ``job_id``'s realtime requests whose responses were lost on the way back, once
        per lost response (see :attr:`batchkit.core.results.ResultColumns.lost`)."""
        rows = self._rows("SELECT lost_keys FROM batches WHERE job_id = ? AND lost_keys IS NOT NULL", (job_id,))
        return [k for (blob,) in rows for k in decode_keys(blob) if k]

    def job_results_modes(self, job_id: str) -> list[tuple[int, str]]:
        """``(results id, mode)`` of every result set stored from ``job_id``'s own units: the
        mode (``batch``/``realtime``) each was paid at."""
        return self._rows(
            "SELECT r.id, b.mode FROM batch_results r JOIN batches b ON b.id = r.batch_id WHERE b.job_id = ?", (job_id,)
        )

    def results_modes(self, results_ids: Iterable[int]) -> dict[int, str]:
        """The mode (``batch``/``realtime``) each stored result set was paid at."""
        ids = list(results_ids)
        if not ids:
            return {}
        found: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            found.update(
                self._rows(
                    "SELECT r.id, b.mode FROM batch_results r JOIN batches b ON b.id = r.batch_id"
                    f" WHERE r.id IN ({','.join('?' * len(part))})",
                    part,
                )
            )
        return found
