"""Bad inputs to the job store and the command line, one table: each gets a clear error, and nothing is sent.

Every Store-API row raises a :class:`batchkit.BatchkitError` subclass whose message names the
problem and the fix; every CLI row (run in process through ``batchkit.cli.main``) exits 2 with
one ``batchkit:`` line on stderr naming both, and no traceback. For every row the simulator —
the default client throughout, so any call that slipped through would land there — shows no
batch created and no message answered.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import batchkit
from batchkit import (
    BatchkitError,
    InvalidOptionError,
    JobNotFoundError,
    NotAStoreError,
    OutputPathError,
    StoreError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from batchkit.cli import main
from batchkit.costs.accounting import JobCost
from batchkit.costs.pricing import CostBreakdown
from batchkit.stores.store import Store
from batchkit.stores.storefile import APPLICATION_ID
from tests.conftest import make_sim


@dataclass
class Ctx:
    """What the rows act on: a finished job's store, and files that are not stores."""

    tmp: Path
    store: str
    job: str
    client: Any

    @property
    def text(self) -> Path:
        path = self.tmp / "notes.txt"
        path.write_text("not a database\n" * 10)
        return path

    @property
    def folder(self) -> Path:
        path = self.tmp / "afolder"
        path.mkdir(exist_ok=True)
        return path

    @property
    def folder_of_files(self) -> Path:
        path = self.tmp / "notes"
        path.mkdir(exist_ok=True)
        (path / "notes.txt").write_text("mine\n")
        return path

    @property
    def crm(self) -> Path:
        path = self.tmp / "crm.sqlite3"
        if not path.exists():
            conn = sqlite3.connect(path)
            conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
            conn.commit()
            conn.close()
        return path

    def with_header(self, app_id: int, version: int) -> Path:
        path = self.tmp / f"db-{app_id}-{version}.sqlite3"
        conn = sqlite3.connect(path)
        conn.execute(f"PRAGMA application_id = {app_id}")
        conn.execute(f"PRAGMA user_version = {version}")
        conn.close()
        return path

    @property
    def missing(self) -> Path:
        return self.tmp / "typo" / "jobs.sqlite3"

    @property
    def readonly(self) -> Store:
        return Store(self.store, readonly=True)

    @property
    def full(self) -> Store:
        store = Store(self.tmp / "full.sqlite3")
        pages = store.query("PRAGMA page_count")[0][0]
        store.query(f"PRAGMA max_page_count = {pages}")
        return store

    @property
    def existing(self) -> Path:
        path = self.tmp / "existing.csv"
        path.write_text("precious\n")
        return path

    @property
    def link(self) -> Path:
        path = self.tmp / "link.csv"
        if not path.is_symlink():
            path.symlink_to(self.existing)
        return path

    @staticmethod
    def big_job(store: Store) -> None:
        with store.transaction() as tx:
            tx.insert_job(
                job_id="big",
                fingerprint="big",
                model="m",
                kind="text",
                output="o",
                spec={},
                row_keys=["k" * 100_000] * 20,
                skipped={},
            )

    def submit(self, store: Any) -> Any:
        texts = pd.DataFrame({"t": [f"long row {i} " * 2000 for i in range(30)]})
        return texts.claude.submit("{t}", store=store, client=self.client)


@dataclass
class Api:
    """A Store-API row: calling ``run`` raises ``error`` with every one of ``words`` in its message."""

    run: Callable[[Ctx], Any]
    error: type[BatchkitError]
    words: tuple[str, ...]


@dataclass
class Cli:
    """A command-line row: ``batchkit ARGV`` exits 2 with one line holding every one of ``words``."""

    argv: Callable[[Ctx], list[str]]
    words: tuple[str, ...]


CASES: dict[str, Api | Cli] = {
    # --------------------------------------------------------------- where a store may live
    "store-parent-is-a-file": Api(
        lambda c: Store(c.text / "jobs.sqlite3"), StoreError, ("is a file, not a folder", "pass another store=")
    ),
    "store-path-is-a-folder": Api(lambda c: Store(c.folder), StoreError, ("is a folder", "name a file")),
    "store-is-a-text-file": Api(
        lambda c: Store(c.text), NotAStoreError, ("not an SQLite database", "pass store= a new path")
    ),
    "store-is-another-database": Api(
        lambda c: Store(c.crm), NotAStoreError, ("tables customers", "batchkit writes only to its own stores")
    ),
    "store-of-another-application": Api(
        lambda c: Store(c.with_header(77, 3)), NotAStoreError, ("application_id 0x4d", "pass store= a new path")
    ),
    "store-from-a-newer-batchkit": Api(
        lambda c: Store(c.with_header(APPLICATION_ID, 99)), StoreError, ("newer batchkit", "upgrade batchkit")
    ),
    "read-a-missing-store": Api(
        lambda c: Store(c.missing, create=False), StoreNotFoundError, ("does not exist", "Check the path")
    ),
    "read-only-open-of-a-missing-store": Api(
        lambda c: Store(c.missing, readonly=True), StoreNotFoundError, ("does not exist", "Check the path")
    ),
    "jobs-of-a-folder": Api(lambda c: batchkit.jobs(c.folder), StoreError, ("is a folder", "name a file")),
    "load-from-another-database": Api(
        lambda c: batchkit.Job.load("job_x", store=c.crm), NotAStoreError, ("not a batchkit job store", "new path")
    ),
    "load-an-unknown-job": Api(
        lambda c: batchkit.Job.load("job_nope", store=c.store),
        JobNotFoundError,
        ("no job 'job_nope'", "batchkit.jobs()"),
    ),
    # --------------------------------------------------------------- writing where it cannot
    "write-a-read-only-store": Api(
        lambda c: c.readonly.set_job_status(c.job, "canceled"),
        StoreReadOnlyError,
        ("cannot write to the job store", "without readonly=True"),
    ),
    "write-a-full-store": Api(lambda c: c.big_job(c.full), StoreError, ("the disk is full", "Free some space")),
    "submit-to-another-database": Api(
        lambda c: c.submit(c.crm), NotAStoreError, ("not a batchkit job store", "new path")
    ),
    "submit-where-the-folder-is-a-file": Api(
        lambda c: c.submit(c.text / "jobs.sqlite3"), StoreError, ("is a file, not a folder", "store=")
    ),
    "submit-to-a-read-only-store": Api(
        lambda c: c.submit(c.readonly), StoreReadOnlyError, ("cannot write to the job store", "without readonly=True")
    ),
    "submit-to-a-full-disk": Api(lambda c: c.submit(c.full), StoreError, ("the disk is full", "move the store")),
    "estimate-with-a-folder-as-store": Api(
        lambda c: pd.DataFrame({"t": ["a"]}).claude.estimate("{t}", store=c.folder),
        StoreError,
        ("is a folder", "name a file"),
    ),
    # --------------------------------------------------------------- backups
    "backup-onto-an-existing-file": Api(
        lambda c: Store(c.store).backup(c.existing), OutputPathError, ("already exists", "overwrite=True")
    ),
    "backup-into-a-missing-folder": Api(
        lambda c: Store(c.store).backup(c.tmp / "no" / "b.sqlite3"), OutputPathError, ("does not exist", "mkdir -p")
    ),
    "backup-through-a-symlink": Api(
        lambda c: Store(c.store).backup(c.link, overwrite=True),
        OutputPathError,
        ("symbolic link", "name the real file"),
    ),
    "backup-onto-the-store-itself": Api(
        lambda c: Store(c.store).backup(c.store, overwrite=True),
        OutputPathError,
        ("is the job store itself", "another file"),
    ),
    # --------------------------------------------------------------- forgetting jobs
    "forget-an-unknown-job": Api(
        lambda c: Store(c.store).forget("job_nope"), JobNotFoundError, ("no job 'job_nope'", "lists the jobs")
    ),
    "forget-in-a-read-only-store": Api(
        lambda c: c.readonly.forget(c.job),
        StoreReadOnlyError,
        ("cannot write to the job store", "without readonly=True"),
    ),
    "prune-with-an-age-that-is-no-duration": Api(
        lambda c: batchkit.prune(older_than="soon", store=c.store),
        InvalidOptionError,
        ("'soon' is not a duration", "30d, 12h"),
    ),
    "prune-with-a-negative-age": Api(
        lambda c: batchkit.prune(older_than="-3d", store=c.store), InvalidOptionError, ("not a duration", "30d, 12h")
    ),
    # --------------------------------------------------------------- the command line
    "cli-no-command": Cli(lambda c: [], ("name a command", "--help")),
    "cli-unknown-command": Cli(lambda c: ["frobnicate"], ("invalid choice", "--help")),
    "cli-unknown-option": Cli(lambda c: ["jobs", "--frob"], ("unrecognized arguments", "--help")),
    "cli-status-without-a-job": Cli(lambda c: ["status"], ("required: job", "--help")),
    "cli-results-without-output": Cli(lambda c: ["results", c.job], ("required: -o/--output", "--help")),
    "cli-store-that-does-not-exist": Cli(
        lambda c: ["jobs", "--store", str(c.missing)], ("no job store at", "Check the path")
    ),
    "cli-store-before-the-command-missing": Cli(
        lambda c: ["--store", str(c.missing), "status", "job_x"], ("no job store at", "Check the path")
    ),
    "cli-store-is-a-folder": Cli(lambda c: ["jobs", "--store", str(c.folder)], ("is a folder", "name a file")),
    "cli-store-is-another-database": Cli(
        lambda c: ["jobs", "--store", str(c.crm)], ("not a batchkit job store", "new path")
    ),
    "cli-store-is-a-text-file": Cli(
        lambda c: ["status", "job_x", "--store", str(c.text)], ("not an SQLite database", "new path")
    ),
    "cli-store-under-a-file": Cli(
        lambda c: ["jobs", "--store", str(c.text / "jobs.sqlite3")], ("no job store at", "Check the path")
    ),
    "cli-unknown-job": Cli(lambda c: ["status", "job_nope", "--store", c.store], ("no job 'job_nope'", "lists")),
    "cli-wait-unknown-job": Cli(lambda c: ["wait", "job_nope", "--store", c.store], ("no job 'job_nope'", "lists")),
    "cli-cancel-unknown-job": Cli(lambda c: ["cancel", "job_nope", "--store", c.store], ("no job 'job_nope'", "lists")),
    "cli-results-unknown-format": Cli(
        lambda c: ["results", c.job, "--store", c.store, "-o", str(c.tmp / "o.txt")],
        ("must end in .csv or .parquet", "-o"),
    ),
    "cli-results-into-a-missing-folder": Cli(
        lambda c: ["results", c.job, "--store", c.store, "-o", str(c.tmp / "no" / "o.csv")],
        ("does not exist", "mkdir -p"),
    ),
    "cli-results-into-a-folder-of-other-files": Cli(
        lambda c: ["results", c.job, "--store", c.store, "-o", str(c.folder_of_files), "--overwrite"],
        ("not a batchkit dataset", "empty or new folder"),
    ),
    "cli-results-onto-an-existing-file": Cli(
        lambda c: ["results", c.job, "--store", c.store, "-o", str(c.existing)], ("already exists", "--force")
    ),
    "cli-results-through-a-symlink": Cli(
        lambda c: ["results", c.job, "--store", c.store, "-o", str(c.link), "--force"],
        ("symbolic link", "name the real file"),
    ),
    "cli-backup-onto-an-existing-file": Cli(
        lambda c: ["backup", str(c.existing), "--store", c.store], ("already exists", "--force")
    ),
    "cli-backup-into-a-missing-folder": Cli(
        lambda c: ["backup", str(c.tmp / "no" / "b.sqlite3"), "--store", c.store], ("does not exist", "mkdir -p")
    ),
    "cli-forget-unknown-job": Cli(
        lambda c: ["forget", "job_nope", "--store", c.store], ("no job 'job_nope'", "`batchkit jobs`")
    ),
    "cli-prune-without-an-age": Cli(lambda c: ["prune", "--store", c.store], ("required: --older-than", "--help")),
    "cli-prune-with-an-age-that-is-no-duration": Cli(
        lambda c: ["prune", "--older-than", "30x", "--store", c.store], ("'30x' is not a duration", "30d, 12h or 90m")
    ),
    "cli-prune-with-a-zero-age": Cli(
        lambda c: ["prune", "--older-than", "0d", "--store", c.store], ("is not more than zero", "30d, 12h or 90m")
    ),
    # --------------------------------------------------------------- sim and demo arguments
    "cli-sim-port-too-high": Cli(lambda c: ["sim", "--port", "70000"], ("'70000' is not a port", "pass 1–65535")),
    "cli-sim-port-negative": Cli(lambda c: ["sim", "--port", "-5"], ("'-5' is not a port", "0 for a free one")),
    "cli-sim-time-scale-nan": Cli(
        lambda c: ["sim", "--time-scale", "nan"], ("'nan' is not a time scale", "a finite number > 0")
    ),
    "cli-sim-time-scale-zero": Cli(
        lambda c: ["sim", "--time-scale", "0"], ("'0' is not a time scale", "a finite number > 0")
    ),
    "cli-sim-responder-no-such-function": Cli(
        lambda c: ["sim", "--responder", "os:nonexistent"], ("'os' has no 'nonexistent'", "name a function")
    ),
    "cli-sim-responder-no-such-module": Cli(
        lambda c: ["sim", "--responder", "no_such_module_here:f"], ("cannot import 'no_such_module_here'", "PYTHONPATH")
    ),
    "cli-sim-responder-not-callable": Cli(
        lambda c: ["sim", "--responder", "os:sep"], ("'sep' is not callable", "name a function")
    ),
    "cli-sim-responder-without-a-function": Cli(
        lambda c: ["sim", "--responder", "os"], ("module:function", "got 'os'")
    ),
    "cli-demo-no-rows": Cli(lambda c: ["demo", "--rows", "0"], ("'0' rows", "1 to 2,000 reviews", "--rows N")),
    "cli-demo-negative-rows": Cli(lambda c: ["demo", "--rows", "-5"], ("'-5' rows", "1 to 2,000 reviews")),
    "cli-demo-more-rows-than-it-ships": Cli(lambda c: ["demo", "--rows", "2001"], ("'2001' rows", "1 to 2,000")),
}


@pytest.fixture
def ctx(tmp_path):
    sim = make_sim()
    batchkit.set_default_client(sim.client())  # anything that slipped through would reach it
    store = str(tmp_path / "jobs.sqlite3")
    pd.DataFrame({"t": ["a", "b"]}).claude.batch("{t}", store=store, poll_interval=0.01)
    job = batchkit.jobs(store)["job_id"][0]
    return sim, Ctx(tmp_path, store, job, sim.client())


def sent(sim) -> tuple[int, int, int]:
    stats = sim.stats()
    return stats["batches_created"], stats["batch_requests_received"], stats["messages_answered"]


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_gets_a_clear_error_and_sends_nothing(name, ctx, capsys):
    sim, c = ctx
    case = CASES[name]
    before = sent(sim)
    if isinstance(case, Api):
        with pytest.raises(BatchkitError) as caught:
            case.run(c)
        assert isinstance(caught.value, case.error), repr(caught.value)
        message = str(caught.value)
    else:
        capsys.readouterr()
        assert main(case.argv(c)) == 2
        captured = capsys.readouterr()
        message = captured.err.strip()
        assert message.startswith("batchkit: ") and "\n" not in message, captured.err
        assert "Traceback" not in captured.err
    for word in case.words:
        assert word in message, f"{word!r} not in {message!r}"
    assert sent(sim) == before
    assert not c.missing.exists() and not c.missing.parent.exists()  # reading never creates a store
    existing = c.tmp / "existing.csv"
    if existing.exists():
        assert existing.read_text() == "precious\n"  # never clobbered


def test_the_table_is_big_enough():
    assert len(CASES) >= 25


# --------------------------------------------------------------------------- escaping in HTML views


def test_html_views_escape_strings_from_the_user_or_the_api(ctx):
    _, c = ctx
    hostile = "<script>alert(1)</script>"
    cost = JobCost(hostile, CostBreakdown(), 1, 0, 1.0)
    assert hostile not in cost._repr_html_() and "&lt;script&gt;alert(1)&lt;/script&gt;" in cost._repr_html_()
    job = pd.DataFrame({"t": [hostile]}).claude.submit("{t}", output="<img src=x onerror=alert(1)>", store=c.store)
    job.wait()
    for view in (job._repr_html_(), job.cost._repr_html_()):
        assert "<img" not in view and "<script" not in view
    assert "&lt;img src=x onerror=alert(1)&gt;" in job._repr_html_()
