"""Estimates that hold: output from the schema, cache hits from priming and size, calibration, the guard."""

from __future__ import annotations

import pandas as pd
import pytest

import batchkit
from batchkit import BudgetExceededError, CalibrationError
from batchkit.costs.pricing import cache_hit_range, schema_output_tokens
from batchkit.simulator import SimConfig, Simulator
from tests.conftest import DATA

LABELS = ["negative", "neutral", "positive"]
TWEET = "Classify the sentiment of this tweet: {text}"
INSTRUCTIONS = (
    " ".join(
        f"Guideline {i}: read the whole text, weigh its overall meaning over isolated words, treat irony by its "
        f"intent, and ignore spelling, slang and emoticons that do not change the meaning."
        for i in range(1, 121)
    )
    + "\n\n"
)


@pytest.fixture(scope="module")
def tweets() -> pd.DataFrame:
    return pd.read_csv(DATA / "tweeteval_sentiment_val.csv")


@pytest.fixture(scope="module")
def companies() -> pd.DataFrame:
    return pd.read_csv(DATA / "sp500_constituents.csv")


@pytest.fixture
def client():
    return Simulator(config=SimConfig(time_scale=50.0)).client()


def test_classify_and_extract_estimates_take_the_answer_length_from_the_labels_and_schema(tweets, companies):
    labelled = tweets.claude.estimate(TWEET, labels=LABELS, model="claude-haiku-4-5")
    assert labelled.output_bound == 5 and labelled.max_tokens == 256 and labelled.output_basis == "schema"
    assert not labelled.typical_output_assumed and "from the output schema" in str(labelled)
    assert labelled["batch"].upper_bound <= 1.1 * labelled["batch"].typical
    extracted = companies.claude.estimate("About {Security}:", schema={"city": str, "founded": int})
    assert extracted.output_bound == 1024 and extracted.typical_output_tokens < 20  # a free string: no bound
    bounded = companies.claude.estimate("About {Security}:", schema={"founded": int, "public": bool})
    assert bounded.output_bound <= 12


def test_the_schema_bounds_the_answer():
    labels = {"type": "object", "properties": {"label": {"type": "string", "enum": LABELS}}, "required": ["label"]}
    shortest, typical, longest = schema_output_tokens(labels)
    assert longest == 5 and 4 <= shortest <= typical <= longest  # {"label":"positive"} is 20 bytes
    free = {"type": "object", "properties": {"city": {"type": "string"}, "year": {"type": "integer"}}}
    assert schema_output_tokens(free)[2] is None  # a free string: max_tokens bounds it
    capped = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10}, "ok": {"type": "boolean"}}}
    assert schema_output_tokens(capped)[2] == 16  # {"city":"<up to 40 bytes>","ok":false}: 62 bytes
    many = {
        "type": "object",
        "properties": {"labels": {"type": "array", "uniqueItems": True, "items": {"enum": LABELS}}},
    }
    assert schema_output_tokens(many)[2] == 12  # all three labels at most


def test_cache_hits_follow_priming_and_the_batch_size():
    assert cache_hit_range(10_000, primed=True) == (0.9, 1.0, 1.0)
    small, large = cache_hit_range(50, primed=False), cache_hit_range(20_000, primed=False)
    assert small[1] == 0.0 and large[1] == pytest.approx(0.995) and large[0] > 0.97


def test_classify_estimate_holds_and_the_guard_passes_at_one_and_a_half_times_the_actual(tweets, client, tmp_path):
    kwargs = dict(
        labels=LABELS, model="claude-haiku-4-5", client=client, output="predicted", progress=False, poll_interval=0.02
    )
    out = tweets.claude.classify(TWEET, store=tmp_path / "a.sqlite3", **kwargs)
    cost = batchkit.Job.of(out).cost
    assert cost.estimate is not None
    e = cost.estimate
    assert e.low - 1e-9 <= cost.total <= e.high + 1e-9, cost
    assert abs(e.typical / cost.total - 1) <= 0.25, cost
    # the old estimate ($0.40–$1.36 for $0.10) refused such a budget; this one does not
    assert e.upper_bound <= 1.5 * cost.total
    again = tweets.claude.classify(TWEET, store=tmp_path / "b.sqlite3", max_cost=1.5 * cost.total, **kwargs)
    assert again["predicted"].notna().all()
    with pytest.raises(BudgetExceededError, match="max_cost"):
        tweets.claude.classify(TWEET, store=tmp_path / "c.sqlite3", max_cost=0.5 * cost.total, **kwargs)


def test_extract_estimate_holds_and_calibration_narrows_it_to_ten_percent(companies, client, tmp_path):
    prompt = "About {Security}, founded {Founded}, based in {Headquarters Location}:"
    schema = {"city": str, "state": str, "founded_year": int}
    common = dict(model="claude-haiku-4-5", client=client, progress=False, poll_interval=0.02)
    store = tmp_path / "jobs.sqlite3"
    sample = companies.sample(100, random_state=0)
    sample.claude.extract(prompt, schema, store=store, **common)
    sample_job = batchkit.Job.load(batchkit.jobs(store=store)["job_id"].iloc[0], store=store)
    from batchkit.core.options import Options
    from batchkit.core.structured import extract_spec
    from batchkit.engine import calls

    spec = extract_spec(schema)
    options = Options.build(
        {"model": "claude-haiku-4-5", "max_tokens": 1024, "client": client, "store": store}, verb="estimate"
    )
    options = Options(
        options.params.with_output_format(spec.output_config, verb="extract"), options.run, options.estimate
    )
    call = calls.prepare(companies, prompt, output="city", options=options, kind="extract", output_spec=spec)
    uncalibrated = calls.estimate(call)
    assert uncalibrated.output_basis == "schema" and uncalibrated.requests == 403  # the sample's rows are answered
    import dataclasses

    calibrated_options = Options(
        options.params, dataclasses.replace(options.run, calibrate=sample_job), options.estimate
    )
    calibrated = calls.estimate(dataclasses.replace(call, options=calibrated_options))
    assert calibrated.calibrated_on is not None and sample_job.job_id in calibrated.calibrated_on
    assert "Calibrated on job" in " ".join(calibrated.notes) and "calibrated on" in str(calibrated)
    span = calibrated["batch"].high - calibrated["batch"].low
    assert span < uncalibrated["batch"].high - uncalibrated["batch"].low
    assert calibrated["batch"].upper_bound < uncalibrated["batch"].upper_bound / 5  # the guard's bound, calibrated
    out = companies.claude.extract(prompt, schema, store=store, **common)
    actual = batchkit.Job.of(out).cost
    assert actual.requests_paid == 403
    assert abs(uncalibrated["batch"].typical / actual.total - 1) <= 0.25
    assert abs(calibrated["batch"].typical / actual.total - 1) <= 0.10
    assert calibrated["batch"].low <= actual.total <= calibrated["batch"].high


def test_a_primed_estimate_is_not_ten_times_its_typical_figure(tweets):
    guess = tweets.claude.estimate(
        INSTRUCTIONS + TWEET, model="claude-haiku-4-5", max_tokens=20, cache="prime", typical_output_tokens=3
    )
    cost = guess["batch+1h"]
    assert guess.cached_prefix_tokens > 4096 and guess.hit_rate == (0.9, 1.0)
    assert cost.upper_bound < 4 * cost.typical, guess


def test_calibrating_on_another_prompt_is_refused(tweets, client, tmp_path):
    job = (
        tweets.head(20)
        .claude.submit("Say something about: {text}", client=client, store=tmp_path / "j.sqlite3", poll_interval=0.02)
        .wait()
    )
    with pytest.raises(CalibrationError, match="same prompt"):
        tweets.claude.estimate(TWEET, client=client, store=tmp_path / "j.sqlite3", calibrate=job)
    guess = tweets.claude.estimate(
        "Say something about: {text}", client=client, store=tmp_path / "j.sqlite3", calibrate=job
    )
    assert guess.requests == 1980 and guess.output_basis == "measured"


def test_the_budget_guard_uses_the_calibrated_bound_for_free_text(companies, client, tmp_path):
    prompt = "Describe {Security} ({Symbol}), of {Headquarters Location}, in one short sentence."
    common = dict(model="claude-haiku-4-5", client=client, progress=False, poll_interval=0.02)
    whole = companies.claude.batch(prompt, store=tmp_path / "whole.sqlite3", **common)
    budget = 1.5 * batchkit.Job.of(whole).cost.total
    store = tmp_path / "jobs.sqlite3"
    sample_job = companies.sample(100, random_state=0).claude.submit(prompt, store=store, **common).wait()
    with pytest.raises(BudgetExceededError, match="1,024 tokens long"):  # every answer at max_tokens
        companies.claude.batch(prompt, store=store, max_cost=budget, **common)
    out = companies.claude.batch(prompt, store=store, max_cost=budget, calibrate=sample_job, **common)
    cost = batchkit.Job.of(out).cost
    assert out["response"].notna().all() and cost.requests_paid == 403 and cost.total <= budget
    assert cost.estimate is not None and cost.estimate.upper_bound <= budget


# --------------------------------------------------------------------------- free text, and a paid sample

SUMMARY = "Summarise this review in one sentence: {document}"
"""The issue's call: on 1,500 reviews with max_tokens=80 the old range ($0.1034–$0.3270) sat above
the actual ($0.0716): its low end took answers a quarter of max_tokens long."""
SHIPPED = {  # dataset → (file, read options, {verb: call arguments})
    "nsmc": (
        "nsmc_sample.tsv",
        {"sep": "\t", "quoting": 3},
        {
            "batch": {"prompt": SUMMARY, "max_tokens": 80},
            "classify": {"prompt": "Sentiment of this movie review: {document}", "labels": ["positive", "negative"]},
            "extract": {
                "prompt": "From this movie review: {document}",
                "schema": {"sentiment": str, "aspect": str, "recommends": bool},
            },
        },
    ),
    "tweets": (
        "tweeteval_sentiment_val.csv",
        {},
        {
            "batch": {"prompt": "Summarise this tweet in one sentence: {text}", "max_tokens": 80},
            "classify": {"prompt": TWEET, "labels": LABELS},
            "extract": {"prompt": "From this tweet: {text}", "schema": {"topic": str, "mentions_person": bool}},
        },
    ),
    "sp500": (
        "sp500_constituents.csv",
        {},
        {
            "batch": {
                "prompt": "Describe {Security} ({Symbol}), of {Headquarters Location}, in one sentence.",
                "max_tokens": 80,
            },
            "classify": {
                "prompt": "Which sector is {Security} ({GICS Sub-Industry}) in?",
                "labels": [
                    "Energy",
                    "Financials",
                    "Health Care",
                    "Industrials",
                    "Information Technology",
                    "Utilities",
                    "Other",
                ],
            },
            "extract": {
                "prompt": "About {Security}, founded {Founded}, based in {Headquarters Location}:",
                "schema": {"city": str, "state": str, "founded_year": int},
            },
        },
    ),
    "synopses": (
        "nsmc_synopses.csv",
        {},
        {
            "batch": {"prompt": "Summarise this synopsis in one sentence: {synopsis}", "max_tokens": 80},
            "classify": {"prompt": "Genre of this film: {synopsis}", "labels": ["drama", "action", "comedy", "other"]},
            "extract": {"prompt": "From this synopsis: {synopsis}", "schema": {"protagonist": str, "setting": str}},
        },
    ),
}


def _run(frame: pd.DataFrame, verb: str, args: dict, **common) -> batchkit.Job:
    args = dict(args)
    prompt = args.pop("prompt")
    if verb == "classify":
        out = frame.claude.classify(prompt, labels=args.pop("labels"), **args, **common)
    elif verb == "extract":
        out = frame.claude.extract(prompt, args.pop("schema"), **args, **common)
    else:
        out = frame.claude.batch(prompt, **args, **common)
    return batchkit.Job.of(out)


@pytest.mark.parametrize("verb", ["batch", "classify", "extract"])
@pytest.mark.parametrize("dataset", list(SHIPPED))
def test_on_the_shipped_data_the_actual_is_inside_the_range_and_twenty_answers_calibrate_to_ten_percent(
    dataset, verb, tmp_path
):
    name, read, calls = SHIPPED[dataset]
    frame = pd.read_csv(DATA / name, **read)
    sim = Simulator(config=SimConfig(time_scale=50.0))
    common = dict(model="claude-haiku-4-5", client=sim.client(), progress=False, poll_interval=0.02)
    args = dict(calls[verb])
    prompt = args.pop("prompt")

    # Uncalibrated: free text's range runs from one-token answers to max_tokens, its typical a prior.
    prior = frame.claude.estimate(prompt, store=tmp_path / "a.sqlite3", **args, **common)
    actual = _run(frame, verb, calls[verb], store=tmp_path / "a.sqlite3", **common).cost.total
    assert prior["batch"].low <= actual <= prior["batch"].high, (prior, actual)
    if verb == "batch":
        assert prior.typical_output_assumed and "a prior: not measured" in str(prior)
        assert prior["batch"].high == prior["batch"].upper_bound  # every answer max_tokens long

    # Twenty rows answered in realtime first: their cost shown, their answers reused by the run.
    store = tmp_path / "b.sqlite3"
    sampled = frame.claude.estimate(prompt, store=store, sample_answers=20, **args, **common)
    assert sampled.sample_answers == 20 and sampled.already_answered == 20 and sampled.output_basis == "measured"
    assert sampled.sample_cost > 0 and f"20 rows answered in realtime ({sampled.sample_job}) for $" in str(sampled)
    run = _run(frame, verb, calls[verb], store=store, **common)
    assert run.cost.requests_paid == sampled.requests  # the sample's answers are not paid again
    figures = sampled["batch"]
    assert figures.low <= run.cost.total <= figures.high, (sampled, run.cost.total)
    assert abs(figures.typical / run.cost.total - 1) <= 0.10, (sampled, run.cost.total)


def test_a_sample_of_answers_is_paid_once_and_the_run_sends_only_the_rest(tweets, tmp_path):
    sim = Simulator(config=SimConfig(time_scale=50.0))
    common = dict(client=sim.client(), store=tmp_path / "jobs.sqlite3", max_tokens=80)
    frame = tweets.head(300)
    first = frame.claude.estimate("Summarise this tweet in one sentence: {text}", sample_answers=20, **common)
    again = frame.claude.estimate("Summarise this tweet in one sentence: {text}", sample_answers=20, **common)
    assert again.sample_job == first.sample_job and again.sample_cost == first.sample_cost
    assert (
        sim.stats()["messages_answered"] == 20 and sim.stats()["batches_created"] == 0
    )  # the same cell re-run pays nothing
    job = frame.claude.submit("Summarise this tweet in one sentence: {text}", poll_interval=0.02, **common).wait()
    assert sim.stats()["messages_answered"] == 20 and job.cost.requests_paid == first.requests == 280
    sample = batchkit.Job.load(first.sample_job, store=tmp_path / "jobs.sqlite3")
    assert sample.cost.total == pytest.approx(first.sample_cost)
