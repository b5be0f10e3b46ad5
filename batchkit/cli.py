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
import unicodedata
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

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
    demo.add_argument("--store", help="job store path to keep (default: a temporary one, removed at the end)")
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

DEMO_PROMPT = (
    "Classify the sentiment of this movie review as positive or negative. "
    "Answer with one word.\n\nReview: {document}"
)


def _demo(args: argparse.Namespace) -> int:
    """Classify Korean movie reviews through the real SDK on the local simulator, and say so.

    Uses a temporary job store, removed at the end, unless ``--store`` names one to keep.
    """
    import batchkit  # noqa: F401  (registers df.claude)

    from .local import start_simulator

    reviews = load_reviews(args.rows)
    with tempfile.TemporaryDirectory(prefix="batchkit-demo-") as scratch:
        store = args.store or str(Path(scratch) / "jobs.sqlite3")
        server = start_simulator()
        try:
            _demo_run(reviews, args.model, store, server)
        finally:
            server.stop()
            _close_store(store)
    where = f"kept at {args.store}" if args.store else "temporary, removed (pass --store PATH to keep one)"
    print(f"Job store: {where}.")
    return 0


def _demo_run(reviews: pd.DataFrame, model: str, store: str, server: Any) -> None:
    sim = server.simulator
    print(
        f"batchkit demo: {len(reviews):,} Korean movie reviews (NSMC) classified as Message Batches through\n"
        f"the anthropic SDK, sent to batchkit's local simulator of the Anthropic API ({server.base_url}).\n"
        "The answers are SIMULATED: a small word-list heuristic in the simulator, not Claude. They show\n"
        "how batchkit works (estimate, batches, answers, cost, re-runs), not how well Claude classifies.\n"
        "For real answers, set ANTHROPIC_API_KEY=sk-ant-... and run the same calls in Python\n"
        "(see \"Using it\" in the README); batchkit then talks to Anthropic and bills your account.\n"
    )
    print("Prompt, one request per row:")
    print(_indent(DEMO_PROMPT) + "\n")

    started = time.monotonic()
    estimate = reviews.claude.estimate(DEMO_PROMPT, output="sentiment", model=model, max_tokens=5, store=store)
    print("Before sending anything, reviews.claude.estimate(...):")
    print(_indent(str(estimate)) + "\n")

    job = reviews.claude.submit(DEMO_PROMPT, output="sentiment", model=model, max_tokens=5, store=store)
    requests = len(set(job.row_keys))
    same = len(job.row_keys) - requests
    print(f"reviews.claude.submit(...) → job {job.job_id}: {len(job.row_keys):,} rows, {requests:,} requests"
          + (f" ({same:,} duplicate review{'s' * (same != 1)} sent once)" if same else ""))
    last = None
    while not job.done:
        line = ", ".join(f"batch {b.api_id} {_BATCH_STATES.get(b.state, b.state)}" if b.api_id
                         else "a batch being created" for b in job.batches().itertuples())
        if line != last:
            print(f"  {time.monotonic() - started:5.1f} s  {line}")
            last = line
        time.sleep(0.1)
    job.wait()
    print(f"  {time.monotonic() - started:5.1f} s  ended: {job.summary()}\n")

    out = job.to_frame(reviews)
    gold = reviews["label"].map({0: "negative", 1: "positive"})
    agree = int((out["sentiment"].str.strip().str.lower() == gold).sum())
    print("Simulated answers next to the reviewers' own labels (first 10):")
    rows = [(_clip(str(d), 46), g, str(a)) for d, g, a in zip(out["document"], gold, out["sentiment"], strict=True)]
    print(_table(("review", "label", "simulated answer"), rows[:10]))
    print(f"The simulator's heuristic agrees with the labels on {agree:,} of {len(out):,} reviews "
          f"({agree / len(out):.0%}):\na figure about the simulator, not about Claude.\n")

    outcomes = job.outcomes()
    cost = job.cost
    batch = estimate["batch"]
    inside = batch.low - 1e-9 <= cost.total <= batch.high + 1e-9
    print(f"Usage: {int(outcomes['input_tokens'].sum()):,} input and {int(outcomes['output_tokens'].sum()):,} "
          f"output tokens for {cost.requests_paid:,} requests.")
    print(f"Cost at batch prices: ${cost.total:,.4f} (simulated: nothing is billed). Sent one by one to the\n"
          f"standard API it would be ${cost.standard:,.4f}, so {cost.saving:.0%} saved. The estimate above said "
          f"${batch.low:,.4f}–${batch.high:,.4f}:\nthe actual cost is {'within' if inside else 'outside'} it.\n")

    batches_before, calls_before = sim.stats()["batches_created"], api_calls(sim.stats())
    again = reviews.claude.batch(DEMO_PROMPT, output="sentiment", model=model, max_tokens=5, store=store,
                                 progress=False)
    assert again["sentiment"].equals(out["sentiment"])
    print(f"Re-run of the same call, reviews.claude.batch(...): the same {len(again):,} answers, read from the\n"
          f"job store — {sim.stats()['batches_created'] - batches_before} new batches, "
          f"{api_calls(sim.stats()) - calls_before} API calls, $0.")


_BATCH_STATES = {"in_progress": "in progress", "ended": "ended", "collected": "ended, results collected",
                 "canceling": "canceling", "failed": "refused by the API"}


def _close_store(path: str) -> None:
    """Close the demo's store so its folder can go (the store keeps one connection per path)."""
    from .store import Store

    Store.resolve(path).close()


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clip(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns, with ``…`` where it was cut."""
    text = " ".join(text.split())
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns, padded by display width so Korean text lines up."""
    widths = [max(display_width(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = []
    for row in (header, *rows):
        cells = [cell + " " * (w - display_width(cell)) for cell, w in zip(row, widths, strict=True)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def api_calls(stats: dict) -> int:
    """API calls the simulator has answered, from its stats."""
    return sum(v for k, v in stats.items() if k.startswith(("batches.", "messages.", "models.")))


def demo_data_path() -> Path:
    """The NSMC review sample the demo uses: shipped inside the package (``batchkit/data``), so
    the demo works after a normal install, not only from a checkout."""
    return Path(str(resources.files("batchkit") / "data" / "nsmc_sample.tsv"))


def load_reviews(rows: int) -> pd.DataFrame:
    """The first ``rows`` of the NSMC Korean movie-review sample (see ``batchkit/data/README.md``)."""
    frame = pd.read_csv(demo_data_path(), sep="\t", quoting=3)
    return frame.head(rows).reset_index(drop=True)
