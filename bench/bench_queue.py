"""A batch job far bigger than the workspace's processing queue, end to end.

The simulator runs in its own process with a queue limit (default 200,000 batch requests, a
real tier's figure) and batches that take time to process, so the queue fills: a create over the
limit is refused with 429 and a ``retry-after`` saying when there will be room. batchkit must
finish with every row answered and no error storm — each wait one refusal, not one per planned
batch per round.

Prints: wall time, client CPU, batches created, creates refused (the simulator's count), API
calls in all, and rows answered.

``--queue-limit-setting`` also tells batchkit the limit (``queue_limit=``) instead of letting it
learn the limit from the first refusal.

Usage: ``python bench/bench_queue.py [--rows 1000000] [--queue-limit 200000] [--queue-limit-setting]``
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from batchkit.simulator import Processing, spawn

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Classify the sentiment of this movie review as positive or negative.\n\nReview: {review}"


def reviews(rows: int) -> pd.DataFrame:
    """Real Korean review text, repeated with a row number so every row is distinct."""
    base = pd.read_csv(ROOT / "data" / "nsmc_sample.tsv", sep="\t", quoting=3)["document"].astype(str)
    return pd.DataFrame({"review": [f"{base.iloc[i % len(base)]} (#{i})" for i in range(rows)]})


def api_calls(stats: dict) -> int:
    """API calls the simulator has answered, from its stats."""
    return sum(v for k, v in stats.items() if k.startswith(("batches.", "messages.", "models.")))


def child(base_url: str, rows: int, store: str, chunk_size: int, queue_limit: int | None = None) -> None:
    """Runs in a fresh process: the client's work alone."""
    import anthropic

    import batchkit  # noqa: F401

    client = anthropic.Anthropic(base_url=base_url, api_key="sk-sim-bench")
    df = reviews(rows)
    cpu, wall = time.process_time(), time.perf_counter()
    job = df.claude.submit(
        PROMPT,
        output="sentiment",
        model="claude-haiku-4-5",
        max_tokens=5,
        client=client,
        store=store,
        chunk_size=chunk_size,
        poll_interval=0.5,
        progress=False,
        **({"queue_limit": queue_limit} if queue_limit else {}),
    )
    job.wait()
    out = job.result()
    print(
        json.dumps(
            {
                "wall": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu,
                "answered": int(out["sentiment"].notna().sum()),
                "creates_refused": getattr(job.backend, "creates_refused", None),
                "status": job.status,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queue-limit", type=int, default=200_000)
    parser.add_argument("--chunk-size", type=int, default=100_000, help="requests per batch")
    parser.add_argument(
        "--queue-limit-setting",
        action="store_true",
        help="pass the limit as queue_limit= (default: batchkit learns it from a refusal)",
    )
    parser.add_argument("--child", nargs=3, metavar=("BASE_URL", "ROWS", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(
            args.child[0],
            int(args.child[1]),
            args.child[2],
            args.chunk_size,
            args.queue_limit if args.queue_limit_setting else None,
        )
        return

    # 20,000 requests of a batch at a time, 1 s each: a batch of 100,000 ends 6 s after it is
    # created, so two of them fill a 200,000-request queue most of that time
    processing = Processing(fixed_latency=1.0, per_request=1.0, concurrency=20_000)
    tmp = tempfile.mkdtemp(prefix="batchkit-bench-queue-")
    atexit.register(shutil.rmtree, tmp, True)  # its store
    print(
        f"rows: {args.rows:,}  queue limit: {args.queue_limit:,}  batches of {args.chunk_size:,} requests "
        f"({1 + args.chunk_size / 20_000:.0f} s each)"
    )
    with spawn(
        processing=processing, extra_args=["--queue-limit", str(args.queue_limit)], startup_timeout=300
    ) as proc:  # a loaded machine can take a minute to start it
        run = subprocess.run(
            [
                sys.executable,
                __file__,
                "--chunk-size",
                str(args.chunk_size),
                "--queue-limit",
                str(args.queue_limit),
                *(["--queue-limit-setting"] if args.queue_limit_setting else []),
                "--child",
                proc.base_url,
                str(args.rows),
                f"{tmp}/queue.sqlite3",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        stats = proc.stats()
    result = json.loads(run.stdout.strip().splitlines()[-1])
    refused = stats["faults"].get("queue_full", 0)
    print(
        f"{result['status']}: {result['answered']:,} of {args.rows:,} rows answered in {result['wall']:.1f}s wall "
        f"(client CPU {result['cpu']:.1f}s); {stats['batches_created']} batches created, "
        f"{refused} creates refused for want of queue room (the job counted {result['creates_refused']}), "
        f"{api_calls(stats)} API calls in all, {stats['requests_errored']} rows errored"
    )


if __name__ == "__main__":
    main()
