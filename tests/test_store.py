"""The SQLite job store: location, permissions, migrations, transactions, upserts."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from batchkit import _json
from batchkit.errors import StoreError
from batchkit.store import Store, default_store_path


def test_default_location_follows_env_then_xdg_and_keeps_simulated_answers_apart(monkeypatch, tmp_path):
    monkeypatch.setenv("BATCHKIT_STORE", str(tmp_path / "x.db"))
    assert default_store_path() == tmp_path / "x.db"
    monkeypatch.delenv("BATCHKIT_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "batchkit" / "jobs.sqlite3"
    from batchkit.backend import forget_server_identities
    from batchkit.simulator import Simulator, serve

    with serve(Simulator()) as server:  # the server says what it is (tests/test_identity.py)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        assert default_store_path() == tmp_path / "xdg" / "batchkit" / "simulator.sqlite3"
    forget_server_identities()  # its port may serve something else later


def test_a_store_never_mixes_simulated_and_real_answers(store):
    store.claim_backend("simulator")
    store.claim_backend("simulator")
    with pytest.raises(StoreError, match="holds answers from the simulator.*store="):
        store.claim_backend("Anthropic API")


def test_file_is_private_wal_and_migrated(tmp_path):
    path = tmp_path / "sub" / "jobs.sqlite3"
    s = Store(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert s.query("PRAGMA journal_mode")[0][0] == "wal"
    assert s.schema_version == 2
    tables = {r[0] for r in s.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "batches", "batch_requests", "batch_results", "meta"} <= tables
    s.close()
    assert Store(path).schema_version == 2  # reopening does not re-run migrations


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
            store.insert_job(conn, job_id="j", fingerprint="f", model="m", kind="text", output="o",
                             spec={}, row_keys=["a"], skipped={})
            raise RuntimeError("boom")
    assert store.load_job("j") is None


def columns(key, status, batch_error=None):
    from batchkit.results import parse_results

    if status == "succeeded":
        result = {"type": "succeeded", "message": {"content": [{"type": "text", "text": "yes"}],
                                                   "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}}}
    else:
        result = {"type": "errored", "error": {"type": "error", "error": {"type": "api_error", "message": "oops"}}}
    return parse_results([_json.dumps({"custom_id": key, "result": result})])


def add_batch(store, conn, keys):
    return store.add_batch(conn, job_id="j", keys=keys, body=b"{}", attempt=1, owner="me")


def test_the_index_keeps_an_answer_over_later_failures_and_counts_attempts(store):
    with store.atomic() as conn:
        store.insert_job(conn, job_id="j", fingerprint="f", model="m", kind="text", output="o",
                         spec={}, row_keys=["k1"], skipped={})
        b1, b2, b3 = (add_batch(store, conn, ["k1"]) for _ in range(3))
        store.store_results(conn, b1, "m", columns("k1", "errored"))
        store.store_results(conn, b1, "m", columns("k1", "errored"))  # the same batch twice: ignored
    entry = store.entry("k1")
    assert (entry.code, entry.attempts, entry.error_type) == (ord("e"), 1, "api_error")
    with store.atomic() as conn:
        store.store_results(conn, b2, "m", columns("k1", "succeeded"))
    assert store.entry("k1").attempts == 2 and store.answered(["k1", "k2"]) == {"k1"}
    with store.atomic() as conn:
        store.store_results(conn, b3, "m", columns("k1", "errored"))
    entry = store.entry("k1")
    assert entry.code == ord("s") and entry.attempts == 3
    assert store.columns(entry.results_id).answers[entry.pos] == "yes"
    # A second process sees the same, from the file.
    other = Store(store.path)
    assert other.entry("k1") == entry
    other.close()


def test_request_bodies_are_read_back_from_the_batches_that_carried_them(store):
    body = b'{"requests":[{"custom_id":"a","params":{"x":1,"a":2}},{"custom_id":"b","params":{"y":2}}]}'
    with store.atomic() as conn:
        store.insert_job(conn, job_id="j", fingerprint="f", model="m", kind="text", output="o",
                         spec={}, row_keys=["a", "b"], skipped={})
        store.add_batch(conn, job_id="j", keys=["a", "b"], body=body, attempt=1, owner="me")
    assert store.request_bodies(["b", "a", "zz"]) == {"a": b'{"a":2,"x":1}', "b": b'{"y":2}'}


def test_in_flight_keys_cover_uncollected_batches_only(store):
    with store.atomic() as conn:
        store.insert_job(conn, job_id="j", fingerprint="f", model="m", kind="text", output="o",
                         spec={}, row_keys=["a", None, "b"], skipped={1: "missing"})
        first = add_batch(store, conn, ["a"])
        add_batch(store, conn, ["b"])
        store.update_batch_in(conn, first, state="collected")
        assert store.in_flight_keys(conn) == {"b"}
    job = store.load_job("j")
    assert job["row_keys"] == ["a", None, "b"] and job["skipped"] == {1: "missing"}
