"""Classify 2,000 tweets with Dask on a local cluster — against batchkit's local simulator.

    python examples/dask_local.py [OUT_DIR]

The tweets go to a Parquet dataset of 4 partitions, as a large dataset would sit on disk. Each
partition is rendered into requests on the cluster's workers; this process alone sends them (one
job per partition) and keeps the answers in its job store. The result is a lazy Dask DataFrame
that reads its answers from the store by key: computing it again sends nothing. With
``to_parquet=`` the answered partitions are written out as they finish instead.

Drop ``batchkit.start_simulator()`` and set ``ANTHROPIC_API_KEY`` to run it on Anthropic's API.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
from distributed import Client, LocalCluster

import batchkit

DATA = Path(__file__).resolve().parent.parent / "data" / "tweeteval_sentiment_val.csv"
LABELS = ["negative", "neutral", "positive"]


def main(out: Path) -> None:
    server = batchkit.start_simulator(time_scale=60)  # the local Anthropic API (a minute a second), used below
    dd.from_pandas(pd.read_csv(DATA), npartitions=4).to_parquet(out / "tweets")

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster):
        tweets = dd.read_parquet(out / "tweets")
        print(tweets.claude.estimate("Sentiment of this tweet: {text}", labels=LABELS, output="sentiment"))

        labelled = tweets.claude.classify(
            "Sentiment of this tweet: {text}", labels=LABELS, output="sentiment", progress=False
        )
        answered = int(labelled["sentiment"].count().compute())
        print(f"answered {answered:,} of {len(tweets):,} rows")
        print(labelled["sentiment"].value_counts().compute().to_string())

        # The lazy result reads the store by key: computing it again, or head(), pays nothing.
        before = server.simulator.stats()["batches_created"]
        labelled.head()
        labelled.compute()
        print(f"second compute: {server.simulator.stats()['batches_created'] - before} new batches")

        # For results larger than memory, or workers that cannot reach the store: write as they come.
        written = tweets.claude.classify(
            "Sentiment of this tweet: {text}",
            labels=LABELS,
            output="sentiment",
            progress=False,
            to_parquet=out / "labelled",
        )
        print(f"wrote {written.npartitions} partitions to {out / 'labelled'}")
        print(written.head(3)[["text", "sentiment"]].to_string())
    server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="batchkit-dask-")))
