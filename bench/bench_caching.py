"""What prompt caching is worth: the same 2,000-row classification with no caching, auto, prime.

The Korean reviews sample, classified by ``claude-sonnet-4-6`` with a ~2,500-token shared
instruction block, on the simulator (default processing concurrency, no extra cache-miss rate,
clock sped up 20x so it takes seconds). For each mode it prints batchkit's own actual-cost
accounting next to the same requests sent one by one to the standard API without caching
(target for ``prime``: ≤ 12%; the ideal, every read a hit, is ~7%), and the estimate's range.

Usage: ``python bench/bench_caching.py``
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import batchkit  # noqa: E402
from batchkit.simulator import SimConfig, Simulator  # noqa: E402
from tests.test_costs import INSTRUCTIONS  # noqa: E402


def main() -> None:
    reviews = pd.read_csv(ROOT / "data" / "nsmc_sample.tsv", sep="\t", quoting=3)
    tokens = batchkit.costs.pricing.estimate_tokens(INSTRUCTIONS)
    print(f"{len(reviews):,} reviews, shared instructions ≈{tokens:,} tokens, claude-sonnet-4-6, batch API\n")
    print(f"{'cache':>7} {'actual':>10} {'standard':>10} {'share':>7}  {'estimate range':>22}  cache reads")
    for mode in (False, "auto", "prime"):
        sim = Simulator(config=SimConfig(time_scale=20.0))
        store = str(Path(tempfile.mkdtemp()) / "jobs.sqlite3")
        job = reviews.claude.submit(
            INSTRUCTIONS + "{document}",
            model="claude-sonnet-4-6",
            max_tokens=20,
            cache=mode,
            client=sim.client(),
            store=store,
            poll_interval=0.02,
        ).wait()
        cost = job.cost
        reads = int((job.outcomes()["cache_read"] > 0).sum())
        e = cost.estimate
        span = f"${e.low:,.2f}–${e.high:,.2f}" if e else "-"
        print(
            f"{mode!s:>7} ${cost.total:>9,.2f} ${cost.standard:>9,.2f} {cost.total / cost.standard:>6.1%}  {span:>22}"
            f"  {reads:,}/{len(reviews):,}"
        )
        rerun = reviews.claude.submit(
            INSTRUCTIONS + "{document}",
            model="claude-sonnet-4-6",
            max_tokens=20,
            cache=mode,
            client=sim.client(),
            store=store,
            poll_interval=0.02,
        ).wait()
        assert rerun.job_id == job.job_id and sim.stats()["batches_created"] == len(job.batches())
    print("\nA re-run of each call: same job, no new batch, $0.")


if __name__ == "__main__":
    main()
