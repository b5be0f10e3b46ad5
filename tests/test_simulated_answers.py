"""Simulated answers a user can believe, and that say they are simulated.

The default responder's labels go through batchkit's real request path (rendered by
``df.claude``, sent through the SDK, merged back); the progress views say where answers come from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

import batchkit  # noqa: F401  (registers df.claude)
from batchkit.display.progress import Snapshot, render_html, render_text, snapshot
from batchkit.simulator import Processing, SimConfig, Simulator

DATA = Path(__file__).resolve().parent.parent / "data"
PROMPT = (
    "Classify the sentiment of this movie review as positive or negative. Answer with one word.\n\nReview: {document}"
)


@pytest.fixture
def client():
    c = Simulator(SimConfig(processing=Processing.instant())).client()
    yield c
    c.close()


def test_korean_reviews_are_labelled_mostly_right(client) -> None:
    """The figure the simulator's README states (≥ 70% on NSMC), through df.claude.batch and classify."""
    reviews = pd.read_csv(DATA / "nsmc_sample.tsv", sep="\t", quoting=3)
    gold = reviews["label"].map({0: "negative", 1: "positive"}).to_numpy()
    text = reviews.claude.batch(
        PROMPT, output="s", model="claude-haiku-4-5", max_tokens=5, client=client, progress=False, poll_interval=0.01
    )["s"]
    assert (text.to_numpy() == gold).mean() >= 0.70
    held_out = slice(1000, 2000)  # rows not looked at while the lexicon was written
    assert (text.to_numpy()[held_out] == gold[held_out]).mean() >= 0.70
    labels = reviews.claude.classify(
        "Review: {document}",
        labels=["negative", "positive"],
        output="s",
        model="claude-haiku-4-5",
        client=client,
        progress=False,
        poll_interval=0.01,
    )["s"]
    assert (labels.astype(str).to_numpy() == gold).mean() >= 0.70


def test_english_tweets_beat_the_majority_class(client) -> None:
    tweets = pd.read_csv(DATA / "tweeteval_sentiment_val.csv")
    out = tweets.claude.classify(
        "Tweet: {text}",
        labels=["negative", "neutral", "positive"],
        output="s",
        model="claude-haiku-4-5",
        client=client,
        progress=False,
        poll_interval=0.01,
    )["s"]
    accuracy = (out.astype(str) == tweets["label_name"]).mean()
    majority = tweets["label_name"].value_counts(normalize=True).iloc[0]
    assert accuracy >= majority + 0.10
    assert set(out.astype(str)) == {"negative", "neutral", "positive"}


def test_the_progress_views_say_the_answers_are_simulated(client) -> None:
    job = pd.DataFrame({"t": ["great film", "awful film"]}).claude.submit(
        "Sentiment: {t}", client=client, poll_interval=0.01
    )
    job.wait()
    snap = snapshot(job)
    assert snap.simulated
    assert "simulator, not Claude" in render_text(snap) and "ANTHROPIC_API_KEY" in render_text(snap)
    assert "batchkit-simulated" in render_html(snap) and "simulator, not Claude" in job._repr_html_()
    real = dataclasses.replace(snap, simulated=False)  # a job on the real API says nothing of the kind
    assert "simulator" not in render_text(real) and "batchkit-simulated" not in render_html(real)


def test_a_snapshot_built_by_hand_is_not_simulated() -> None:
    snap = Snapshot(
        "job_1",
        "claude-haiku-4-5",
        "out",
        "running",
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        None,
        10,
        {"pending": 10},
        {},
    )
    assert not snap.simulated and "simulator" not in render_text(snap)


def test_the_notebooks_say_their_answers_are_simulated() -> None:
    import json

    for path in sorted((DATA.parent / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        intro = "".join(cells[0]["source"])
        assert "**simulated**" in intro and "not Claude" in intro and "ANTHROPIC_API_KEY" in intro, path.name


def test_batchkit_and_a_plain_sdk_script_get_the_same_answers(client) -> None:
    """The issue's case: the same prompt sent by batchkit (its own key order, in a batch) and by
    a plain script (``{"role", "content"}``, one by one) must not get different simulated labels."""
    reviews = pd.read_csv(DATA / "nsmc_sample.tsv", sep="\t", quoting=3).head(60)
    ours = reviews.claude.batch(
        PROMPT, output="s", model="claude-haiku-4-5", max_tokens=5, client=client, progress=False, poll_interval=0.01
    )["s"].tolist()
    theirs = [
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": PROMPT.format(document=text)}]
        )
        .content[0]
        .text
        for text in reviews["document"]
    ]
    assert ours == theirs
