"""``ddf.claude``: Dask DataFrames through one job per partition, on a local cluster.

The cluster's workers are separate processes; the simulator lives in-process in the test (the
client's side), so a worker could not reach it even if it tried: every request the simulator
counts came from the client process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from batchkit import (
    BatchkitWarning,
    BudgetExceededError,
    ColumnCollisionError,
    InvalidOptionError,
    MissingColumnError,
    OutputPathError,
    UnknownOptionError,
)
from batchkit.core.options import Options
from batchkit.frontends.dask import PartitionCall, _plan_partition
from batchkit.simulator import Processing, SimConfig, Simulator, spawn
from tests.conftest import child_env, make_sim, run_script

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
ROWS = 40
PARTS = 4


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.Client]:
    """Two single-threaded worker processes, with no API credentials in their environment."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("ANTHROPIC_"):
                mp.delenv(name)
        mp.setenv("PYTHONPATH", str(ROOT))
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", worker_dashboard_address=None
            ) as local,
            distributed.Client(local) as client,
        ):
            yield client


def texts(n: int = ROWS) -> pd.DataFrame:
    # Row 3 repeats row 0 (one request for both), row 5 has no text (skipped, never sent).
    t = [f"row {i}" for i in range(n)]
    t[3], t[5] = t[0], None
    return pd.DataFrame({"t": pd.array(t, dtype="string"), "n": range(n)}, index=pd.RangeIndex(100, 100 + n))


def frame_of(pdf: pd.DataFrame, parts: int = PARTS) -> dd.DataFrame:
    return dd.from_pandas(pdf, npartitions=parts)


def counts(sim: Simulator) -> tuple[int, int]:
    stats = sim.stats()
    return stats["batches_created"], stats["batch_requests_received"]


# --------------------------------------------------------------------------- registration


@pytest.mark.parametrize("first", ["batchkit", "dask"])
def test_ddf_claude_whichever_was_imported_first_and_batchkit_alone_imports_no_dask(first):
    code = textwrap.dedent(f"""
        import sys
        if {first!r} == "batchkit":
            import batchkit
            assert "dask" not in sys.modules and "dask.dataframe" not in sys.modules, "batchkit imported dask"
            import dask.dataframe as dd
        else:
            import dask.dataframe as dd
            import batchkit
        import pandas as pd
        ddf = dd.from_pandas(pd.DataFrame({{"t": ["a", "b"]}}), npartitions=1)
        print(type(ddf.claude).__name__, type(ddf["t"].claude).__name__, hasattr(pd.DataFrame, "claude"))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, env=env, timeout=300
    )  # importing dask and batchkit takes a while on a busy machine
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["DaskFrameAccessor", "DaskSeriesAccessor", "True"]


# --------------------------------------------------------------------------- batch on a cluster


def test_batch_answers_every_row_by_key_and_recomputing_makes_no_api_call(cluster, tmp_path):
    sim = make_sim()
    client = sim.client()
    pdf = texts()
    store = tmp_path / "jobs.sqlite3"
    out = frame_of(pdf).claude.batch("Echo {t}", client=client, store=store, poll_interval=0.01, progress=False)
    assert counts(sim) == (PARTS, ROWS - 2)  # one batch per partition; the repeat and the missing row not sent

    assert isinstance(out, dd.DataFrame)
    got = out.compute()
    assert list(got.index) == list(pdf.index)
    assert got["response"].dtype == "string"
    assert dict(out.dtypes) == dict(got.dtypes)  # the meta is what the partitions hold
    expected = [
        "re:Echo " + t if t is not None else None for t in pdf["t"].astype(object).where(pdf["t"].notna(), None)
    ]
    assert got["response"].astype(object).where(got["response"].notna(), None).tolist() == expected
    pd.testing.assert_frame_equal(got[["t", "n"]], pdf)

    # Again, partly, and the whole call once more: all answered from the store.
    assert out.head(3)["response"].tolist() == expected[:3]
    out.compute()
    again = frame_of(pdf).claude.batch("Echo {t}", client=client, store=store, poll_interval=0.01, progress=False)
    pd.testing.assert_frame_equal(again.compute(), got)
    assert counts(sim) == (PARTS, ROWS - 2)


def test_workers_get_the_plan_without_the_rows_and_hold_no_client(cluster):
    pdf = texts(8)
    call = PartitionCall("Echo {t}", "response", "text", Options.build({}), None, "/nowhere/jobs.sqlite3")
    planned = _plan_partition(pdf, call)
    assert getattr(planned, "frame", None) is None
    assert len(planned.plan.row_keys) == 8 and planned.options.run.client is None

    def worker_client() -> str:
        from batchkit import NoCredentialsError
        from batchkit.backends import clients as backend

        try:
            backend.resolve_client(None)
        except NoCredentialsError:
            return "none"  # a worker could not call the API if it tried
        return "has one"

    assert set(cluster.run(worker_client).values()) == {"none"}


def test_classify_and_extract_give_the_pandas_dtypes_with_a_matching_meta(cluster, tmp_path):
    sim = Simulator(config=SimConfig(processing=Processing.instant()))  # answers that follow the schema
    client = sim.client()
    ddf = frame_of(texts(12), parts=3)
    kw = {"client": client, "store": tmp_path / "s.sqlite3", "poll_interval": 0.01, "progress": False}

    labelled = ddf.claude.classify("Which one: {t}", labels=["a", "b"], output="which", **kw)
    got = labelled.compute()
    assert isinstance(got["which"].dtype, pd.CategoricalDtype)
    assert list(got["which"].cat.categories) == ["a", "b"]
    assert isinstance(labelled.dtypes["which"], pd.CategoricalDtype)
    assert got["which"].notna().sum() == 11 and set(got["which"].dropna()) <= {"a", "b"}

    fields = ddf.claude.extract("Fields of {t}", {"size": int, "name": str}, prefix="x_", **kw)
    got = fields.compute()
    assert str(got["x_size"].dtype) == "Int64" and got["x_name"].dtype == "string"
    assert dict(fields.dtypes) == dict(got.dtypes)
    assert got["x_size"].notna().sum() == 11
    created = counts(sim)
    fields.head(2)
    assert counts(sim) == created


def test_a_cascade_runs_on_worker_processes_and_sends_what_pandas_sends(cluster, tmp_path):
    sim = Simulator(config=SimConfig(processing=Processing.instant()))  # answers with a confidence
    kw = {"client": sim.client(), "store": tmp_path / "s.sqlite3", "poll_interval": 0.01, "progress": False}
    args = {"labels": ["a", "b"], "output": "which", "cascade": ["claude-haiku-4-5", "claude-sonnet-4-6"], **kw}
    out = frame_of(texts(12), parts=3).claude.classify("Which one: {t}", threshold=0.55, **args)
    got = out.compute()  # each partition's cascade attached in a worker process, from the store
    assert dict(out.dtypes) == dict(got.dtypes)
    assert got["which"].notna().sum() == 11 and got["which_why"].notna().all()  # row 5 skipped, and says so
    assert set(got["which_model"].dropna()) == {"claude-haiku-4-5", "claude-sonnet-4-6"}  # stage 2: some rows
    sent = counts(sim)
    with pytest.warns(BatchkitWarning, match="1 skipped"):  # pandas: the same requests
        again = texts(12).claude.classify("Which one: {t}", threshold=0.55, **args)
    assert counts(sim) == sent
    pd.testing.assert_frame_equal(got.drop(columns="t"), again.drop(columns="t"))


def test_series_claude_reuses_what_the_same_prompt_over_the_frame_paid_for(cluster, tmp_path):
    sim = make_sim()
    kw = {"client": sim.client(), "store": tmp_path / "s.sqlite3", "poll_interval": 0.01, "progress": False}
    ddf = frame_of(texts())
    frame_answers = ddf.claude.batch("Echo {t}", **kw).compute()["response"]
    created = counts(sim)

    answers = ddf["t"].claude.batch("Echo {}", **kw)
    assert isinstance(answers, dd.Series) and answers.name == "t" and answers.dtype == "string"
    got = answers.compute()
    pd.testing.assert_series_equal(got, frame_answers.rename("t"))
    assert counts(sim) == created  # the same requests: answered from the store
    assert ddf["t"].claude.batch("Echo {}", output="echo", **kw).name == "echo"
    assert ddf["t"].claude.estimate("Echo {}", store=kw["store"]).requests == 0


# --------------------------------------------------------------------------- to_parquet


def test_to_parquet_writes_each_partition_and_needs_no_store_afterwards(cluster, tmp_path):
    sim = make_sim()
    pdf = texts()
    store = tmp_path / "jobs.sqlite3"
    out = frame_of(pdf).claude.batch(
        "Echo {t}",
        client=sim.client(),
        store=store,
        poll_interval=0.01,
        progress=False,
        to_parquet=tmp_path / "answers",
    )
    files = sorted(p.name for p in (tmp_path / "answers").iterdir())
    assert files == [f"part.{i:05d}.parquet" for i in range(PARTS)]
    store.unlink()  # the dataset holds the answers itself
    got = out.compute()
    assert len(got) == ROWS and got["response"].notna().sum() == ROWS - 1
    assert got["response"].iloc[0] == "re:Echo row 0" and pd.isna(got["response"].iloc[5])
    assert got["response"].dtype == "string"

    # Again into the same folder in fewer partitions: the old part files are replaced, none left over.
    created = counts(sim)
    again = frame_of(pdf, parts=2).claude.batch(
        "Echo {t}",
        client=sim.client(),
        store=tmp_path / "other.sqlite3",
        poll_interval=0.01,
        progress=False,
        to_parquet=tmp_path / "answers",
    )
    assert sorted(p.name for p in (tmp_path / "answers").iterdir()) == ["part.00000.parquet", "part.00001.parquet"]
    pd.testing.assert_frame_equal(again.compute(), got)
    assert counts(sim)[0] == created[0] + 2  # a new store knows no answer: each partition sent once


def test_to_parquet_refuses_a_folder_of_other_files_before_any_call(cluster, tmp_path):
    sim = make_sim()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputPathError, match="give a new or empty folder"):
        frame_of(texts()).claude.batch(
            "Echo {t}", client=sim.client(), store=tmp_path / "s.sqlite3", progress=False, to_parquet=tmp_path / "mine"
        )
    with pytest.raises(OutputPathError, match="is a file"):
        frame_of(texts()).claude.batch(
            "Echo {t}",
            client=sim.client(),
            store=tmp_path / "s.sqlite3",
            progress=False,
            to_parquet=tmp_path / "mine" / "notes.txt",
        )
    assert counts(sim) == (0, 0)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "where", ["/proc/x", "/proc/batchkit/answers", "notes.txt/answers"], ids=["proc", "proc-nested", "under-a-file"]
)
def test_to_parquet_that_cannot_be_written_is_refused_before_any_call(cluster, tmp_path, where):
    """The README promises OutputPathError for a to_parquet= batchkit cannot write: not a raw
    FileNotFoundError once the partitions are planned."""
    sim = make_sim()
    (tmp_path / "notes.txt").write_text("keep me")
    target = where if where.startswith("/") else tmp_path / where
    with pytest.raises(OutputPathError, match=r"cannot be written .*give a folder this process can create"):
        frame_of(texts()).claude.batch(
            "Echo {t}", client=sim.client(), store=tmp_path / "s.sqlite3", progress=False, to_parquet=target
        )
    assert counts(sim) == (0, 0)
    assert not [p.name for p in tmp_path.iterdir() if "probe" in p.name]  # the write probe is gone
    assert (tmp_path / "notes.txt").read_text() == "keep me"


# --------------------------------------------------------------------------- checks before any call


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.batch("Echo {missing}"), MissingColumnError),
        (lambda c: c.batch("Echo {t}", output="n"), ColumnCollisionError),
        (lambda c: c.batch("Echo {t}", max_tokns=5), UnknownOptionError),
        (lambda c: c.classify("Echo {t}", labels=["a", "b"], mode_typo=1), UnknownOptionError),
        (lambda c: c.extract("Echo {t}", {"n": int}), ColumnCollisionError),
        (lambda c: c.estimate("Echo {t}", sample_answers=5), InvalidOptionError),  # each partition would pay a sample
    ],
)
def test_bad_calls_raise_before_anything_is_computed_or_sent(tmp_path, call, error):
    sim = make_sim()
    from batchkit import set_default_client

    set_default_client(sim.client())
    with pytest.raises(error):
        call(frame_of(texts()).claude)
    assert counts(sim) == (0, 0)


def test_max_cost_guards_the_whole_frame_not_each_partition(tmp_path):
    sim = make_sim()
    ddf = frame_of(texts())
    whole = ddf.claude.estimate("Echo {t}", max_tokens=1000).upper_bound("batch")
    with pytest.raises(BudgetExceededError):  # each partition alone is under it; the frame is not
        ddf.claude.batch(
            "Echo {t}",
            max_tokens=1000,
            max_cost=whole * 0.6,
            client=sim.client(),
            store=tmp_path / "s.sqlite3",
            progress=False,
        )
    with pytest.raises(BudgetExceededError):
        ddf.claude.submit(
            "Echo {t}", max_tokens=1000, max_cost=whole * 0.6, client=sim.client(), store=tmp_path / "s.sqlite3"
        )
    assert counts(sim) == (0, 0)
    out = ddf.claude.batch(
        "Echo {t}",
        max_tokens=1000,
        max_cost=whole * 1.01,
        client=sim.client(),
        store=tmp_path / "s.sqlite3",
        progress=False,
        poll_interval=0.01,
    )
    assert out["response"].count().compute() == ROWS - 1


# --------------------------------------------------------------------------- estimate / submit


def test_estimate_adds_up_the_partitions_and_counts_answered_rows_free(tmp_path):
    pdf = texts()
    store = tmp_path / "s.sqlite3"
    whole = pdf.claude.estimate("Echo {t}", store=store, cache=False)
    parts = frame_of(pdf).claude.estimate("Echo {t}", store=store, cache=False)
    assert (parts.rows, parts.rows_skipped, parts.requests) == (whole.rows, whole.rows_skipped, whole.requests)
    assert parts.input_tokens == whole.input_tokens
    assert parts["batch"].typical == pytest.approx(whole["batch"].typical)

    sim = make_sim()
    frame_of(pdf).claude.batch("Echo {t}", client=sim.client(), store=store, poll_interval=0.01, progress=False)
    after = frame_of(pdf).claude.estimate("Echo {t}", store=store, cache=False)
    assert after.requests == 0 and after.already_answered == ROWS - 2 and after["batch"].upper_bound == 0


def test_submit_returns_the_run_at_once_and_batch_then_reuses_it(tmp_path):
    sim = make_sim()
    kw = {"client": sim.client(), "store": tmp_path / "s.sqlite3", "poll_interval": 0.01}
    run = frame_of(texts()).claude.submit("Echo {t}", **kw)
    run.wait()
    assert counts(sim) == (PARTS, ROWS - 2)
    out = frame_of(texts()).claude.batch("Echo {t}", progress=False, **kw)
    assert out.compute()["response"].notna().sum() == ROWS - 1
    assert counts(sim) == (PARTS, ROWS - 2)


# --------------------------------------------------------------------------- crash recovery

CHILD = (
    textwrap.dedent("""
    import sys
    import anthropic, pandas as pd, dask.dataframe as dd
    import batchkit
    base_url, store = sys.argv[1], sys.argv[2]
    client = anthropic.Anthropic(base_url=base_url, api_key="sk-sim-test")
    ddf = dd.from_pandas(pd.DataFrame({"t": [f"row {i}" for i in range(ROWS)]}), npartitions=PARTS)
    out = ddf.claude.batch("Echo {t}", client=client, store=store, poll_interval=0.05, progress=False)
    print("ANSWERED", int(out["response"].count().compute()))
""")
    .replace("ROWS", str(ROWS))
    .replace("PARTS", str(PARTS))
)


def run_child(base_url: str, store: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_script(CHILD, base_url, store, crash_at=crash_at, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_create", "polling", "run_part_output"])
def test_a_run_killed_mid_way_resumes_without_a_duplicate_batch(tmp_path, point):
    store = str(tmp_path / "jobs.sqlite3")
    with spawn(processing=Processing(fixed_latency=0.3, per_request=0.0)) as sim:
        crashed = run_child(sim.base_url, store, crash_at=point)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        resumed = run_child(sim.base_url, store)
        assert resumed.returncode == 0, resumed.stderr
        assert f"ANSWERED {ROWS}" in resumed.stdout
        stats = sim.stats()
    assert stats["batches_created"] == PARTS  # the killed partition's batch was adopted, not created again
    assert stats["batch_requests_received"] == ROWS
    assert stats["duplicate_custom_ids_answered"] == 0


# --------------------------------------------------------------------------- the example


def test_the_dask_example_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "dask_local.py"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=child_env(BATCHKIT_STORE=str(tmp_path / "jobs.sqlite3")),
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "answered 2,000 of 2,000 rows" in done.stdout
    assert "second compute: 0 new batches" in done.stdout
