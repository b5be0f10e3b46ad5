"""The job engine at the edges of a process: a script that exits right after ``submit()``."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import textwrap

import anthropic
import pytest

from batchkit import Job
from batchkit.simulator import Faults, Processing, spawn
from tests import children

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import pandas as pd
    import batchkit
    df = pd.DataFrame({"t": [f"row {i}" for i in range(20)]})
    job = df.claude.submit("Echo {t}", poll_interval=0.05, chunk_size=10)
    print("JOB", job.job_id)
    """
)


def run_script(base_url: str, store: str, script: str = SCRIPT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "BATCHKIT_"))}
    env.update(ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY="sk-sim-test", BATCHKIT_STORE=store)
    return children.run(script, env=env, timeout=120)


def test_a_script_that_exits_right_after_submit_still_creates_its_batches(tmp_path):
    store = str(tmp_path / "jobs.sqlite3")
    slow_creates = Faults(schedule=(("batches.create", [1, 2], "slow:0.5"),))  # still creating at exit
    with spawn(processing=Processing(fixed_latency=0.2, per_request=0.0), faults=slow_creates) as sim:
        done = run_script(sim.base_url, store)
        assert done.returncode == 0, done.stderr
        assert sim.stats()["batches_created"] == 2  # created before the process ended
        job_id = done.stdout.split()[-1]
        assert "its 2 batch(es) are created" in done.stderr
        command = re.search(r"`batchkit (wait [^`]+)`", done.stderr)
        assert command is not None and command.group(1).startswith(f"wait {job_id} --store")
        argv = shlex.split(command.group(1))
        waited = run_script(sim.base_url, store, f"from batchkit.cli import main; main({argv!r})")
        assert waited.returncode == 0, waited.stderr  # the command it printed collects the job
        with anthropic.Anthropic(base_url=sim.base_url, api_key="sk-sim") as client:
            job = Job.load(job_id, store=store, client=client)
            assert job.status == "ended" and (job.outcomes()["status"] == "succeeded").all()
        assert sim.stats()["batches_created"] == 2  # picked up, nothing sent twice


def test_a_script_whose_create_is_refused_says_why_as_it_exits(tmp_path):
    store = str(tmp_path / "jobs.sqlite3")
    with spawn(faults=Faults(schedule=(("batches.create", 1, 402),))) as sim:
        done = run_script(sim.base_url, store)
        assert done.returncode == 0, done.stderr
        assert "402 billing_error" in done.stderr and "add credit" in done.stderr
        assert sim.stats()["batches_created"] == 0
