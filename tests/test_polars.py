"""pl.DataFrame.claude / pl.LazyFrame.claude end to end: the real SDK against the in-process simulator."""

from __future__ import annotations

import datetime as dt
import gc
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Literal

import polars as pl
import pydantic
import pytest

import batchkit
from batchkit import (
    BatchkitWarning,
    ColumnCollisionError,
    InvalidOptionError,
    JobStateError,
    MissingColumnError,
    OptionTypeError,
    RequestTooLargeError,
    UnknownOptionError,
)
from batchkit.core.structured import ColumnType, classify_spec, extract_spec
from batchkit.engine.outcomes import ResultReader
from batchkit.engine.runs import Run
from batchkit.engine.units import Units
from batchkit.frontends.polars import dtype_of
from batchkit.simulator import Processing, SimConfig, Simulator
from tests.conftest import DATA, echo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sim():
    return Simulator(config=SimConfig(processing=Processing.instant()), responder=echo)


@pytest.fixture
def client(sim):
    return sim.client()


def api_calls(sim):
    return sum(v for k, v in sim.stats().items() if k.startswith(("batches.", "messages.", "models.")))


def run(**kwargs):
    return {"poll_interval": 0.01, "progress": False, **kwargs}


def texts(n):
    return pl.DataFrame({"t": [f"row {i}" for i in range(n)], "i": list(range(n))})


# --------------------------------------------------------------------------- DataFrame


def test_batch_adds_a_string_column_and_leaves_the_frame_alone(sim, client):
    df = pl.DataFrame({"review": ["good film", "bad film", "good film"], "stars": [5, 1, 5]})
    out = df.claude.batch("Sentiment: {review} ({stars})", output="sentiment", **run(client=client))
    assert df.columns == ["review", "stars"]
    assert out.schema == pl.Schema({"review": pl.String, "stars": pl.Int64, "sentiment": pl.String})
    assert out["sentiment"].to_list() == [
        "re:Sentiment: good film (5)",
        "re:Sentiment: bad film (1)",
        "re:Sentiment: good film (5)",
    ]
    assert sim.stats()["batch_requests_received"] == 2  # the repeated row once


def test_a_null_cell_skips_its_row_and_its_answer_stays_null(sim, client):
    df = pl.DataFrame({"t": ["a", None, "c"], "n": [1, 2, None]})
    with pytest.warns(BatchkitWarning, match="2 skipped"):
        out = df.claude.batch("{t} {n}", **run(client=client))
    assert out["response"].to_list() == ["re:a 1", None, None]
    assert sim.stats()["batch_requests_received"] == 1


def test_integers_render_as_integers_even_with_nulls_in_their_column(client):
    df = pl.DataFrame({"n": [1, None, 30]}).with_columns(t=pl.lit("x"))
    with pytest.warns(BatchkitWarning, match="skipped"):
        out = df.claude.batch("{t}{n}", **run(client=client))
    assert out["response"].to_list() == ["re:x1", None, "re:x30"]


def test_a_callable_prompt_gets_each_row_as_a_dict(client):
    df = pl.DataFrame({"name": ["Ada", "Bob"], "age": [36, 41]})
    seen = []

    def ask(row):
        seen.append(type(row))
        return None if row["name"] == "Bob" else f"{row['name']} is {row['age']}"

    with pytest.warns(BatchkitWarning, match="1 skipped"):
        out = df.claude.batch(ask, **run(client=client))
    assert out["response"].to_list() == ["re:Ada is 36", None]
    assert all(issubclass(t, dict) for t in seen)


def test_submit_returns_the_job_and_result_builds_the_frame(sim, client):
    df = texts(5)
    job = df.claude.submit("{t}", output="o", client=client, poll_interval=0.01)
    assert isinstance(job, batchkit.Job)
    out = df.claude.result(job.wait())
    assert out["o"].to_list() == [f"re:row {i}" for i in range(5)]
    calls = api_calls(sim)
    again = df.claude.result(job.job_id)  # by id, from the store: no API call
    assert again.equals(out) and api_calls(sim) == calls
    with pytest.raises(JobStateError, match="has 5 rows but this frame has 3"):
        df.head(3).claude.result(job)


def test_classify_gives_an_enum_of_the_labels_in_their_order():
    tweets = pl.read_csv(DATA / "tweeteval_sentiment_val.csv").head(60)
    labels = ["positive", "neutral", "negative"]
    client = Simulator(config=SimConfig(processing=Processing.instant())).client()
    out = tweets.claude.classify(
        "Sentiment of this tweet: {text}", labels=labels, output="sentiment", **run(client=client)
    )
    assert out.schema["sentiment"] == pl.Enum(labels)
    assert out["sentiment"].null_count() == 0
    assert out.columns == [*tweets.columns, "sentiment"]
    multi = tweets.head(5).claude.classify(
        "{text}", labels=labels, output="tones", multi=True, reasoning=True, **run(client=client)
    )
    assert multi.schema["tones"] == pl.List(pl.Enum(labels))
    assert multi.schema["tones_reasoning"] == pl.String
    assert all(set(v) <= set(labels) for v in multi["tones"].to_list())


class Address(pydantic.BaseModel):
    city: str
    since: dt.date | None


class Company(pydantic.BaseModel):
    sector: str
    founded: int | None
    revenue: float
    public: bool
    listed: dt.date
    updated: dt.datetime
    size: Literal["small", "large"]
    tags: list[str]
    hq: Address


def company(params):
    """An answer that depends on the row, so a misplaced one shows; one row off-schema."""
    text = str(params["messages"][0]["content"])
    if "Broken" in text:
        return {"sector": 3}
    big = "Big" in text
    return {
        "sector": text.rsplit(" ", 1)[-1],
        "founded": 1998 if big else None,
        "revenue": 2 if big else 0.5,
        "public": big,
        "listed": "2004-08-19",
        "updated": "2024-05-01T12:30:00+02:00",
        "size": "large" if big else "small",
        "tags": ["search", "ads"] if big else [],
        "hq": {"city": "Mountain View", "since": "1999-01-02" if big else None},
    }


def test_extract_gives_nullable_typed_columns():
    df = pl.DataFrame({"name": ["Big Tech", "Small Energy", "Broken Co"]})
    client = Simulator(config=SimConfig(processing=Processing.instant()), responder=company).client()
    with pytest.warns(BatchkitWarning, match="invalid_output"):
        out = df.claude.extract("{name}", schema=Company, prefix="co_", **run(client=client))
    assert out.schema == pl.Schema(
        {
            "name": pl.String,
            "co_sector": pl.String,
            "co_founded": pl.Int64,
            "co_revenue": pl.Float64,
            "co_public": pl.Boolean,
            "co_listed": pl.Date,
            "co_updated": pl.Datetime("us", "UTC"),
            "co_size": pl.Enum(["small", "large"]),
            "co_tags": pl.List(pl.String),
            "co_hq": pl.Struct({"city": pl.String, "since": pl.Date}),
        }
    )
    big, small, broken = out.rows(named=True)
    assert big["co_sector"] == "Tech" and big["co_founded"] == 1998 and big["co_revenue"] == 2.0
    assert big["co_public"] is True and big["co_listed"] == dt.date(2004, 8, 19)
    assert big["co_updated"] == dt.datetime(2024, 5, 1, 10, 30, tzinfo=dt.UTC)
    assert big["co_size"] == "large" and big["co_tags"] == ["search", "ads"]
    assert big["co_hq"] == {"city": "Mountain View", "since": dt.date(1999, 1, 2)}
    assert small["co_founded"] is None and small["co_tags"] == [] and small["co_hq"]["since"] is None
    assert all(v is None for k, v in broken.items() if k != "name")  # failed the schema: null, not a guess


def test_estimate_prices_the_frame_before_any_paid_call(sim, client):
    df = texts(40)
    est = df.claude.estimate("Summarise: {t}", **run(client=client))
    assert isinstance(est, batchkit.CostEstimate) and est.requests == 40
    assert df.claude.estimate("{t}", labels=["a", "b"], client=client).requests == 40
    assert df.lazy().claude.estimate("{t}", schema={"x": int}, client=client).requests == 40
    assert sim.stats()["batches.create"] == 0 and sim.stats()["messages.create"] == 0


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda f, c: f.claude.batch("{missing}", client=c), MissingColumnError),
        (lambda f, c: f.claude.batch("{t}", output="t", client=c), ColumnCollisionError),
        (lambda f, c: f.claude.batch("{t}", max_tokns=5, client=c), UnknownOptionError),
        (lambda f, c: f.claude.batch("{t}", chunk_size=0, client=c), InvalidOptionError),
        (lambda f, c: f.claude.classify("{t}", labels=["only"], client=c), InvalidOptionError),
        (lambda f, c: f.claude.extract("{t}", schema={"x": complex}, client=c), InvalidOptionError),
        (lambda f, c: f.claude.extract("{t}", schema={"i": int}, client=c), ColumnCollisionError),
    ],
)
@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_bad_calls_raise_before_any_api_call(sim, client, call, error, lazy):
    frame = texts(3).lazy() if lazy else texts(3)
    with pytest.raises(error):
        call(frame, client)  # a LazyFrame: raised by the method itself, not at collect
    assert api_calls(sim) == 0


@pytest.mark.parametrize(("rows", "error"), [(0, InvalidOptionError), (2.5, OptionTypeError), ("10", OptionTypeError)])
def test_partition_rows_is_checked(client, rows, error):
    with pytest.raises(error, match="partition_rows"):
        texts(3).lazy().claude.batch("{t}", partition_rows=rows, client=client)


# --------------------------------------------------------------------------- LazyFrame


def test_a_lazy_batch_is_a_lazyframe_that_sends_nothing_until_collected(sim, client):
    out = texts(25).lazy().claude.batch("{t}", output="o", partition_rows=10, **run(client=client))
    assert isinstance(out, pl.LazyFrame)
    assert out.collect_schema() == pl.Schema({"t": pl.String, "i": pl.Int64, "o": pl.String})
    assert api_calls(sim) == 0
    frame = out.collect()
    assert frame["o"].to_list() == [f"re:row {i}" for i in range(25)]
    assert sim.stats()["batches_created"] == 3  # one job per partition: 10 + 10 + 5


def test_collecting_twice_makes_no_api_call(sim, client):
    out = texts(30).lazy().claude.batch("{t}", partition_rows=8, **run(client=client))
    first = out.collect()
    calls = api_calls(sim)
    again = out.collect()
    assert again.equals(first)
    assert api_calls(sim) == calls
    rebuilt = texts(30).lazy().claude.batch("{t}", partition_rows=8, **run(client=client))  # the same plan anew
    assert rebuilt.collect().equals(first) and api_calls(sim) == calls
    store = batchkit.Store.resolve(os.environ["BATCHKIT_STORE"])
    assert store.query("SELECT status, count(*) FROM runs GROUP BY status") == [("ended", 1)]  # one run
    texts(30).lazy().claude.batch("Again: {t}", partition_rows=8, **run(client=client)).collect()
    assert store.query("SELECT count(*) FROM runs") == [(2,)]  # another prompt: another run


def test_a_submitted_run_is_the_run_a_collect_reads_with_no_api_call(sim, client):
    lf = texts(30).lazy()
    started = lf.claude.submit("{t}", output="o", partition_rows=8, **run(client=client))
    assert isinstance(started, Run)
    assert started.wait().status == "ended" and len(started.parts) == 4
    calls = api_calls(sim)
    out = lf.claude.batch("{t}", output="o", partition_rows=8, **run(client=client)).collect()
    assert out["o"].to_list() == [f"re:row {i}" for i in range(30)]
    assert api_calls(sim) == calls


def test_lazy_equals_eager_row_for_row():
    client = Simulator(config=SimConfig(processing=Processing.instant())).client()
    tweets = pl.read_csv(DATA / "tweeteval_sentiment_val.csv").head(50)
    labels = ["negative", "neutral", "positive"]
    eager = tweets.claude.classify(
        "Sentiment: {text}", labels=labels, output="guess", reasoning=True, **run(client=client)
    )
    lazy = (
        tweets.lazy()
        .claude.classify(
            "Sentiment: {text}", labels=labels, output="guess", reasoning=True, partition_rows=7, **run(client=client)
        )
        .collect()
    )
    assert lazy.schema == eager.schema
    assert lazy.equals(eager)


def test_head_sends_only_those_rows_and_filters_and_projections_apply(sim, client):
    out = texts(40).lazy().claude.batch("{t}", output="o", partition_rows=10, **run(client=client))
    head = out.head(4).collect()
    assert head["o"].to_list() == [f"re:row {i}" for i in range(4)]
    assert sim.stats()["batch_requests_received"] == 4
    picked = out.filter(pl.col("i") % 10 == 3).select("o").collect()
    assert picked.columns == ["o"] and picked["o"].to_list() == [f"re:row {i}" for i in (3, 13, 23, 33)]


def _unreadable(series):
    raise RuntimeError("this column was read")


def test_a_projection_after_claude_reads_only_the_columns_it_needs(client):
    lf = texts(20).lazy().with_columns(extra=pl.col("i").map_batches(_unreadable, return_dtype=pl.Int64))
    out = lf.claude.batch("{t}", output="o", partition_rows=8, **run(client=client))
    assert out.select("o").collect()["o"].to_list() == [f"re:row {i}" for i in range(20)]  # extra never read
    with pytest.raises(Exception, match="this column was read"):
        out.collect()


def test_a_query_that_reads_the_plan_twice_sends_each_row_once(sim, client):
    out = texts(30).lazy().claude.batch("{t}", output="o", partition_rows=7, **run(client=client))
    both = pl.concat([out, out.with_columns(pl.col("o").str.to_uppercase())]).collect()
    assert both["o"].to_list() == [f"re:row {i}" for i in range(30)] + [f"RE:ROW {i}" for i in range(30)]
    assert sim.stats()["batch_requests_received"] == 30


def test_a_lazy_null_row_stays_null(sim, client):
    lf = pl.LazyFrame({"t": ["a", None, "c", None]})
    with pytest.warns(BatchkitWarning, match="skipped"):
        out = lf.claude.batch("{t}", partition_rows=2, **run(client=client)).collect()
    assert out["response"].to_list() == ["re:a", None, "re:c", None]
    assert sim.stats()["batch_requests_received"] == 2


def test_sink_parquet_streams_the_answers_to_a_file(tmp_path, sim, client):
    source = tmp_path / "in.parquet"
    texts(120).write_parquet(source)
    target = tmp_path / "out.parquet"
    pl.scan_parquet(source).claude.batch("{t}", output="o", partition_rows=50, **run(client=client)).sink_parquet(
        target
    )
    written = pl.read_parquet(target)
    assert written.height == 120 and written["o"].to_list() == [f"re:row {i}" for i in range(120)]
    assert sim.stats()["batches_created"] == 3


def _run_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith(("batchkit-run_", "batchkit-pipeline-"))]


def test_an_error_downstream_stops_the_run_and_leaves_no_thread(sim, client):
    out = texts(50).lazy().claude.batch("{t}", output="o", partition_rows=10, **run(client=client))
    with pytest.raises(pl.exceptions.ComputeError, match="re:row"):
        out.with_columns(pl.col("o").str.to_integer()).collect()
    gc.collect()  # Polars drops its source without closing it: the pipeline is closed when collected
    deadline = time.monotonic() + 10
    while _run_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _run_threads() == []
    assert out.collect()["o"].to_list() == [f"re:row {i}" for i in range(50)]  # the same plan runs again


def test_a_lazy_run_frees_each_partitions_job_without_waiting_for_the_garbage_collector(client):
    # A job in a reference cycle is freed only by a full collection, which a long run makes rarely
    # (its millions of keys are strings the collector does not count): 5,000,000 rows piled up
    # dozens of partitions' jobs, and the run's peak memory grew with its length.
    gc.collect()
    gc.disable()
    try:
        out = texts(60).lazy().claude.batch("{t}", output="o", partition_rows=10, **run(client=client)).collect()
        jobs_alive = sum(isinstance(o, (Units, ResultReader)) for o in gc.get_objects())
    finally:
        gc.enable()
    assert out["o"].to_list() == [f"re:row {i}" for i in range(60)]
    assert jobs_alive == 0  # each of the 6 partitions' jobs went as it was output, the collector off


def test_a_bad_row_found_at_collect_raises_naming_its_row_in_the_plan(client):
    lf = pl.LazyFrame({"t": ["x"] * 5 + ["y" * 5000]})
    with pytest.raises(RequestTooLargeError, match="row 1's request") as caught:
        lf.claude.batch("{t}", chunk_bytes=2000, partition_rows=2, **run(client=client)).collect()
    assert "row 1 of partition 2: row 5 of the plan" in caught.value.__notes__[0]


# --------------------------------------------------------------------------- types and registration


def test_column_types_map_to_natural_polars_dtypes():
    assert dtype_of(ColumnType("enum", values=(1, 2))) == pl.Int64
    assert dtype_of(ColumnType("enum", values=(1, 2.5))) == pl.Float64
    assert dtype_of(ColumnType("list", item=ColumnType("integer"))) == pl.List(pl.Int64)
    assert dtype_of(ColumnType("object")) == pl.Object
    spec = classify_spec(["b", "a"], multi=True)
    assert spec.types() == {"label": ColumnType("list", item=ColumnType("enum", values=("b", "a")))}
    assert spec.values(['{"labels": ["a"]}', None]) == {"label": [["a"], None]}
    union = extract_spec({"x": int | str})
    assert union.types() == {"x": ColumnType("object")}


IMPORT_ORDER = """
import sys
{first}
{second}
assert hasattr(pl.DataFrame({{"a": [1]}}), "claude") and hasattr(pl.LazyFrame({{"a": [1]}}), "claude")
print(type(pl.DataFrame({{"a": [1]}}).claude).__name__, type(pl.LazyFrame().claude).__name__)
"""


@pytest.mark.parametrize("polars_first", [True, False], ids=["polars-then-batchkit", "batchkit-then-polars"])
def test_the_namespace_is_registered_whichever_is_imported_first(polars_first):
    imports = ["import polars as pl", "import batchkit"]
    first, second = imports if polars_first else imports[::-1]
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", IMPORT_ORDER.format(first=first, second=second)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ClaudeFrame", "ClaudeLazyFrame"]


def test_import_batchkit_does_not_import_polars():
    code = "import sys, batchkit, pandas as pd; assert 'polars' not in sys.modules; pd.DataFrame().claude"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_lazy_example_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / "polars_lazy.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "2,000 tweets classified in 4 batches" in done.stdout
    assert "collected again: the same frame, 0 new batches" in done.stdout
    labelled = pl.read_parquet(tmp_path / "labelled.parquet")
    assert labelled.schema["sentiment"] == pl.Enum(["negative", "neutral", "positive"])
    assert labelled["sentiment"].null_count() == 0


def test_the_import_hook_registers_after_the_library_and_never_breaks_its_import(tmp_path, monkeypatch):
    from batchkit.frontends import _hooks

    (tmp_path / "fakelib_bk").mkdir()
    (tmp_path / "fakelib_bk" / "__init__.py").write_text("import sys\nREADY = True\n")
    (tmp_path / "fakefront_bk.py").write_text("import fakelib_bk\nSAW_READY = fakelib_bk.READY\n")
    (tmp_path / "brokenfront_bk.py").write_text("raise AttributeError('no register_io_source here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("fakelib_bk", "fakefront_bk", "brokenfront_bk"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    _hooks.when_imported("fakelib_bk", "fakefront_bk")
    _hooks.when_imported("fakelib_bk", "brokenfront_bk")
    assert "fakefront_bk" not in sys.modules
    with pytest.warns(BatchkitWarning, match="could not register its fakelib_bk front end"):
        import fakelib_bk  # noqa: F401  (the import under test)
    assert sys.modules["fakefront_bk"].SAW_READY  # imported once the library had fully run
    assert type(sys.modules["fakelib_bk"].__spec__.loader).__name__ == "SourceFileLoader"
    assert "fakelib_bk" not in _hooks._pending
    # The finder stays only while another library is still awaited (dask.dataframe, unless imported).
    assert (_hooks._FINDER in sys.meta_path) == bool(_hooks._pending)
    _hooks.when_imported("fakelib_bk", "fakefront_bk")  # already imported: at once, nothing pending
    assert "fakelib_bk" not in _hooks._pending
