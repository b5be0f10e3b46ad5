"""The ``batchkit`` console script.

=====================================  ===============================================
``batchkit demo``                      a real batch through the SDK on the local simulator
``batchkit sim [--port N …]``          serve the simulator (same flags as
                                       ``python -m batchkit.simulator``)
``batchkit jobs``                      every job in the store, newest first
``batchkit status JOB``                one job's rows by status and its batches
``batchkit wait JOB``                  block until the job has every answer
``batchkit cancel JOB``                cancel the job's running batches
``batchkit results JOB -o FILE``       write outcomes and answers to .csv or .parquet
=====================================  ===============================================

Every command but ``demo`` and ``sim`` takes ``--store PATH`` (default: ``BATCHKIT_STORE``,
then the standard location) and talks to the API configured by the environment
(``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sim":
        from .simulator.__main__ import main as sim_main

        return int(sim_main(argv[1:]) or 0)
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error, not a traceback, for known failures
        from .errors import BatchkitError

        if isinstance(exc, BatchkitError):
            print(f"batchkit: {exc}", file=sys.stderr)
            return 1
        raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batchkit", description="Claude Message Batches for pandas")
    sub = parser.add_subparsers(title="commands")

    demo = sub.add_parser("demo", help="run a real batch through the SDK on the local simulator")
    demo.add_argument("--rows", type=int, default=300, help="how many reviews to classify (default 300)")
    demo.add_argument("--model", default="claude-sonnet-4-6")
    demo.add_argument("--store", help="job store path (default: a fresh temporary one)")
    demo.set_defaults(func=_demo)

    sub.add_parser("sim", help="serve the local Anthropic API simulator (see --help of it)")

    for name, func, text in (
        ("jobs", _jobs, "list every job in the store"),
        ("status", _status, "show one job's rows by status and its batches"),
        ("wait", _wait, "wait until a job has every answer"),
        ("cancel", _cancel, "cancel a job's running batches"),
        ("results", _results, "write a job's outcomes and answers to a file"),
    ):
        cmd = sub.add_parser(name, help=text)
        if name != "jobs":
            cmd.add_argument("job", help="the job id (see `batchkit jobs`)")
        cmd.add_argument("--store", help="job store path")
        if name == "results":
            cmd.add_argument("-o", "--output", required=True, help="a .csv or .parquet file")
        cmd.set_defaults(func=func)
    return parser


def _jobs(args: argparse.Namespace) -> int:
    from .jobs import jobs

    frame = jobs(args.store)
    if frame.empty:
        print("no jobs in the store")
    else:
        print(frame.to_string(index=False))
    return 0


def _status(args: argparse.Namespace) -> int:
    from .jobs import Job

    job = Job.load(args.job, store=args.store)
    print(f"{job.job_id}  {job.status}  model={job.model}  created={job.created_at}")
    print(job.summary())
    batches = job.batches()
    if not batches.empty:
        print(batches[["api_id", "state", "attempt", "n_requests", "created_at", "ended_at"]].to_string(index=False))
    return 0


def _wait(args: argparse.Namespace) -> int:
    from .jobs import Job

    job = Job.load(args.job, store=args.store).wait()
    print(f"{job.job_id}: {job.summary()}")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from .jobs import Job

    job = Job.load(args.job, store=args.store).cancel()
    print(f"{job.job_id} canceled: {job.summary()}")
    return 0


def _results(args: argparse.Namespace) -> int:
    from .jobs import Job

    job = Job.load(args.job, store=args.store)
    frame = job.to_frame().join(job.outcomes().set_axis(pd.RangeIndex(len(job.row_keys), name="row")))
    path = Path(args.output)
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".csv":
        frame.to_csv(path)
    else:
        print("batchkit: -o must end in .csv or .parquet", file=sys.stderr)
        return 2
    print(f"wrote {len(frame):,} rows of job {job.job_id} to {path}")
    return 0


# --------------------------------------------------------------------------- demo


def _demo(args: argparse.Namespace) -> int:
    import batchkit  # noqa: F401  (registers df.claude)

    from .local import start_simulator

    reviews = load_reviews(args.rows)
    store = args.store or str(Path(tempfile.mkdtemp(prefix="batchkit-demo-")) / "jobs.sqlite3")
    server = start_simulator()
    sim = server.simulator
    print(f"batchkit demo — local Anthropic API simulator at {server.base_url}, job store {store}\n")
    print(f"{len(reviews):,} Korean movie reviews (NSMC), e.g.:")
    print(reviews.head(3).to_string(index=False), "\n")

    prompt = (
        "Classify the sentiment of this movie review as positive or negative. "
        "Answer with one word.\n\nReview: {document}"
    )
    started = time.monotonic()
    estimate = reviews.claude.estimate(prompt, output="sentiment", model=args.model, max_tokens=5, store=store)
    print(estimate, "\n")
    job = reviews.claude.submit(prompt, output="sentiment", model=args.model, max_tokens=5, store=store)
    print(f"submitted job {job.job_id}: {len(job.row_keys):,} rows → {len(set(job.row_keys)):,} requests")
    last = None
    while not job.done:
        batches = job.batches()
        line = ", ".join(f"{b.api_id or '(creating)'} {b.state}" for b in batches.itertuples())
        if line != last:
            print(f"  {time.monotonic() - started:5.1f}s  {line}")
            last = line
        time.sleep(0.1)
    job.wait()
    out = job.to_frame(reviews)
    print(f"  {time.monotonic() - started:5.1f}s  ended: {job.summary()}\n")
    print(out[["document", "label", "sentiment"]].head(8).to_string(index=False), "\n")
    outcomes = job.outcomes()
    print("tokens used:", {c: int(outcomes[c].sum()) for c in ("input_tokens", "output_tokens")})
    print("cost:", job.cost, "\n")

    before = sim.stats()["batches_created"]
    calls_before = api_calls(sim.stats())
    again = reviews.claude.batch(prompt, output="sentiment", model=args.model, max_tokens=5, store=store)
    assert again["sentiment"].equals(out["sentiment"])
    calls = api_calls(sim.stats()) - calls_before
    print(
        f"re-ran the same call: same {len(again):,} answers from the store, "
        f"{sim.stats()['batches_created'] - before} new batches, {calls} API calls."
    )
    server.stop()
    return 0


def api_calls(stats: dict) -> int:
    """API calls the simulator has answered, from its stats."""
    return sum(v for k, v in stats.items() if k.startswith(("batches.", "messages.", "models.")))


def load_reviews(rows: int) -> pd.DataFrame:
    """The NSMC Korean movie-review sample shipped in ``data/``."""
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        path = base / "data" / "nsmc_sample.tsv"
        if path.exists():
            frame = pd.read_csv(path, sep="\t", quoting=3)
            return frame.head(rows).reset_index(drop=True)
    raise FileNotFoundError("data/nsmc_sample.tsv not found: run the demo from the batchkit checkout")
