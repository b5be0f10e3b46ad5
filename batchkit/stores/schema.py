"""The job store's schema, as the history of its migrations, and how a list of keys is kept.

Migration ``n`` takes a store from schema ``n - 1`` to ``n``: SQL, or a step SQL cannot express,
run in the same transaction (:meth:`batchkit.stores.store.Store._migrate`). Steps are only ever added.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from collections.abc import Callable
from typing import Any

from batchkit.core import _json
from batchkit.core.keys import decode_keys, encode_keys, fingerprint, params_key, unmarked_params
from batchkit.core.states import AWAITING_RESULTS

__all__ = ["ACTIVE_STATES", "MIGRATIONS", "decode_keys", "encode_keys"]

ACTIVE_STATES = tuple(AWAITING_RESULTS)  # SQL parameters: the units awaiting results


def _unmarked_keys(conn: sqlite3.Connection) -> None:
    """4 — request keys leave out cache breakpoints and their TTL (:func:`batchkit.core.keys.params_key`).

    A request that carried ``cache_control`` markers was keyed by its body as sent; it is now
    keyed by its params without them, so the same question asked with ``cache=False`` or another
    ``cache_ttl`` finds its answer. Every stored body with markers gives its old key's new key
    (:func:`_new_keys`), and the keys move everywhere the store keeps them: results
    (``batch_results.keys``), units (``batch_requests.keys`` and the ``custom_id`` inside their
    bodies), jobs (``row_keys`` and the fingerprint a re-run looks its job up by). A unit
    already created with the API carries the old custom ids, so its results come back under
    old keys: those keys are kept in ``key_aliases`` and mapped when its results are stored.
    """

    conn.execute("CREATE TABLE key_aliases (old TEXT PRIMARY KEY, new TEXT NOT NULL)")
    new_of: dict[str, str] = {}
    units = [r[0] for r in conn.execute("SELECT batch_id FROM batch_requests ORDER BY batch_id")]
    for batch_id in units:
        (body,) = conn.execute("SELECT body FROM batch_requests WHERE batch_id = ?", (batch_id,)).fetchone()
        if b'"cache_control"' in body:
            new_of.update(_new_keys(bytes(body)))
    if not new_of:
        return
    active = {
        r[0]
        for r in conn.execute(
            f"SELECT id FROM batches WHERE state IN ({','.join('?' * len(AWAITING_RESULTS))})", tuple(AWAITING_RESULTS)
        )
    }
    custom_id = re.compile(rb'"custom_id":"([0-9a-f]{32})"')

    def renamed(m: re.Match[bytes]) -> bytes:
        new = new_of.get(m.group(1).decode())
        return m.group(0) if new is None else b'"custom_id":"%s"' % new.encode()

    for batch_id in units:
        (blob,) = conn.execute("SELECT keys FROM batch_requests WHERE batch_id = ?", (batch_id,)).fetchone()
        keys = decode_keys(blob)
        moved = [(k, new_of[k]) for k in keys if k in new_of]
        if not moved:
            continue
        (body,) = conn.execute("SELECT body FROM batch_requests WHERE batch_id = ?", (batch_id,)).fetchone()
        conn.execute(
            "UPDATE batch_requests SET keys = ?, body = ? WHERE batch_id = ?",
            (encode_keys([new_of.get(k, k) if k else k for k in keys]), custom_id.sub(renamed, bytes(body)), batch_id),
        )
        if batch_id in active:  # sent (or maybe sent) under the old custom_ids
            conn.executemany("INSERT OR REPLACE INTO key_aliases VALUES (?, ?)", moved)
    _rekey_results_and_jobs(conn, new_of)


def _rekey_results_and_jobs(conn: sqlite3.Connection, new_of: dict[str, str]) -> None:
    """Migration 4, continued: move the keys in stored results and in jobs (with their fingerprints)."""
    for results_id, blob in conn.execute("SELECT id, keys FROM batch_results").fetchall():
        answered = bytes(blob).decode().split("\n")
        if not new_of.keys().isdisjoint(answered):
            conn.execute(
                "UPDATE batch_results SET keys = ? WHERE id = ?",
                ("\n".join(new_of.get(k, k) for k in answered).encode(), results_id),
            )
    taken = {r[0] for r in conn.execute("SELECT fingerprint FROM jobs")}
    for job_id, kind, output, n_rows, blob in conn.execute(
        "SELECT job_id, kind, output, n_rows, row_keys FROM jobs ORDER BY created_at"
    ).fetchall():
        keys = decode_keys(blob, n_rows)
        if new_of.keys().isdisjoint(keys):
            continue
        row_keys = [new_of.get(k, k) if k else k for k in keys]
        fp = fingerprint(kind, output, row_keys)
        # Two jobs of the same call (cached and not) now render the same keys: the first keeps
        # the fingerprint a re-run finds; the other keeps its own and still loads by id.
        if fp in taken:
            conn.execute("UPDATE jobs SET row_keys = ? WHERE job_id = ?", (encode_keys(row_keys), job_id))
        else:
            taken.add(fp)
            conn.execute(
                "UPDATE jobs SET row_keys = ?, fingerprint = ? WHERE job_id = ?", (encode_keys(row_keys), fp, job_id)
            )


def _new_keys(body: bytes) -> dict[str, str]:
    """Old key → new key of each request of a unit's body that carried cache markers."""
    try:
        items = _json.loads(body)["requests"]
    except (_json.DecodeError, KeyError, TypeError, UnicodeDecodeError):
        return {}  # a body never fully written (a crash mid-stream): nothing was sent from it
    out: dict[str, str] = {}
    for item in items:
        params = item.get("params") if isinstance(item, dict) else None
        old = item.get("custom_id") if isinstance(item, dict) else None
        if not isinstance(params, dict) or not isinstance(old, str) or unmarked_params(params) is None:
            continue
        new = params_key(_keyed_media(params))
        if new != old:
            out[old] = new
    return out


def _keyed_media(params: dict[str, Any]) -> dict[str, Any]:
    """The params with each base64 image or PDF standing in by its digest, as such rows are keyed."""
    messages = params.get("messages")
    if not isinstance(messages, list):
        return params
    out = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            blocks = []
            for block in content:
                source = block.get("source") if isinstance(block, dict) else None
                if isinstance(source, dict) and source.get("type") == "base64" and isinstance(source.get("data"), str):
                    digest = hashlib.blake2b(base64.b64decode(source["data"]), digest_size=16).hexdigest()
                    block = {**block, "source": {**source, "data": f"blake2b:{digest}"}}
                blocks.append(block)
            message = {**message, "content": blocks}
        out.append(message)
    return {**params, "messages": out}


def _leases_and_lost_keys(conn: sqlite3.Connection) -> None:
    """Migration 6's columns, each added unless it is there (a store whose recorded version was
    set back by hand, e.g. to replay an older release's upgrade, has them already)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(batches)")}
    for name, kind in (("lease_until", "TEXT"), ("lost_keys", "BLOB")):
        if name not in have:
            conn.execute(f"ALTER TABLE batches ADD COLUMN {name} {kind}")


def _unit_betas(conn: sqlite3.Connection) -> None:
    """Migration 7's column, added unless it is there (as :func:`_leases_and_lost_keys`)."""
    if "betas" not in {row[1] for row in conn.execute("PRAGMA table_info(batches)")}:
        conn.execute("ALTER TABLE batches ADD COLUMN betas TEXT")


MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
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
    # 3 — how each unit's requests went (its answers are paid at that mode's price), and the
    # mode a job runs in with the reason it was chosen. Every unit before this was a batch.
    """
    ALTER TABLE batches ADD COLUMN mode TEXT NOT NULL DEFAULT 'batch';
    ALTER TABLE jobs ADD COLUMN mode TEXT NOT NULL DEFAULT 'batch';
    ALTER TABLE jobs ADD COLUMN mode_reason TEXT
    """,
    # 4 — request keys leave out cache breakpoints and their TTL: a Python step.
    _unmarked_keys,
    # 5 — partitioned runs (:mod:`batchkit.engine.runs`): a run and the job of each of its partitions, and
    # the on-disk key index their jobs look keys up in (bounded memory; see :meth:`Store.lookup`),
    # filled lazily from ``batch_results`` past the ``result_index_upto`` mark in ``meta``.
    """
    CREATE TABLE IF NOT EXISTS runs (
        run_id      TEXT PRIMARY KEY,
        source      TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        status      TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS run_parts (
        run_id  TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        part    INTEGER NOT NULL,
        job_id  TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        n_rows  INTEGER NOT NULL,
        PRIMARY KEY (run_id, part)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS result_index (
        key         TEXT PRIMARY KEY,
        packed      INTEGER NOT NULL,
        error_type  TEXT
    ) WITHOUT ROWID
    """,
    # 6 — ownership leases (:mod:`batchkit.stores.leases`): until when a unit's owner holds it (a unit
    # planned before has none; its owner is judged by its process id, as before). And, on a
    # group of realtime answers, the keys whose responses were lost on the way back (each may
    # have been paid twice: see :attr:`batchkit.costs.accounting.JobCost.lost_responses`).
    _leases_and_lost_keys,
    # 7 — the ``anthropic-beta`` values a unit is sent with, decided when it is planned
    # (:func:`batchkit.core.models.unit_betas`), comma-joined ('' = none). NULL on a unit planned
    # before: its backend derives them from the body, as it did then.
    _unit_betas,
)
