"""Classify a Parquet dataset with Polars' lazy engine, a partition at a time — against the simulator.

Run it from the repository root::

    python examples/polars_lazy.py [OUT_DIR]

It writes the sample tweets (data/tweeteval_sentiment_val.csv) as a Parquet dataset of three
files, scans it lazily, classifies every tweet into an ``Enum`` column in partitions of 500 rows
(one job each), streams the result to ``OUT_DIR/labelled.parquet``, then collects the same plan
again: the answers come from the store, with no API call.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import polars as pl

import batchkit
from batchkit.simulator import Processing

DATA = Path(__file__).resolve().parent.parent / "data"
LABELS = ["negative", "neutral", "positive"]


def main(out_dir: Path) -> pl.DataFrame:
    sim = batchkit.start_simulator(processing=Processing(fixed_latency=0.2, per_request=0.0))
    try:
        # A dataset on disk, as a pipeline would have it: several Parquet files.
        tweets = pl.read_csv(DATA / "tweeteval_sentiment_val.csv").select("id", "text", gold="label_name")
        dataset = out_dir / "tweets"
        dataset.mkdir(parents=True, exist_ok=True)
        for i, part in enumerate(tweets.iter_slices(n_rows=700)):
            part.write_parquet(dataset / f"part-{i}.parquet")

        # Nothing is read or sent here; the options and the {text} placeholder are checked now.
        plan = pl.scan_parquet(dataset / "*.parquet").claude.classify(
            "Sentiment of this tweet: {text}",
            labels=LABELS,
            output="sentiment",
            partition_rows=500,
            progress=False,
            poll_interval=0.05,
        )
        print(plan.collect_schema())

        # Collected as the file is written: a partition at a time.
        target = out_dir / "labelled.parquet"
        plan.sink_parquet(target)
        created = sim.simulator.stats()["batches_created"]
        labelled = pl.read_parquet(target)
        print(f"{labelled.height:,} tweets classified in {created} batches → {target}")
        print(labelled.group_by("sentiment").len().sort("sentiment"))
        agree = labelled.select((pl.col("sentiment").cast(pl.String) == pl.col("gold")).mean()).item()
        print(f"agreement with the gold labels: {agree:.0%} (the simulator answers by keyword)")

        # The same plan again: every answer is in the store, so no batch is created.
        again = plan.collect()
        assert again.equals(labelled) and sim.simulator.stats()["batches_created"] == created
        print("collected again: the same frame, 0 new batches")
        return labelled
    finally:
        sim.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
