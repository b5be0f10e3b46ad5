"""The SQLite job store: location, permissions, migrations, transactions, upserts."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from batchkit.errors import StoreError
from batchkit.store import Store, default_store_path

RECORD = ("k1", "succeeded", "yes", "end_turn", None, None, 10, 2, 0, 0, 0)


def test_default_location_follows_env_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("BATCHKIT_STORE", str(tmp_path / "x.db"))
    assert default_store_path() == tmp_path / "x.db"
    monkeypatch.delenv("BATCHKIT_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "batchkit" / "jobs.sqlite3"


def test_file_is_private_wal_and_migrated(tmp_path):
    path = tmp_path / "sub" / "jobs.sqlite3"
    s = Store(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert s.query("PRAGMA journal_mode")[0][0] == "wal"
    assert s.schema_version == 1
    tables = {r[0] for r in s.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "job_keys", "requests", "batches", "results"} <= tables
    s.close()
    assert Store(path).schema_version == 1  # reopening does not re-run migrations


def test_a_store_from_a_newer_batchkit_is_refused(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="newer batchkit"):
        Store(path)


def test_atomic_rolls_back_everything_on_error(store):
    with pytest.raises(RuntimeError):
        with store.atomic() as conn:
            store.add_requests(conn, [("k1", b"{}")])
            raise RuntimeError("boom")
    assert store.request_bodies(["k1"]) == {}


def test_results_upsert_never_replaces_a_success_and_counts_attempts(store):
    failed = ("k1", "errored", None, None, "api_error", "oops", 0, 0, 0, 0, 0)
    with store.atomic() as conn:
        store.store_results(conn, "msgbatch_a", "m", [failed])
    with store.atomic() as conn:  # the same batch read twice is not another attempt
        store.store_results(conn, "msgbatch_a", "m", [failed])
    assert store.query("SELECT status, attempts FROM results")[0] == ("errored", 1)
    with store.atomic() as conn:
        store.store_results(conn, "msgbatch_b", "m", [RECORD])
    assert store.query("SELECT status, attempts FROM results")[0] == ("succeeded", 2)
    with store.atomic() as conn:
        store.store_results(conn, "msgbatch_c", "m", [failed])
    assert store.query("SELECT status, answer FROM results")[0] == ("succeeded", "yes")
    assert store.answered(["k1", "k2"]) == {"k1"}


def test_in_flight_keys_cover_uncollected_batches_only(store):
    with store.atomic() as conn:
        store.insert_job(conn, job_id="j", fingerprint="f", model="m", kind="text", output="o",
                         spec={}, row_keys=["a", None, "b"], skipped={1: "missing"})
        first = store.add_batch(conn, job_id="j", keys=["a"], attempt=1, owner="me")
        store.add_batch(conn, job_id="j", keys=["b"], attempt=1, owner="me")
        store.update_batch_in(conn, first, state="collected")
        assert store.in_flight_keys(conn) == {"b"}
    job = store.load_job("j")
    assert job["row_keys"] == ["a", None, "b"] and job["skipped"] == {1: "missing"}
