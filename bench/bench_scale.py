"""Past one machine's memory: millions of rows from a Parquet dataset through each front end.

For each path — (a) Polars lazy (``pl.scan_parquet(...).claude.batch(...)`` sunk to Parquet),
(b) Dask on a local cluster (``dd.read_parquet(...).claude.batch(..., to_parquet=...)``) and, for
comparison, (c) pandas (``pd.read_parquet(...)`` then ``df.claude.batch``) — and for two sizes
(default 1,000,000 and 5,000,000 rows), a fresh client process reads the dataset, runs the call
against the simulator in its own process (queue limit 500,000 batch requests, batches that take
time), and checks that every row is answered and aligned: the simulator's responder
(``bench/_scale_responder.py``) answers each prompt with its row's number, compared with the
input's ``id`` column.

Prints per path and size: wall time, client CPU per row, peak client RSS (the Dask workers are
processes of their own, not counted; their CPU is printed apart), rows answered and aligned,
batches created, creates refused; then per path the ratio of peak memory at the large size to
the small one (target ≤ 1.2× for Polars lazy and Dask) beside the pandas path's, and for the Polars
paths the same ratio net of the ``polars-read`` peak (what the Polars target counts). For reference,
``polars-read`` reads the same plan with Polars alone (no batchkit, no API), taking 100,000-row
chunks as slowly as a run takes partitions: the memory the engine holds reading ahead; and
``polars-1scan`` is path (a) with ``POLARS_MAX_CONCURRENT_SCANS=1`` (Polars reading one file of the
dataset at a time), to show how much of that path's growth is the engine's read-ahead.

Usage: ``python bench/bench_scale.py [--rows 5000000] [--small 1000000] [--paths polars,dask,pandas]``
(pandas at 5,000,000 rows needs about 10 GB; ``--pandas-rows 1000000`` runs it at the small size only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
PROMPT = "Classify the sentiment of this movie review as positive or negative.\n\nReview: {review}"
OPTIONS = {"model": "claude-haiku-4-5", "max_tokens": 5, "poll_interval": 0.5, "progress": False}
FILE_ROWS = 250_000
"""Rows per file of the input dataset."""


def make_dataset(path: Path, rows: int) -> None:
    """``rows`` rows of real Korean review text, each tagged with its row number, as Parquet files."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = pd.read_csv(ROOT / "data" / "nsmc_sample.tsv", sep="\t", quoting=3)["document"].astype(str).tolist()
    path.mkdir(parents=True)
    for start in range(0, rows, FILE_ROWS):
        ids = range(start, min(rows, start + FILE_ROWS))
        table = pa.table(
            {
                "id": pa.array(ids, type=pa.int64()),
                "review": pa.array([f"{base[i % len(base)]} (#{i})" for i in ids], type=pa.string()),
            }
        )
        pq.write_table(table, path / f"part-{start // FILE_ROWS:05d}.parquet")


# --------------------------------------------------------------------------- the client, one path per process


def _client(base_url: str):
    import anthropic

    return anthropic.Anthropic(base_url=base_url, api_key="sk-sim-bench")


def run_pandas(base_url: str, data: Path, store: str, out: Path) -> dict:
    import pandas as pd

    import batchkit  # noqa: F401

    frame = pd.read_parquet(data)
    result = frame.claude.batch(PROMPT, output="answer", client=_client(base_url), store=store, **OPTIONS)
    answers = result["answer"]
    return {
        "rows": len(result),
        "answered": int(answers.notna().sum()),
        "aligned": int((answers == result["id"].astype("string")).sum()),
    }


def run_polars(base_url: str, data: Path, store: str, out: Path) -> dict:
    import polars as pl

    import batchkit  # noqa: F401

    lazy = pl.scan_parquet(data / "*.parquet").claude.batch(
        PROMPT, output="answer", client=_client(base_url), store=store, **OPTIONS
    )
    target = out / "polars.parquet"
    lazy.sink_parquet(target)
    checked = (
        pl.scan_parquet(target)
        .select(
            rows=pl.len(),
            answered=pl.col("answer").is_not_null().sum(),
            aligned=(pl.col("answer") == pl.col("id").cast(pl.String)).sum(),
        )
        .collect()
    )
    return {k: int(v) for k, v in checked.row(0, named=True).items()}


READ_PACE = 0.5
"""Seconds the ``polars-read`` reference path waits per partition, as the API makes a run wait."""


def run_polars_read(base_url: str, data: Path, store: str, out: Path) -> dict:
    """For reference: the same plan read by Polars alone, in 100,000-row chunks taken as slowly as
    a run takes its partitions, with no batchkit — what the engine holds reading ahead."""
    import polars as pl

    rows = 0
    for chunk in pl.scan_parquet(data / "*.parquet").collect_batches(chunk_size=100_000):
        rows += chunk.height
        time.sleep(READ_PACE)
    return {"rows": rows, "answered": rows, "aligned": rows}


def run_dask(base_url: str, data: Path, store: str, out: Path) -> dict:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import batchkit  # noqa: F401

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster),
    ):
        frame = dd.read_parquet(data)
        result = frame.claude.batch(
            PROMPT, output="answer", client=_client(base_url), store=store, to_parquet=str(out / "dask"), **OPTIONS
        )
        counts = (
            result.map_partitions(
                lambda p: (
                    p.assign(answered=p["answer"].notna(), aligned=p["answer"] == p["id"].astype("string"))[
                        ["answered", "aligned"]
                    ]
                    .sum()
                    .to_frame()
                    .T
                ),
            )
            .sum()
            .compute()
        )
        rows = len(result)
    return {"rows": int(rows), "answered": int(counts["answered"]), "aligned": int(counts["aligned"])}


PATHS = {
    "polars": run_polars,
    "polars-1scan": run_polars,
    "polars-read": run_polars_read,
    "dask": run_dask,
    "pandas": run_pandas,
}

CHILD_ENV = {"polars-1scan": {"POLARS_MAX_CONCURRENT_SCANS": "1"}}
"""A path's own environment: ``polars-1scan`` is the Polars path with Polars reading one file at a
time (its multi-file scan otherwise reads several ahead: see the README's Which front end)."""


IMPORTS = {
    "polars": ("polars",),
    "polars-1scan": ("polars",),
    "polars-read": ("polars",),
    "dask": ("dask.dataframe", "distributed"),
    "pandas": ("pandas",),
}


def child(path: str, base_url: str, data: str, store: str, out: str) -> None:
    import importlib

    for name in (*IMPORTS[path], "anthropic", "batchkit"):  # imports are not the work measured
        importlib.import_module(name)
    cpu, wall = time.process_time(), time.perf_counter()
    found = PATHS[path](base_url, Path(data), store, Path(out))
    found.update(
        wall=time.perf_counter() - wall,
        cpu=time.process_time() - cpu,
        rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        children_cpu=resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime,
    )
    print(json.dumps(found))


# --------------------------------------------------------------------------- the parent


OFFLINE = {"polars-read"}
"""Paths that make no API call."""

TARGETED = {"polars", "dask"}
"""Paths held to the issue's memory target (the others are printed for comparison)."""


def _run_child(path: str, base_url: str, data: Path, work: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, __file__, "--child", path, base_url, str(data), str(work / "store.sqlite3"), str(work)],
        capture_output=True,
        text=True,
        env={**os.environ, **CHILD_ENV.get(path, {})},
    )


def measure(path: str, rows: int, data: Path, tmp: Path, queue_limit: int) -> dict:
    from batchkit.simulator import Processing, spawn

    # 20,000 requests of a batch at a time, 1 s each: a batch of 100,000 ends 6 s after it is
    # created, so five of them fill a 500,000-request queue most of that time.
    processing = Processing(fixed_latency=1.0, per_request=1.0, concurrency=20_000)
    work = tmp / f"{path}-{rows}"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))}
    if path in OFFLINE:  # reads the data only: no simulator to start
        run, stats = _run_child(path, "", data, work), {"batches_created": 0, "faults": {}}
    else:
        with spawn(
            processing=processing,
            responder="_scale_responder:respond",
            env=env,
            extra_args=["--queue-limit", str(queue_limit)],
        ) as proc:
            run = _run_child(path, proc.base_url, data, work)
            stats = proc.stats()
    if run.returncode:
        raise SystemExit(f"{path} at {rows:,} rows failed:\n{run.stderr[-4000:]}")
    found = json.loads(run.stdout.strip().splitlines()[-1])
    found.update(batches=stats["batches_created"], refused=stats["faults"].get("queue_full", 0))
    shutil.rmtree(work, ignore_errors=True)
    return found


def _print_net(results: dict[tuple[str, int], dict], paths: list[str], small: int, rows: int) -> None:
    """The Polars paths' growth net of Polars' own read-ahead: (peak − the ``polars-read`` peak) at
    the large size over the same at the small one (target ≤ 1.2×)."""
    reads = results.get(("polars-read", small)), results.get(("polars-read", rows))
    if not all(reads):
        return
    for path in ("polars", "polars-1scan"):
        runs = results.get((path, small)), results.get((path, rows))
        if path not in paths or not all(runs):
            continue
        net_small, net_large = (r["rss_mb"] - read["rss_mb"] for r, read in zip(runs, reads, strict=True))
        ratio = net_large / net_small
        print(
            f"{path:<12} net of polars-read, {rows:,} / {small:,} rows: {ratio:.2f}× "
            f"({net_small:,.0f} → {net_large:,.0f} MB)  (target ≤ 1.2×: {'met' if ratio <= 1.2 else 'NOT met'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--pandas-rows", type=int, default=None, help="largest size pandas runs at (default --rows)")
    parser.add_argument("--paths", default="polars,polars-1scan,polars-read,dask,pandas")
    parser.add_argument("--queue-limit", type=int, default=500_000)
    parser.add_argument(
        "--child", nargs=5, metavar=("PATH", "BASE_URL", "DATA", "STORE", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    paths = [p for p in args.paths.split(",") if p]
    tmp = Path(tempfile.mkdtemp(prefix="batchkit-bench-scale-"))
    try:
        datasets = {}
        for rows in sorted({args.small, args.rows}):
            datasets[rows] = tmp / f"data-{rows}"
            make_dataset(datasets[rows], rows)
        print(
            f"input: Parquet datasets of {', '.join(f'{r:,}' for r in datasets)} rows ({FILE_ROWS:,} per file); "
            f"simulator in its own process, queue limit {args.queue_limit:,} batch requests"
        )
        print(
            f"{'path':<12}{'rows':>11}{'wall s':>9}{'client µs/row':>15}{'peak RSS MB':>13}{'workers CPU s':>15}"
            f"{'answered':>11}{'aligned':>11}{'batches':>9}{'refused':>9}"
        )
        results: dict[tuple[str, int], dict] = {}
        for path in paths:
            for rows in sorted(datasets):
                if path == "pandas" and args.pandas_rows is not None and rows > args.pandas_rows:
                    continue
                r = results[path, rows] = measure(path, rows, datasets[rows], tmp, args.queue_limit)
                print(
                    f"{path:<12}{rows:>11,}{r['wall']:>9.1f}{r['cpu'] / rows * 1e6:>15.1f}{r['rss_mb']:>13,.0f}"
                    f"{r['children_cpu']:>15.1f}{r['answered']:>11,}{r['aligned']:>11,}{r['batches']:>9}"
                    f"{r['refused']:>9}",
                    flush=True,
                )
                if r["answered"] != rows or r["aligned"] != rows:
                    print(f"  !! {path}: {rows - r['aligned']:,} rows not answered and aligned")
        print()
        for path in paths:
            small, large = results.get((path, args.small)), results.get((path, args.rows))
            if small and large:
                ratio = large["rss_mb"] / small["rss_mb"]
                target = f"  (target ≤ 1.2×: {'met' if ratio <= 1.2 else 'NOT met'})" if path in TARGETED else ""
                print(
                    f"{path:<12} peak memory {args.rows:,} / {args.small:,} rows: {ratio:.2f}× "
                    f"({small['rss_mb']:,.0f} → {large['rss_mb']:,.0f} MB){target}"
                )
        _print_net(results, paths, args.small, args.rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
