"""The SQLite job store: location, permissions, migrations, transactions, upserts."""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import batchkit
from batchkit.core import _json
from batchkit.engine.locations import default_store_path
from batchkit.errors import NotAStoreError, OutputPathError, StoreError, StoreReadOnlyError
from batchkit.stores.schema import MIGRATIONS as _MIGRATIONS
from batchkit.stores.store import Store
from batchkit.stores.storefile import APPLICATION_ID

ROOT = Path(__file__).resolve().parent.parent


def test_default_location_follows_env_then_xdg_and_keeps_simulated_answers_apart(monkeypatch, tmp_path):
    monkeypatch.setenv("BATCHKIT_STORE", str(tmp_path / "x.db"))
    assert default_store_path() == tmp_path / "x.db"
    monkeypatch.delenv("BATCHKIT_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "batchkit" / "jobs.sqlite3"
    from batchkit.backends.clients import forget_server_identities
    from batchkit.simulator import Simulator, serve

    with serve(Simulator()) as server:  # the server says what it is (tests/test_identity.py)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        assert default_store_path() == tmp_path / "xdg" / "batchkit" / "simulator.sqlite3"
        unnamed = Store()  # no path: the same default, though the store itself asks no server
        assert unnamed.path == tmp_path / "xdg" / "batchkit" / "simulator.sqlite3"
        unnamed.close()
    forget_server_identities()  # its port may serve something else later


def test_a_store_never_mixes_simulated_and_real_answers(store):
    store.claim_backend("simulator")
    store.claim_backend("simulator")
    with pytest.raises(StoreError, match=r"holds answers from the simulator.*store="):
        store.claim_backend("Anthropic API")


def test_file_is_private_wal_and_migrated(tmp_path):
    path = tmp_path / "sub" / "jobs.sqlite3"
    s = Store(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert s.query("PRAGMA journal_mode")[0][0] == "wal"
    assert s.schema_version == len(_MIGRATIONS)
    tables = {r[0] for r in s.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "batches", "batch_requests", "batch_results", "meta", "key_aliases"} <= tables
    s.close()
    assert Store(path).schema_version == len(_MIGRATIONS)  # reopening does not re-run migrations


def test_a_store_from_a_newer_batchkit_is_refused(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="newer batchkit"):
        Store(path)


def test_a_transaction_rolls_back_everything_on_error(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.insert_job(
            job_id="j", fingerprint="f", model="m", kind="text", output="o", spec={}, row_keys=["a"], skipped={}
        )
        raise RuntimeError("boom")
    assert store.load_job("j") is None


def columns(key, status, batch_error=None):
    from batchkit.core.results import parse_results

    if status == "succeeded":
        result = {
            "type": "succeeded",
            "message": {
                "content": [{"type": "text", "text": "yes"}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 1, "output_tokens": 1},
            },
        }
    else:
        result = {"type": "errored", "error": {"type": "error", "error": {"type": "api_error", "message": "oops"}}}
    return parse_results([_json.dumps({"custom_id": key, "result": result})])


def add_batch(tx, keys):
    return tx.add_unit(job_id="j", keys=keys, body=b"{}", attempt=1, owner="me")


def test_the_index_keeps_an_answer_over_later_failures_and_counts_attempts(store):
    with store.transaction() as tx:
        tx.insert_job(
            job_id="j", fingerprint="f", model="m", kind="text", output="o", spec={}, row_keys=["k1"], skipped={}
        )
        b1, b2, b3 = (add_batch(tx, ["k1"]) for _ in range(3))
        tx.put_results(b1, "m", columns("k1", "errored"))
        tx.put_results(b1, "m", columns("k1", "errored"))  # the same batch twice: ignored
    entry = store.entry("k1")
    assert (entry.code, entry.attempts, entry.error_type) == (ord("e"), 1, "api_error")
    with store.transaction() as tx:
        tx.put_results(b2, "m", columns("k1", "succeeded"))
    assert store.entry("k1").attempts == 2 and store.answered(["k1", "k2"]) == {"k1"}
    with store.transaction() as tx:
        tx.put_results(b3, "m", columns("k1", "errored"))
    entry = store.entry("k1")
    assert entry.code == ord("s") and entry.attempts == 3
    assert store.columns(entry.results_id).answers[entry.pos] == "yes"
    # A second process sees the same, from the file.
    other = Store(store.path)
    assert other.entry("k1") == entry
    other.close()


def test_reading_a_jobs_batches_in_order_decodes_only_those_not_kept(store, monkeypatch):
    """A job of more batches than are kept decoded reads each of the others from disk once per
    pass, and the kept ones not at all (reading back used to push out the batches read next)."""
    from batchkit.core.results import ResultColumns

    keys = [f"k{i}" for i in range(12)]
    with store.transaction() as tx:
        tx.insert_job(
            job_id="j", fingerprint="f", model="m", kind="text", output="o", spec={}, row_keys=keys, skipped={}
        )
        for key in keys:
            tx.put_results(add_batch(tx, [key]), "m", columns(key, "succeeded"))
    ids = sorted(store.entry(k).results_id for k in keys)
    decoded = []
    real = ResultColumns.from_blobs.__func__
    monkeypatch.setattr(
        ResultColumns, "from_blobs", classmethod(lambda cls, *blobs: decoded.append(1) or real(cls, *blobs))
    )
    for _ in range(2):  # e.g. the frame, then the outcomes
        assert [store.columns(i).keys for i in ids] == [[k] for k in keys]
    assert len(decoded) == 2 * (len(keys) - 8)


def test_request_bodies_are_read_back_from_the_batches_that_carried_them(store):
    body = b'{"requests":[{"custom_id":"a","params":{"x":1,"a":2}},{"custom_id":"b","params":{"y":2}}]}'
    with store.transaction() as tx:
        tx.insert_job(
            job_id="j",
            fingerprint="f",
            model="m",
            kind="text",
            output="o",
            spec={},
            row_keys=["a", "b"],
            skipped={},
        )
        tx.add_unit(job_id="j", keys=["a", "b"], body=body, attempt=1, owner="me")
    assert store.request_bodies(["b", "a", "zz"]) == {"a": b'{"a":2,"x":1}', "b": b'{"y":2}'}


def test_in_flight_keys_cover_uncollected_batches_only(store):
    with store.transaction() as tx:
        tx.insert_job(
            job_id="j",
            fingerprint="f",
            model="m",
            kind="text",
            output="o",
            spec={},
            row_keys=["a", None, "b"],
            skipped={1: "missing"},
        )
        first = add_batch(tx, ["a"])
        add_batch(tx, ["b"])
        tx.update_batch(first, state="collected")
        assert tx.in_flight_keys() == {"b"}
    job = store.load_job("j")
    assert job["row_keys"] == ["a", None, "b"] and job["skipped"] == {1: "missing"}


# --------------------------------------------------------------------------- whose file it is


def add_job(store, job_id="j"):
    with store.transaction() as tx:
        tx.insert_job(
            job_id=job_id,
            fingerprint="f" + job_id,
            model="m",
            kind="text",
            output="o",
            spec={},
            row_keys=["k"],
            skipped={},
        )


def unrelated_database(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers VALUES (1, 'Ada')")
    conn.commit()
    conn.close()


def test_a_database_that_is_not_a_store_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "crm.sqlite3"
    unrelated_database(path)
    before = path.read_bytes()
    with pytest.raises(NotAStoreError, match=r"not a batchkit job store \(an SQLite database with tables customers\)"):
        Store(path)
    assert path.read_bytes() == before  # no tables added, no mark, no WAL switch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.sqlite3"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["customers"]
    conn.close()


def test_another_applications_database_and_a_non_database_are_refused(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA application_id = 1234")
    conn.close()
    with pytest.raises(NotAStoreError, match="another application, application_id 0x4d2"):
        Store(other)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database at all\n" * 20)
    with pytest.raises(NotAStoreError, match="not an SQLite database"):
        Store(notes)
    assert notes.read_text() == "not a database at all\n" * 20


def test_a_store_is_marked_and_a_store_from_before_the_mark_opens_and_gets_marked(tmp_path):
    new = Store(tmp_path / "new.sqlite3")
    assert new.query("PRAGMA application_id")[0][0] == APPLICATION_ID
    new.close()
    # A store as the last release wrote it: its schema, no application_id, its data still in the WAL.
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for number, script in enumerate(_MIGRATIONS[:2], start=1):
        conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute(
        "INSERT INTO jobs VALUES ('job_old', 'fp', '2025-01-01T00:00:00Z', 'm', 'text', 'o', '{}', 1,"
        " X'6b', '{}', 'ended')"
    )
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0
    old = Store(path)
    assert old.query("PRAGMA application_id")[0][0] == APPLICATION_ID
    assert old.load_job("job_old")["status"] == "ended"
    assert old.schema_version == len(_MIGRATIONS)
    old.close()
    conn.close()


def test_an_existing_store_is_tightened_to_its_owner(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    s = Store(path)
    add_job(s)
    s.close()
    os.chmod(path, 0o644)
    s = Store(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or stat.S_IMODE(os.stat(wal).st_mode) == 0o600
    s.close()


# --------------------------------------------------------------------------- the main file holds everything


def test_close_leaves_everything_in_the_main_file(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    s = Store(path)
    reader = Store(path, readonly=True)  # another connection keeps SQLite from cleaning up by itself
    add_job(s)
    s.close()
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(path.read_bytes())  # the main file alone, as `cp jobs.sqlite3` would take it
    assert Store(copy).load_job("j") is not None
    reader.close()


def test_a_normal_exit_leaves_everything_in_the_main_file(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    script = (
        "import sys; from batchkit.stores.store import Store\n"
        "s = Store(sys.argv[1])\n"
        "with s.transaction() as tx:\n"
        "    tx.insert_job(job_id='j', fingerprint='f', model='m', kind='text', output='o', spec={},"
        " row_keys=['k'], skipped={})\n"
        "s._keep_alive = s  # no close(): the script just ends\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(path.read_bytes())
    conn = sqlite3.connect(copy)
    assert conn.execute("SELECT job_id FROM jobs").fetchall() == [("j",)]
    conn.close()


def test_backup_is_one_consistent_file_and_refuses_to_clobber(store, tmp_path):
    add_job(store)
    dest = store.backup(tmp_path / "backup.sqlite3")
    assert dest == tmp_path / "backup.sqlite3"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert not dest.with_name(dest.name + "-wal").exists()
    assert Store(dest).load_job("j") is not None
    with pytest.raises(OutputPathError, match="already exists"):
        store.backup(dest)
    with pytest.raises(OutputPathError, match="is the job store itself"):
        store.backup(store.path, overwrite=True)
    assert Store(store.path, readonly=True).backup(tmp_path / "from-ro.sqlite3").exists()


def test_backup_while_a_write_is_in_progress_copies_what_was_committed(store, tmp_path):
    add_job(store, "done")
    with store.transaction() as tx:  # a worker in the middle of storing results
        tx.insert_job(
            job_id="half",
            fingerprint="fh",
            model="m",
            kind="text",
            output="o",
            spec={},
            row_keys=["k"],
            skipped={},
        )
        dest = store.backup(tmp_path / "during.sqlite3")  # neither waits for it nor copies half of it
    copy = Store(dest)
    assert copy.load_job("done") is not None and copy.load_job("half") is None
    assert store.load_job("half") is not None


def test_backup_over_a_copy_with_a_stale_wal_beside_it_is_the_new_copy_whole(store, tmp_path):
    # A backup that was once opened as a store, by a process that died: its -wal is left beside it.
    add_job(store, "old")
    dest = store.backup(tmp_path / "backup.sqlite3")
    wal, shm = dest.with_name(dest.name + "-wal"), dest.with_name(dest.name + "-shm")
    conn = sqlite3.connect(dest, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("DELETE FROM jobs")
    conn.execute("CREATE TABLE stale_scribbles (x BLOB)")
    conn.execute("INSERT INTO stale_scribbles VALUES (zeroblob(500000))")
    left = wal.read_bytes(), shm.read_bytes()
    conn.close()  # checkpoints; the copies of -wal and -shm above stand for the dead process's
    wal.write_bytes(left[0])
    shm.write_bytes(left[1])
    add_job(store, "new")
    assert store.backup(dest, overwrite=True) == dest
    assert not wal.exists() and not shm.exists()
    check = sqlite3.connect(dest)
    assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert sorted(r[0] for r in check.execute("SELECT job_id FROM jobs")) == ["new", "old"]
    assert not check.execute("SELECT 1 FROM sqlite_master WHERE name = 'stale_scribbles'").fetchall()
    check.close()


# --------------------------------------------------------------------------- forgetting jobs


def _rows(store_path):
    conn = sqlite3.connect(store_path)
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("jobs", "batches", "batch_requests", "batch_results", "runs", "run_parts")
        }
    finally:
        conn.close()


def test_forget_removes_a_job_and_all_it_holds_and_the_file_shrinks(tmp_path):
    from tests.conftest import make_sim

    sim = make_sim()
    path = tmp_path / "jobs.sqlite3"
    big = pd.DataFrame({"t": [f"row {i} " + "words " * 400 for i in range(200)]})
    old = big.claude.submit("Say {t}", store=str(path), client=sim.client(), poll_interval=0.01).wait()
    keep = (
        pd.DataFrame({"t": ["x", "y"]})
        .claude.submit("Say {t}", store=str(path), client=sim.client(), poll_interval=0.01)
        .wait()
    )
    store = Store.resolve(path)
    store.open_run("run1", "src")
    store.add_run_part("run1", 0, old.job_id, 200)
    store.checkpoint()
    size = path.stat().st_size

    removed = store.forget(old.job_id)

    assert removed.jobs == (old.job_id,) and removed.results == 200 and removed.kept == {}
    assert removed.runs == ("run1",) and removed.bytes_freed > 400_000
    assert path.stat().st_size < size - 400_000  # the file itself, not only its free pages
    assert _rows(path) == {"jobs": 1, "batches": 1, "batch_requests": 1, "batch_results": 1, "runs": 0, "run_parts": 0}
    assert f"removed 1 job ({old.job_id})" in str(removed) and "MB freed" in str(removed)
    assert store.load_job(old.job_id) is None
    assert batchkit.jobs(path)["job_id"].tolist() == [keep.job_id]
    assert batchkit.Job.load(keep.job_id, store=path).to_frame()["response"].tolist() == ["re:Say x", "re:Say y"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    # Its answers are gone too: the same call is a new job, sent again.
    created = sim.stats()["batches_created"]
    again = big.claude.submit("Say {t}", store=str(path), client=sim.client(), poll_interval=0.01).wait()
    assert sim.stats()["batches_created"] == created + 1
    assert again.outcomes()["status"].tolist() == ["succeeded"] * 200 and again.cost.requests_paid == 200


def test_forget_keeps_the_answers_a_remaining_job_uses(tmp_path):
    from tests.conftest import make_sim

    sim = make_sim()
    path = tmp_path / "jobs.sqlite3"
    first = (
        pd.DataFrame({"t": ["a", "b", "c"]})
        .claude.submit("Say {t}", store=str(path), client=sim.client(), poll_interval=0.01)
        .wait()
    )
    second = (
        pd.DataFrame({"t": ["b", "c", "d"]})
        .claude.submit("Say {t}", store=str(path), client=sim.client(), poll_interval=0.01)
        .wait()
    )  # sends only d
    store = Store.resolve(path)
    store.index_on_disk = True
    store.fill_index()  # the on-disk index points into the first job's results too

    removed = store.forget(first.job_id)

    assert removed.kept == {second.job_id: 2} and removed.adopted == {second.job_id: 1}
    assert "the stored results of 2 requests that job" in str(removed)
    answers = batchkit.Job.load(second.job_id, store=path)
    assert answers.to_frame()["response"].tolist() == ["re:Say b", "re:Say c", "re:Say d"]
    assert answers.outcomes()["status"].tolist() == ["succeeded"] * 3
    fresh = Store(path)
    fresh.index_on_disk = True
    entries = [fresh.entry(k) for k in answers.row_keys]
    assert [fresh.columns(e.results_id).answers[e.pos] for e in entries] == ["re:Say b", "re:Say c", "re:Say d"]
    fresh.close()
    # Forgetting the job that holds them now takes them.
    assert batchkit.forget(second.job_id, store=path).results == 4
    assert _rows(path)["batch_results"] == 0


def test_ids_of_forgotten_units_and_results_are_never_given_out_again(tmp_path):
    from tests.conftest import make_sim

    sim = make_sim()
    path = tmp_path / "jobs.sqlite3"
    newest = (
        pd.DataFrame({"t": ["a", "b"]})
        .claude.submit("Say {t}", store=str(path), client=sim.client(), poll_interval=0.01)
        .wait()
    )
    store = Store.resolve(path)
    top_unit = max(store.query("SELECT id FROM batches"))[0]
    top_results = max(store.query("SELECT id FROM batch_results"))[0]
    store.forget(newest.job_id)  # the newest units and results go: SQLite alone would reuse their ids
    again = (
        pd.DataFrame({"t": ["c"]})
        .claude.submit("Say {t}", store=str(path), client=sim.client(), poll_interval=0.01)
        .wait()
    )
    assert min(b for (b,) in store.query("SELECT id FROM batches WHERE job_id = ?", (again.job_id,))) > top_unit
    assert min(r for (r,) in store.query("SELECT id FROM batch_results")) > top_results
    assert again.to_frame()["response"].tolist() == ["re:Say c"]


def test_a_process_that_looked_the_answers_up_before_does_not_use_forgotten_ones(tmp_path):
    from tests.conftest import make_sim

    sim = make_sim()
    path = tmp_path / "jobs.sqlite3"
    rows = pd.DataFrame({"t": ["a", "b"]})
    job = rows.claude.submit("Say {t}", store=str(path), client=sim.client(), poll_interval=0.01).wait()
    kernel = Store.resolve(path)  # a notebook's store, its index holding the job's answers
    assert kernel.answered(job.row_keys) == set(job.row_keys)
    terminal = Store(path)  # `batchkit forget JOB` from another process
    terminal.forget(job.job_id)
    terminal.close()
    assert kernel.answered(job.row_keys) == set()
    again = (
        pd.DataFrame({"t": ["b", "a"]})
        .claude.submit("Say {t}", store=str(path), client=sim.client(), poll_interval=0.01)
        .wait()
    )
    assert sim.stats()["batches_created"] == 2  # sent again (its results reuse the forgotten ones' ids)
    assert again.to_frame()["response"].tolist() == ["re:Say b", "re:Say a"]


def test_a_running_job_sees_its_answers_after_a_newer_job_is_forgotten(tmp_path):
    from batchkit.simulator import Processing
    from tests.conftest import make_sim

    slow = make_sim(processing=Processing(fixed_latency=3600, per_request=0.0))  # ends when its clock is advanced
    path = tmp_path / "jobs.sqlite3"
    running = pd.DataFrame({"t": ["a", "b"]}).claude.submit(
        "Say {t}", store=str(path), client=slow.client(), poll_interval=0.01
    )
    newest = (
        pd.DataFrame({"t": ["c"]})
        .claude.submit("Say {t}", store=str(path), client=make_sim().client(), poll_interval=0.01)
        .wait()
    )
    assert running.outcomes()["status"].tolist() == ["pending"] * 2  # seen after the newest job's answers
    terminal = Store(path)  # `batchkit forget` in a terminal
    terminal.forget(newest.job_id)
    terminal.close()
    slow.advance(3600)
    running.wait(timeout=60)  # its answers take the forgotten results' id: this process's index lets go first
    assert running.to_frame()["response"].tolist() == ["re:Say a", "re:Say b"]


def _in_flight(store, job_id):
    with store.transaction() as tx:
        tx.insert_job(
            job_id=job_id,
            fingerprint="f" + job_id,
            model="m",
            kind="text",
            output="o",
            spec={},
            row_keys=["k1", "k2"],
            skipped={},
        )
        sent = tx.add_unit(job_id=job_id, keys=["k1"], body=b"{}", attempt=1, owner="me")
        tx.update_batch(sent, state="in_progress", api_id=f"msgbatch_{job_id}")
        tx.add_unit(job_id=job_id, keys=["k2"], body=b"{}", attempt=1, owner="me")


def test_a_job_in_flight_is_refused_unless_forced(store):
    _in_flight(store, "busy")
    with store.transaction() as tx:
        rt = tx.add_unit(job_id="busy", keys=["k3"], body=b"{}", attempt=1, owner="me", mode="realtime")
        tx.update_batch(rt, state="in_progress")
    with pytest.raises(batchkit.JobStateError) as caught:
        store.forget("busy")
    message = str(caught.value)
    assert "job busy has 3 batches still in flight" in message and "msgbatch_busy in_progress" in message
    assert "submitting (not created yet)" in message and f"realtime unit {rt} in_progress" in message
    assert "nothing was removed" in message
    assert "--force" in message and "keep running at the API" in message and "no longer collected" in message
    assert store.load_job("busy") is not None and len(store.batches(job_id="busy")) == 3
    removed = store.forget("busy", force=True)
    assert removed.jobs == ("busy",) and removed.abandoned[0] == "msgbatch_busy"
    assert "gave up on 3 units still in flight" in str(removed) and "no longer collected" in str(removed)
    assert store.load_job("busy") is None and store.batches() == []


def test_prune_removes_jobs_older_than_the_age_and_dry_run_only_says_so(store):
    for job_id, days in (("ancient", 40), ("old", 31), ("recent", 2)):
        add_job(store, job_id)
        with store._atomic() as conn:
            created = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat(timespec="microseconds")
            conn.execute("UPDATE jobs SET created_at = ? WHERE job_id = ?", (created.replace("+00:00", "Z"), job_id))
    _in_flight(store, "stuck")
    with store._atomic() as conn:
        conn.execute("UPDATE jobs SET created_at = '2020-01-01T00:00:00.000000Z' WHERE job_id = 'stuck'")
    preview = store.prune(older_than="30d", dry_run=True)
    assert preview.dry_run and preview.jobs == ("stuck", "ancient", "old") and preview.in_flight == ("stuck",)
    assert "would remove 3 jobs" in str(preview) and "needs --force: stuck" in str(preview)
    assert len(store.job_rows()) == 4
    with pytest.raises(batchkit.JobStateError, match="job stuck has 2 batches still in flight"):
        store.prune(older_than="30d")
    assert len(store.job_rows()) == 4  # all or nothing
    assert store.prune(older_than=dt.timedelta(days=30), force=True).jobs == ("stuck", "ancient", "old")
    assert [r[0] for r in store.job_rows()] == ["recent"]
    assert store.prune(older_than="12h").jobs == ("recent",)
    assert str(store.prune(older_than="90m")) == "no job to remove: the store is unchanged"


@pytest.mark.parametrize("age", ["30", "30x", "d", "-1d", "0d", "1e400d", ""])
def test_prune_refuses_an_age_that_is_no_duration(store, age):
    add_job(store)
    with pytest.raises(batchkit.InvalidOptionError, match="such as 30d, 12h or 90m"):
        store.prune(older_than=age)
    with pytest.raises(batchkit.OptionTypeError):
        store.prune(older_than=30)  # type: ignore[arg-type]
    assert store.load_job("j") is not None


# --------------------------------------------------------------------------- disks that say no


def test_a_full_disk_says_so_and_keeps_nothing_half_written(store):
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count = {pages}")  # the file cannot grow: SQLite's SQLITE_FULL path
    with pytest.raises(StoreError, match="the disk is full") as caught, store.transaction() as tx:
        tx.insert_job(
            job_id="big",
            fingerprint="fb",
            model="m",
            kind="text",
            output="o",
            spec={},
            row_keys=["x" * 100_000] * 20,
            skipped={},
        )
    assert "cannot rollback" not in str(caught.value) and "batchkit backup" in str(caught.value)
    assert store.load_job("big") is None
    store.query("PRAGMA max_page_count = 1073741823")
    add_job(store)  # the store still works once there is room
    assert store.load_job("j") is not None


def test_a_read_only_store_reads_and_refuses_writes_clearly(tmp_path):
    import pandas as pd

    from tests.conftest import make_sim

    path = tmp_path / "jobs.sqlite3"
    pd.DataFrame({"t": ["a", "b"]}).claude.batch("{t}", store=path, client=make_sim().client(), poll_interval=0.01)
    ro = Store(path, readonly=True)
    listing = batchkit.jobs(ro)
    assert listing["status"].tolist() == ["ended"]
    job = batchkit.Job.load(listing["job_id"][0], store=ro)
    assert job.outcomes()["status"].tolist() == ["succeeded", "succeeded"]
    with pytest.raises(
        StoreReadOnlyError,
        match=r"cannot write to the job store at .*: it was opened with "
        r"readonly=True\. Reading works",
    ):
        ro.set_job_status(job.job_id, "canceled")
    assert batchkit.jobs(path)["status"].tolist() == ["ended"]


def _drop_file_privileges() -> None:
    """In the child, before exec: drop root's power to ignore file modes (CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH leave the bounding set), so a mode of 0444 means what it says."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def without_root_file_powers(code: str) -> dict:
    """Run ``code`` in a fresh interpreter for which file modes hold, even when tests run as root."""
    kwargs = {"preexec_fn": _drop_file_privileges} if os.geteuid() == 0 else {}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_read_only_file_and_folder_open_read_only_and_an_unwritable_folder_is_named(tmp_path):
    import pandas as pd

    from tests.conftest import make_sim

    path = tmp_path / "data" / "jobs.sqlite3"
    pd.DataFrame({"t": ["a"]}).claude.batch("{t}", store=path, client=make_sim().client(), poll_interval=0.01)
    os.chmod(path, 0o444)  # writable by no one
    os.chmod(path.parent, 0o555)
    try:
        found = without_root_file_powers(
            "import json, batchkit\n"
            "from batchkit.stores.store import Store\n"
            f"s = Store({str(path)!r})\n"
            "out = {'readonly': s.readonly, 'why': s.readonly_reason,\n"
            "       'jobs': batchkit.jobs(s)['status'].tolist()}\n"
            "try:\n"
            "    s.claim_backend('Anthropic API')\n"
            "except batchkit.StoreReadOnlyError as e:\n"
            "    out['write'] = str(e)\n"
            "try:\n"
            f"    Store({str(path.parent / 'new.sqlite3')!r})\n"
            "except batchkit.StoreError as e:\n"
            "    out['create'] = str(e)\n"
            "import os\n"
            f"os.chmod({str(path.parent)!r}, 0o755); os.chmod({str(path)!r}, 0o600)  # the advice, followed\n"
            "with s._atomic() as conn:  # the same Store object now writes\n"
            "    conn.execute(\"INSERT INTO meta VALUES ('note', 'written')\")\n"
            "out['after'] = [s.readonly, s.query(\"SELECT value FROM meta WHERE name = 'note'\")[0][0]]\n"
            "print(json.dumps(out))\n"
        )
    finally:
        os.chmod(path.parent, 0o755)
    assert found["after"] == [False, "written"]
    assert found["readonly"] and found["why"] == "the file is read-only for this user"
    assert found["jobs"] == ["ended"]
    assert f"cannot write to the job store at {path}" in found["write"] and f"chmod u+w {path}" in found["write"]
    assert f"no permission to write in {path.parent}" in found["create"]


def in_namespace(script: str) -> subprocess.CompletedProcess:
    """Run a shell script as root of a new user and mount namespace, where it may mount file systems."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.fail(
            "this test needs `unshare -rm` (util-linux, user namespaces) to mount a read-only or a full file system"
        )
    return subprocess.run(
        ["unshare", "-rm", "sh", "-ec", script],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_a_read_only_file_system_still_lists_and_exports_and_a_full_one_says_disk_full(tmp_path):
    import pandas as pd

    from tests.conftest import make_sim

    ro, full = tmp_path / "ro", tmp_path / "full"
    full.mkdir()
    path = ro / "jobs.sqlite3"
    pd.DataFrame({"t": ["a", "b"]}).claude.batch("{t}", store=path, client=make_sim().client(), poll_interval=0.01)
    job_id = batchkit.jobs(path)["job_id"][0]
    Store.resolve(path).close()  # a normal close: no -wal or -shm left beside it
    assert sorted(p.name for p in ro.iterdir()) == ["jobs.sqlite3"]
    code = f"""
import json, pandas as pd, batchkit
from batchkit.cli import main
from batchkit.simulator import Processing, SimConfig, Simulator
out = {{"jobs": main(["jobs", "--store", {str(path)!r}]),
       "results": main(["results", {job_id!r}, "--store", {str(path)!r}, "-o", {str(tmp_path / "out.csv")!r}]),
       "status": main(["status", {job_id!r}, "--store", {str(path)!r}]),
       "listed": batchkit.jobs({str(path)!r})["status"].tolist(),
       "outcomes": batchkit.Job.load({job_id!r}, store={str(path)!r}).outcomes()["status"].tolist()}}
try:
    batchkit.Store({str(path)!r}).set_job_status({job_id!r}, "canceled")
except batchkit.StoreReadOnlyError as e:
    out["write"] = str(e)
sim = Simulator(config=SimConfig(processing=Processing.instant()))
again = pd.DataFrame({{"t": ["a", "b"]}}).claude.batch("{{t}}", store={str(path)!r}, client=sim.client())
out["again"] = again["response"].tolist()
try:
    pd.DataFrame({{"t": [str(i) * 3000 for i in range(200)]}}).claude.submit(
        "{{t}}", store={str(full / "jobs.sqlite3")!r}, client=sim.client())
except batchkit.StoreError as e:
    out["full"] = str(e)
out["batches"] = sim.stats()["batches_created"]
print(json.dumps(out))
"""
    (tmp_path / "inner.py").write_text(code)
    proc = in_namespace(
        f"mount --bind {ro} {ro}; mount -o remount,ro,bind {ro}; mount -t tmpfs -o size=256k tmpfs {full}; "
        f"{sys.executable} {tmp_path / 'inner.py'}"
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["jobs"] == found["status"] == found["results"] == 0
    assert found["listed"] == ["ended"] and found["outcomes"] == ["succeeded", "succeeded"]
    assert f"job store: {path} (read-only): 1 job" in proc.stdout
    assert len(pd.read_csv(tmp_path / "out.csv")) == 2
    assert "it is on a read-only file system" in found["write"] and "batchkit backup" in found["write"]
    assert "the disk is full" in found["full"] and "cannot rollback" not in found["full"]
    assert found["again"] == ["re:a", "re:b"]  # a finished call re-runs from a read-only store, sending nothing
    assert found["batches"] == 0


def test_a_store_another_process_is_making_is_never_taken_for_someone_elses(tmp_path):
    # Its tables, version and mark land in one commit; a look in between must see all or none.
    # Read one by one, about 6% of such looks refused a store half made (two processes running
    # the same cell at once, one creating the store).
    import threading

    from batchkit.stores.storefile import connect_readonly, verdict

    refused = []
    for i in range(100):
        path = tmp_path / f"s{i}.sqlite3"
        sqlite3.connect(path).close()  # the other process has made the empty file...
        made = threading.Event()
        maker = threading.Thread(target=lambda p=path, m=made: (Store(p, create=True).close(), m.set()))
        maker.start()  # ... and now makes the store, while this one looks
        while not made.is_set():
            try:
                conn = connect_readonly(path)
            except sqlite3.OperationalError:
                continue
            try:
                verdict(conn, path)
            except NotAStoreError as exc:
                refused.append(str(exc))
            finally:
                conn.close()
        maker.join()
    assert refused == []


def test_processes_opening_one_new_store_at_once_all_open_it(tmp_path):
    # Two notebooks running the same cell make the same store at the same moment. SQLite refuses
    # the switch to WAL at once, without waiting, when the two would wait on each other; about one
    # opening in thirty failed with "database is locked" before the switch was retried. Threads
    # stand in for the processes: each opens its own connection, and SQLite locks them alike.
    import threading

    failed = []

    def open_it(path, barrier):
        barrier.wait()
        try:
            Store(path).close()
        except StoreError as exc:
            failed.append(str(exc))

    for i in range(150):
        path = tmp_path / f"s{i}.sqlite3"
        barrier = threading.Barrier(3)
        openers = [threading.Thread(target=open_it, args=(path, barrier)) for _ in range(3)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join()
    assert failed == []


def test_a_unit_that_kept_no_results_reads_back_as_no_usage(store):
    """A unit whose results came back empty (a realtime round whose answers were all lost on the way
    back) is kept; reading its usage gives empty arrays rather than failing the job's cost."""
    from batchkit.core.results import USAGE_FIELDS, parse_results

    with store.transaction() as tx:
        tx.insert_job(job_id="j", fingerprint="f", model="m", kind="text", output="o", spec={}, row_keys=[], skipped={})
        unit = add_batch(tx, [])
        tx.put_results(unit, "m", parse_results([]))
    ((results_id, kept),) = store.results_since(0, 2**62)
    assert kept == 0
    statuses, usage = store.result_usage(results_id)
    assert len(statuses) == 0 and usage.shape == (0, len(USAGE_FIELDS))
