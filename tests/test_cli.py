"""The batchkit console script, run in process against a simulator (served on loopback where
a command reaches the API)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import batchkit
from batchkit.cli import DEMO_REVIEWS, load_reviews, main
from batchkit.simulator import Processing
from batchkit.stores.store import Store
from tests.conftest import make_sim

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def served():
    server = batchkit.start_simulator(processing=Processing(fixed_latency=0.2, per_request=0.0))
    yield server
    server.stop()


@pytest.fixture
def finished(tmp_path):
    """(store path, job) of a finished job: two answered rows and a skipped one, with a system prompt."""
    store = str(tmp_path / "jobs.sqlite3")
    sim = make_sim()
    df = pd.DataFrame({"t": ["a", "b", None]})
    with pytest.warns(batchkit.BatchkitWarning):
        df.claude.batch("Say {t}", system="Be brief.", store=store, client=sim.client(), poll_interval=0.01)
    job = batchkit.Job.load(batchkit.jobs(store)["job_id"][0], store=store)
    return store, job


def one_line_error(capsys) -> str:
    """The command's stderr, checked to be one ``batchkit:`` line and no traceback."""
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("batchkit: ") and "\n" not in err, err
    assert "Traceback" not in captured.err
    return err


def test_jobs_status_wait_results(served, tmp_path, capsys):
    store = str(tmp_path / "jobs.sqlite3")
    df = pd.DataFrame({"t": ["a", "b", None]})
    job = df.claude.submit("{t}", store=store, poll_interval=0.05)
    assert main(["wait", job.job_id, "--store", store]) == 0
    assert "2 succeeded, 1 skipped" in capsys.readouterr().out
    assert main(["jobs", "--store", store]) == 0
    listing = capsys.readouterr().out
    assert job.job_id in listing and "ended" in listing
    assert main(["status", job.job_id, "--store", store]) == 0
    status = capsys.readouterr().out
    assert re.search(r"msgbatch_\w+\s+collected", status)
    out = tmp_path / "out.csv"
    assert main(["results", job.job_id, "--store", store, "-o", str(out)]) == 0
    written = pd.read_csv(out)
    assert written["status"].tolist() == ["succeeded", "succeeded", "skipped"]
    assert written["response"].notna().sum() == 2 and "cost" in written.columns
    parquet = tmp_path / "out.parquet"
    assert main(["results", job.job_id, "--store", store, "-o", str(parquet)]) == 0
    assert len(pd.read_parquet(parquet)) == 3


def test_results_show_the_input_the_model_saw_beside_the_outputs(finished, tmp_path, capsys):
    store, job = finished
    out = tmp_path / "out.csv"
    assert main(["results", job.job_id, "--store", store, "-o", str(out)]) == 0
    written = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(written.columns[:4]) == ["row", "prompt", "system", "response"]
    assert written["row"].tolist() == [0, 1, 2]
    assert written["prompt"].tolist()[:2] == ["Say a", "Say b"] and pd.isna(written["prompt"][2])
    assert written["system"].tolist()[:2] == ["Be brief.", "Be brief."]
    assert written["response"].tolist()[:2] == ["re:Say a", "re:Say b"]  # the echo responder
    assert written["status"].tolist() == ["succeeded", "succeeded", "skipped"]
    assert "t" not in written.columns  # the outputs alone, never the caller's frame half-included


def test_jobs_says_which_store_it_read_and_points_at_the_other_default_store(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("BATCHKIT_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    folder = tmp_path / "xdg" / "batchkit"
    sim_store = folder / "simulator.sqlite3"
    pd.DataFrame({"t": ["a"]}).claude.batch("{t}", store=sim_store, client=make_sim().client(), poll_interval=0.01)
    job_id = batchkit.jobs(sim_store)["job_id"][0]

    assert main(["jobs"]) == 0
    out = capsys.readouterr().out
    assert f"job store: {folder / 'jobs.sqlite3'}" in out and "no jobs" in out
    assert f"note: {sim_store} (the simulator's store) has 1 job: batchkit jobs --store {sim_store}" in out
    assert not (folder / "jobs.sqlite3").exists()  # reading never creates a store

    assert main(["jobs", "--store", str(sim_store)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"job store: {sim_store}: 1 job\n") and job_id in out


def test_store_goes_before_or_after_the_command(finished, capsys):
    store, job = finished
    for argv in (["--store", store, "jobs"], ["jobs", "--store", store], ["--store", store, "status", job.job_id]):
        assert main(argv) == 0, argv
        assert job.job_id in capsys.readouterr().out


def test_a_store_path_that_does_not_exist_is_an_error_and_is_not_created(tmp_path, capsys):
    missing = tmp_path / "typo.sqlite3"
    for argv in (["jobs", "--store", str(missing)], ["status", "job_x", "--store", str(missing)]):
        assert main(argv) == 2
        err = one_line_error(capsys)
        assert f"no job store at {missing}" in err and "--store" in err
    assert not missing.exists()


def test_unknown_job_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "s.sqlite3"
    Store(path).close()
    assert main(["status", "job_nope", "--store", str(path)]) == 2
    assert "no job 'job_nope'" in one_line_error(capsys)


def test_cancel_from_the_command_line(tmp_path, capsys):
    server = batchkit.start_simulator(processing=Processing(fixed_latency=30.0, per_request=0.0))
    try:
        store = str(tmp_path / "jobs.sqlite3")
        job = pd.DataFrame({"t": ["a", "b"]}).claude.submit("{t}", store=store, poll_interval=0.05)
        while job.batches()["api_id"].isna().any():
            time.sleep(0.01)
        assert main(["cancel", job.job_id, "--store", store]) == 0
        assert "2 canceled" in capsys.readouterr().out
    finally:
        server.stop()


def test_cancel_that_cannot_reach_the_api_exits_2_and_leaves_the_job_as_it_was(tmp_path, capsys):
    server = batchkit.start_simulator(processing=Processing(fixed_latency=30.0, per_request=0.0))
    store = str(tmp_path / "jobs.sqlite3")
    try:
        job = pd.DataFrame({"t": ["a", "b"]}).claude.submit("{t}", store=store, poll_interval=0.05)
        while job.batches()["api_id"].isna().any():
            time.sleep(0.01)
    finally:
        server.stop()  # the API is gone
    assert main(["cancel", job.job_id, "--store", store]) == 2
    err = one_line_error(capsys)
    assert f"could not cancel job {job.job_id}" in err and "Nothing was changed" in err
    assert batchkit.jobs(store)["status"].tolist() == ["running"]
    assert job.batches()["state"].tolist() == ["in_progress"]
    # The API is back, as it was, with its batches: they are kept on disk.
    server = batchkit.start_simulator(processing=Processing(fixed_latency=30.0, per_request=0.0))
    try:
        batchkit.Job.load(job.job_id, store=store, client=server.client()).cancel()
    finally:
        server.stop()
    assert batchkit.jobs(store)["status"].tolist() == ["canceled"]


def test_cancel_of_a_finished_job_says_so_and_leaves_it_ended(finished, capsys):
    store, job = finished
    assert main(["cancel", job.job_id, "--store", store]) == 0
    assert f"{job.job_id} had already ended: nothing to cancel" in capsys.readouterr().out
    assert batchkit.jobs(store)["status"].tolist() == ["ended"]
    assert job.outcomes()["status"].tolist() == ["succeeded", "succeeded", "skipped"]


def test_results_needs_a_known_format(finished, tmp_path, capsys):
    store, job = finished
    assert main(["results", job.job_id, "--store", store, "-o", str(tmp_path / "x.txt")]) == 2
    assert ".csv or .parquet" in one_line_error(capsys)


def test_results_never_clobber_a_file_or_write_through_a_link(finished, tmp_path, capsys):
    store, job = finished
    existing = tmp_path / "mine.csv"
    existing.write_text("precious\n")
    assert main(["results", job.job_id, "--store", store, "-o", str(existing)]) == 2
    assert "already exists" in one_line_error(capsys) and existing.read_text() == "precious\n"

    target = tmp_path / "elsewhere.csv"
    target.write_text("precious\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    for force in ([], ["--force"]):
        assert main(["results", job.job_id, "--store", store, "-o", str(link), *force]) == 2
        assert "symbolic link" in one_line_error(capsys)
    assert target.read_text() == "precious\n"

    assert main(["results", job.job_id, "--store", store, "-o", str(existing), "--force"]) == 0
    assert len(pd.read_csv(existing)) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # written in place atomically


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/out.csv", "does not exist: create it first (mkdir -p"),
        ("missing/dataset/", "does not exist: create it first (mkdir -p"),
        ("afile.csv/", "is a file: name a folder for the dataset"),
    ],
)
def test_results_into_a_missing_folder_or_onto_a_folder(finished, tmp_path, capsys, where, message):
    store, job = finished
    (tmp_path / "afile.csv").write_text("x")
    assert main(["results", job.job_id, "--store", store, "-o", f"{tmp_path}/{where}"]) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "missing").exists() and (tmp_path / "afile.csv").read_text() == "x"


def test_parquet_without_pyarrow_is_a_clear_error(finished, tmp_path, capsys, monkeypatch):
    store, job = finished
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    assert main(["results", job.job_id, "--store", store, "-o", str(tmp_path / "o.parquet")]) == 2
    err = one_line_error(capsys)
    assert "needs pyarrow (pip install pyarrow)" in err and "o.csv" in err
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "name a command: demo, sim, jobs"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["status"], "required: job"),
        (["results", "job_x"], "required: -o/--output"),
        (["jobs", "--frob"], "unrecognized arguments: --frob"),
    ],
)
def test_usage_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert message in err and "--help" in err


def test_sim_on_a_port_in_use_is_one_line_naming_the_port_and_the_fix(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["sim", "--port", str(port)]) == 2
    err = one_line_error(capsys)
    assert f"cannot listen on 127.0.0.1 port {port}" in err and "--port (0 picks a free one)" in err


def test_demo_rows_go_up_to_the_reviews_it_ships(capsys):
    assert len(load_reviews(10 * DEMO_REVIEWS)) == DEMO_REVIEWS  # the limit is the sample's size
    assert main(["demo", "--rows", str(DEMO_REVIEWS + 1)]) == 2
    assert f"the demo classifies 1 to {DEMO_REVIEWS:,} reviews" in one_line_error(capsys)


def test_a_closed_pipe_ends_quietly(finished):
    store, _ = finished
    read, write = os.pipe()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from batchkit.cli import main; sys.exit(main(sys.argv[1:]))",
            "jobs",
            "--store",
            store,
        ],
        stdout=write,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    os.close(write)
    os.close(read)  # like `| head` that has already exited: every write hits a closed pipe
    _, err = proc.communicate(timeout=60)
    assert err.decode() == "" and proc.returncode == 0


def test_backup_copies_the_store_to_one_file(finished, tmp_path, capsys):
    store, job = finished
    dest = tmp_path / "backups"
    dest.mkdir()
    assert main(["backup", str(dest), "--store", store]) == 0
    copy = dest / "jobs.sqlite3"
    assert f"to {copy}" in capsys.readouterr().out
    assert sorted(p.name for p in dest.iterdir()) == ["jobs.sqlite3"]  # no -wal beside it
    assert batchkit.jobs(copy)["job_id"].tolist() == [job.job_id]
    assert batchkit.Job.load(job.job_id, store=copy).outcomes()["status"].tolist() == [
        "succeeded",
        "succeeded",
        "skipped",
    ]
    assert main(["backup", str(copy), "--store", store]) == 2
    assert "already exists: pass --force" in one_line_error(capsys)
    assert main(["backup", str(copy), "--store", store, "--force"]) == 0


def test_forget_and_prune_from_the_command_line(finished, capsys):
    store, job = finished
    capsys.readouterr()
    assert main(["prune", "--older-than", "30d", "--store", store]) == 0
    assert capsys.readouterr().out.strip() == "no job to remove: the store is unchanged"
    assert main(["prune", "--older-than", "90m", "--dry-run", "--store", store]) == 0  # the job is seconds old
    assert "no job to remove" in capsys.readouterr().out
    assert main(["forget", job.job_id, "--store", store]) == 0
    out = capsys.readouterr().out
    assert f"removed 1 job ({job.job_id}): 1 unit (batches and realtime rounds), 2 stored results" in out
    assert f"the store at {store}:" in out and "MB freed" in out
    assert batchkit.jobs(store).empty
    assert main(["forget", job.job_id, "--store", store]) == 2
    assert f"no job {job.job_id!r}" in one_line_error(capsys)


def test_forget_of_a_job_in_flight_says_what_force_means(tmp_path, capsys):
    path = tmp_path / "jobs.sqlite3"
    store = Store(path)
    with store.transaction() as tx:
        tx.insert_job(
            job_id="busy",
            fingerprint="f",
            model="m",
            kind="text",
            output="o",
            spec={},
            row_keys=["k"],
            skipped={},
        )
        unit = tx.add_unit(job_id="busy", keys=["k"], body=b"{}", attempt=1, owner="me")
        tx.update_batch(unit, state="in_progress", api_id="msgbatch_busy")
    store.close()
    assert main(["forget", "busy", "--store", str(path)]) == 2
    err = one_line_error(capsys)
    assert "job busy has 1 batch still in flight (msgbatch_busy in_progress)" in err
    assert "pass --force" in err and "keep running at the API" in err
    assert main(["forget", "busy", "--force", "--store", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gave up on 1 unit still in flight (msgbatch_busy)" in out and "no longer collected" in out


def test_python_dash_m_batchkit_is_the_console_script():
    done = subprocess.run(
        [sys.executable, "-m", "batchkit", "jobs", "--store", "/nonexistent/jobs.sqlite3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "/nonexistent/jobs.sqlite3" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- results as a Parquet dataset


def _dataset(folder):
    import pyarrow.parquet as pq

    files = sorted(p.name for p in folder.iterdir())
    return files, pq.read_table(folder).to_pandas()


def test_results_into_a_folder_write_a_parquet_dataset_a_slice_at_a_time(tmp_path, capsys):
    store = str(tmp_path / "jobs.sqlite3")
    sim = make_sim()
    df = pd.DataFrame({"t": [f"row {i}" for i in range(25)]})
    out = df.claude.batch("Say {t}", store=store, client=sim.client(), progress=False)
    job = batchkit.Job.of(out)
    folder = tmp_path / "ds"
    assert main(["results", job.job_id, "--store", store, "-o", f"{folder}/", "--rows-per-file", "10"]) == 0
    assert f"wrote 25 rows of job {job.job_id} to {folder}/ as 3 Parquet files" in capsys.readouterr().out
    files, read = _dataset(folder)
    assert files == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert read["row"].tolist() == list(range(25))
    assert read["response"].tolist() == [f"re:Say row {i}" for i in range(25)]
    assert (read["status"] == "succeeded").all() and read["error_type"].isna().all()
    # the same rows, columns and values as the one-file form
    single = tmp_path / "one.parquet"
    assert main(["results", job.job_id, "--store", store, "-o", str(single)]) == 0
    whole = pd.read_parquet(single)
    assert list(read.columns) == list(whole.columns)

    def values(df):  # a column with no value is typed text in the dataset (one schema for every file)
        return {c: [None if pd.isna(v) else v for v in df[c]] for c in df.columns}

    assert values(read) == values(whole)


def test_a_dataset_folder_is_never_clobbered_and_overwrite_replaces_only_its_parts(finished, tmp_path, capsys):
    store, job = finished
    folder = tmp_path / "ds"
    assert main(["results", job.job_id, "--store", store, "-o", str(folder) + "/", "--rows-per-file", "1"]) == 0
    capsys.readouterr()
    assert len(list(folder.iterdir())) == 3
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    # an existing folder is a dataset destination too, with or without the slash
    assert main(["results", job.job_id, "--store", store, "-o", str(folder)]) == 2
    assert "already holds a dataset (3 part files): pass --overwrite" in one_line_error(capsys)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert main(["results", job.job_id, "--store", store, "-o", str(folder), "--overwrite"]) == 0
    capsys.readouterr()
    files, read = _dataset(folder)
    assert files == ["part-00000.parquet"] and len(read) == 3  # one file now: no stale parts left behind
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["results", job.job_id, "--store", store, "-o", str(mine), "--overwrite"]) == 2
    assert "notes.txt" in one_line_error(capsys) and (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_an_unknown_id_writes_no_dataset(finished, tmp_path, capsys):
    store, _ = finished
    folder = tmp_path / "ds"
    assert main(["results", "job_nope", "--store", store, "-o", f"{folder}/"]) == 2
    assert "no job or run 'job_nope'" in one_line_error(capsys)
    assert not folder.exists()


def test_a_runs_results_are_one_file_per_partition_in_order(tmp_path, capsys):
    from batchkit.engine import calls
    from batchkit.engine.runs import run_partitions

    store = tmp_path / "jobs.sqlite3"
    sim = make_sim()
    df = pd.DataFrame({"t": [f"row {i}" for i in range(23)]})
    parts = (
        calls.prepare(
            df.iloc[i : i + 10], "Say {t}", output="response", client=sim.client(), store=store, poll_interval=0.01
        )
        for i in range(0, 23, 10)
    )
    run = run_partitions(parts, source="test_cli:dataset", progress=False)
    folder = tmp_path / "ds"
    assert main(["results", run.run_id, "--store", str(store), "-o", f"{folder}/", "--rows-per-file", "4"]) == 0
    assert f"wrote 23 rows of run {run.run_id} (3 partitions)" in capsys.readouterr().out
    files, read = _dataset(folder)
    assert files == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert read["row"].tolist() == list(range(23))  # numbered over the whole input
    assert read["response"].tolist() == [f"re:Say row {i}" for i in range(23)]
    import pyarrow.parquet as pq

    assert [pq.read_metadata(folder / f).num_rows for f in files] == [10, 10, 3]
