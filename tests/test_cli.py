"""The batchkit console script, run in process against a simulator served on loopback."""

from __future__ import annotations

import re
import time

import pandas as pd
import pytest

import batchkit
from batchkit.cli import main
from batchkit.simulator import Processing


@pytest.fixture
def served():
    server = batchkit.start_simulator(processing=Processing(fixed_latency=0.2, per_request=0.0))
    yield server
    server.stop()


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


def test_unknown_job_is_a_one_line_error(tmp_path, capsys):
    assert main(["status", "job_nope", "--store", str(tmp_path / "s.sqlite3")]) == 1
    assert "no job 'job_nope'" in capsys.readouterr().err


def test_results_needs_a_known_format(served, tmp_path, capsys):
    store = str(tmp_path / "jobs.sqlite3")
    job = pd.DataFrame({"t": ["a"]}).claude.submit("{t}", store=store, poll_interval=0.05).wait()
    assert main(["results", job.job_id, "--store", store, "-o", str(tmp_path / "x.txt")]) == 2
    assert ".csv or .parquet" in capsys.readouterr().err
