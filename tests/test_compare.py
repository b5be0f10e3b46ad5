"""df.claude.compare: quality and cost of model × prompt variants on a sample, and the run after it."""

from __future__ import annotations

import time

import matplotlib
import numpy as np
import pandas as pd
import pytest

import batchkit
from batchkit import CalibrationError, Comparison, InvalidOptionError
from batchkit.compare import sample_positions
from batchkit.comparison import wilson_interval
from batchkit.simulator import SimConfig, Simulator
from batchkit.simulator._responder import default_responder
from tests.conftest import DATA

matplotlib.use("Agg")

LABELS = ["negative", "neutral", "positive"]
MODELS = ["claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"]
PROMPT = "Classify the sentiment of this tweet: {text}"
OTHER = "Tweet: {text}\n\nWhat is its sentiment?"


@pytest.fixture(scope="module")
def tweets() -> pd.DataFrame:
    df = pd.read_csv(DATA / "tweeteval_sentiment_val.csv")
    df["gold"] = df["label"].map(dict(enumerate(LABELS)))
    return df


@pytest.fixture
def sim() -> Simulator:
    return Simulator(config=SimConfig(time_scale=50.0))


def test_three_models_two_prompts_on_200_tweets_then_the_choice_sends_only_the_other_1800(tweets, sim):
    started = time.monotonic()
    cmp = tweets.claude.compare(PROMPT, prompts=[OTHER], task="classify", labels=LABELS, truth="gold",
                                models=MODELS, sample=200, client=sim.client(), poll_interval=0.02)
    seconds = time.monotonic() - started
    assert isinstance(cmp, Comparison) and seconds < 20, seconds
    assert len(cmp.variants) == 6 and len(cmp.positions) == 200
    # the sample goes realtime by default (answers in seconds), every variant at once; no batch
    assert sim.stats()["messages_answered"] == 6 * 200 and sim.stats()["batch_requests_received"] == 0
    table = cmp.to_frame()
    assert (table["quality_low"] < table["quality"]).all() and (table["quality"] < table["quality_high"]).all()
    assert (table["scored_rows"] == 200).all()
    # costs from the sample's real usage: batch is half of standard; bigger models cost more per row
    assert np.allclose(table["cost_per_row_batch"] * 2, table["cost_per_row_standard"])
    p1 = table[table["prompt"] == "p1"].set_index("model")
    assert p1.loc["claude-haiku-4-5", "cost_per_row_batch"] < p1.loc["claude-opus-4-7", "cost_per_row_batch"]
    assert (table["cost_per_correct_row"] > table["cost_per_row_batch"]).all()
    # the whole frame, projected: the sample's 200 rows are already answered
    v = cmp.variants[0]
    assert v.projection is not None and v.projection.requests == 1800
    assert v.projection.calibrated_on is not None and v.job.job_id in v.projection.calibrated_on
    assert table["on_front"].any() and table["recommended"].sum() == 1
    text = str(cmp)
    assert "recommended: " in text and "accuracy against 'gold'" in text and "★" in text and "✓" in text
    assert "simulated" in text  # the simulator's per-model differences are never passed off as Claude's
    assert "<table" in cmp._repr_html_() and "recommended" in cmp._repr_html_()
    # Run the recommended variant on every row: only the 1,800 rows outside the sample are sent.
    before = sim.stats()["batch_requests_received"]
    out = cmp.run(output="predicted", progress=False)
    assert sim.stats()["batch_requests_received"] - before == 1800
    assert out["predicted"].notna().all() and list(out["predicted"].cat.categories) == LABELS
    job = batchkit.Job.of(out)
    assert job.cost.requests_paid == 1800 and job.cost.requests_reused == 200
    assert job.model == cmp.recommended.model
    # and the sample's answers are the ones in the full result
    sample_answers = cmp.recommended.answers["label"].astype(str).to_numpy()
    assert (out["predicted"].astype(str).to_numpy()[cmp.positions] == sample_answers).all()


def test_the_sample_is_seeded_and_stratified_by_the_truth(tweets):
    positions = sample_positions(len(tweets), 200, strata=tweets["gold"].to_numpy(), seed=0)
    assert len(positions) == 200 and len(set(positions)) == 200 and (np.diff(positions) > 0).all()
    share = tweets["gold"].value_counts(normalize=True)
    counts = tweets["gold"].iloc[positions].value_counts()
    for label, fraction in share.items():
        assert abs(counts[label] - 200 * fraction) <= 1, (label, counts[label], 200 * fraction)
    again = sample_positions(len(tweets), 200, strata=tweets["gold"].to_numpy(), seed=0)
    other = sample_positions(len(tweets), 200, strata=tweets["gold"].to_numpy(), seed=1)
    assert (positions == again).all() and not (positions == other).all()


def test_wilson_interval_matches_the_formula():
    lo, hi = wilson_interval(160, 200)
    # p = 0.8, n = 200, z = 1.96: centre 0.8096 / 1.0192 = 0.7943, half-width 0.0552
    assert lo == pytest.approx(0.7391, abs=1e-4) and hi == pytest.approx(0.8495, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and 0 < wilson_interval(0, 10)[1] < 0.35
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0) and wilson_interval(10, 10)[0] > 0.65


def test_without_truth_quality_is_agreement_with_the_strongest_model(tweets, sim):
    cmp = tweets.claude.compare(PROMPT, task="classify", labels=LABELS, models=MODELS,
                                sample=60, client=sim.client(), poll_interval=0.02)
    assert cmp.truth is None and cmp.reference is not None and cmp.reference.model == "claude-opus-4-7"
    assert cmp.quality_label == "agreement with claude-opus-4-7 · p1"
    text = str(cmp)
    assert "AGREEMENT" in text and "not accuracy" in text and "accuracy against" not in text
    table = cmp.to_frame()
    assert table.attrs["quality"].startswith("agreement") and table["reference"].sum() == 1
    confusion = cmp.confusion("claude-haiku-4-5 · p1")
    assert confusion.to_numpy().sum() == 60 and confusion.index.name == "reference"


def test_a_target_picks_the_cheapest_variant_whose_lower_bound_meets_it(tweets, sim):
    kwargs = dict(task="classify", labels=LABELS, truth="gold", models=MODELS, sample=100, client=sim.client(),
                  poll_interval=0.02)
    easy = tweets.claude.compare(PROMPT, target=0.3, **kwargs)
    assert easy.recommended is not None and easy.recommended.interval[0] >= 0.3
    cheaper = [v for v in easy.variants if easy.cost_per_row(v) < easy.cost_per_row(easy.recommended)]
    assert all(v.interval[0] < 0.3 for v in cheaper)
    assert "at least 30%" in easy.reason
    # apply() runs the choice on another frame: only the rows the sample did not answer are sent
    head = tweets.head(300)
    before = sim.stats()["batch_requests_received"]
    out = easy.apply(head, output="predicted", progress=False)
    assert out["predicted"].notna().all()
    assert sim.stats()["batch_requests_received"] - before == 300 - int((easy.positions < 300).sum())
    before = sim.stats()["batch_requests_received"]
    hard = tweets.claude.compare(PROMPT, target=0.99, **kwargs)  # the same sample: answered from the store
    assert sim.stats()["batch_requests_received"] == before
    assert hard.recommended is None and "99%" in hard.reason and "lower target" in hard.reason
    with pytest.raises(InvalidOptionError, match="no recommended variant"):
        hard.run()


def test_extraction_has_per_field_quality_against_truth_columns(sim):
    companies = pd.read_csv(DATA / "sp500_constituents.csv")
    cmp = companies.claude.compare(
        "Which sector is {Security} in?", task="extract", schema={"sector": str}, truth={"sector": "GICS Sector"},
        models=["claude-haiku-4-5", "claude-sonnet-4-6"], sample=40, client=sim.client(), poll_interval=0.02,
    )
    table = cmp.to_frame()
    assert "quality_sector" in table.columns and (table["scored_rows"] == 40).all()
    assert table["quality"].between(0, 1).all()
    with pytest.raises(InvalidOptionError, match="per-field"):
        cmp.confusion()


def test_plot_marks_the_front_and_the_choice(tweets, sim):
    cmp = tweets.claude.compare(PROMPT, task="classify", labels=LABELS, truth="gold", models=MODELS[:2],
                                sample=50, client=sim.client(), poll_interval=0.02)
    ax = cmp.plot()
    labels = [line.get_label() for line in ax.get_lines()]
    assert "cost–quality front" in labels and "recommended" in labels
    assert ax.get_ylabel() == "accuracy" and "$ per row" in ax.get_xlabel()


def test_free_text_compare_and_estimate_calibrated_on_the_comparison(tweets, sim):
    client = sim.client()
    prompt = "Summarise this tweet in one sentence: {text}"
    cmp = tweets.claude.compare(prompt, models=["claude-haiku-4-5", "claude-opus-4-7"], sample=40,
                                max_tokens=100, client=client, poll_interval=0.02)
    assert cmp.truth is None and cmp.task == "batch"
    guess = tweets.claude.estimate(prompt, model="claude-opus-4-7", max_tokens=100, client=client,
                                   calibrate=cmp)
    assert guess.calibrated_on is not None and "claude-opus-4-7" in guess.calibrated_on
    assert guess.output_basis == "measured" and "calibrated on" in str(guess)
    with pytest.raises(CalibrationError, match="no variant with the prompt"):
        tweets.claude.estimate("Other: {text}", model="claude-opus-4-7", client=client, calibrate=cmp)


def test_simulated_models_differ_deterministically_only_where_the_text_shows_no_sentiment():
    def ask(model: str, text: str) -> str:
        return default_responder({"model": model, "max_tokens": 5, "messages": [
            {"role": "user", "content": f"Sentiment (positive, negative or neutral): {text}"}]})

    plain = [f"The meeting is on day {i} at the office." for i in range(300)]
    haiku = [ask("claude-haiku-4-5", t) for t in plain]
    opus = [ask("claude-opus-4-7", t) for t in plain]
    assert haiku == [ask("claude-haiku-4-5", t) for t in plain]  # deterministic
    guessed = {m: sum(a != "neutral" for a in answers) / len(plain) for m, answers in (("h", haiku), ("o", opus))}
    assert 0.2 < guessed["h"] < 0.5 and guessed["o"] < 0.12 and guessed["o"] < guessed["h"]
    for model in ("claude-haiku-4-5", "claude-opus-4-7"):  # a verdict with evidence is never changed
        assert ask(model, "I love it, a wonderful day") == "positive"
        assert ask(model, "Terrible, I hate it") == "negative"
