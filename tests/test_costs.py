"""Cost before, during and after a run: estimates, the budget guard, caching, actual cost."""

from __future__ import annotations

import pandas as pd
import pytest

import batchkit
from batchkit import BudgetExceededError
from batchkit.costs.pricing import CostEstimate, estimate_tokens
from batchkit.engine import calls
from batchkit.simulator import Processing, SimConfig, Simulator
from tests.conftest import DATA

INSTRUCTIONS = (
    "You are a careful annotator of Korean movie reviews. " * 4
    + " ".join(
        f"Guideline {i}: weigh the reviewer's overall verdict over isolated complaints, treat sarcasm by "
        f"its intent, and ignore spelling mistakes, slang and emoticons when they do not change the meaning."
        for i in range(1, 51)
    )
    + "\n\nAnswer with one label.\n\nReview: "
)


@pytest.fixture
def reviews():
    return pd.read_csv(DATA / "nsmc_sample.tsv", sep="\t", quoting=3)


def test_the_instruction_block_is_about_2500_tokens():
    assert 2300 <= estimate_tokens(INSTRUCTIONS) <= 2700


def test_prime_costs_at_most_12_percent_of_the_standard_api_and_a_rerun_costs_nothing(reviews):
    sim = Simulator(config=SimConfig(time_scale=20.0))  # default concurrency, no extra miss rate
    client = sim.client()
    kwargs = dict(
        labels=["positive", "negative"],
        model="claude-sonnet-4-6",
        max_tokens=20,
        client=client,
        cache="prime",
        poll_interval=0.02,
        output="predicted",
    )  # the data has its own "label"
    guess = reviews.claude.estimate(
        INSTRUCTIONS + "{document}",
        max_tokens=20,
        model="claude-sonnet-4-6",
        client=client,
        cache="prime",
        typical_output_tokens=10,
    )
    assert isinstance(guess, CostEstimate) and guess.token_source == "count_tokens"
    out = reviews.claude.classify(INSTRUCTIONS + "{document}", **kwargs)
    assert out["predicted"].notna().all()
    job = batchkit.Job.load(batchkit.jobs()["job_id"].iloc[0], client=client)
    cost = job.cost
    assert cost.total <= 0.12 * cost.standard, str(cost)
    assert cost.total == pytest.approx(job.outcomes()["cost"].sum())
    outcomes = job.outcomes()
    assert (outcomes["cache_read"] > 2000).sum() >= 1990  # everything after the primer read the prefix
    # (exact up to float rounding: the offline count is the simulator's own rule)
    assert cost.estimate is not None and cost.estimate.low - 1e-9 <= cost.total <= cost.estimate.high + 1e-9, str(cost)
    # A re-run: nothing sent, nothing paid.
    created = sim.stats()["batches_created"]
    again = reviews.claude.classify(INSTRUCTIONS + "{document}", **kwargs)
    assert again["predicted"].equals(out["predicted"]) and sim.stats()["batches_created"] == created


def test_auto_marks_a_long_shared_prefix_and_not_a_short_one():
    df = pd.DataFrame({"t": ["a", "b"]})
    long = calls.prepare(df, INSTRUCTIONS + "{t}", output="o", model="claude-sonnet-4-6", max_tokens=5)
    params = long.template.params("x")
    first, rest = params["messages"][0]["content"]
    assert first == {"type": "text", "text": INSTRUCTIONS, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    assert rest == {"type": "text", "text": "x"} and long.cached
    short = calls.prepare(df, "Classify: {t}", output="o", model="claude-sonnet-4-6", max_tokens=5)
    assert short.template.params("x")["messages"][0]["content"] == "x" or not short.cached
    assert "cache_control" not in short.template.prefix.decode()
    # Below the model's minimum (4096 for Haiku 4.5) nothing is marked either.
    haiku = calls.prepare(df, INSTRUCTIONS + "{t}", output="o", model="claude-haiku-4-5", max_tokens=5)
    assert not haiku.cached and "cache_control" not in haiku.template.prefix.decode()
    # A long system prompt is marked on its last block when the prompt has no shared lead.
    system = calls.prepare(df, "{t}", output="o", model="claude-sonnet-4-6", max_tokens=5, system=INSTRUCTIONS)
    assert system.template.params("x")["system"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    off = calls.prepare(df, INSTRUCTIONS + "{t}", output="o", model="claude-sonnet-4-6", max_tokens=5, cache=False)
    assert not off.cached


def test_actual_cost_counts_the_batch_discount_and_reuse():
    sim = Simulator(config=SimConfig(processing=Processing.instant()))
    df = pd.DataFrame({"t": ["one", "two", "one"]})
    job = df.claude.submit("{t}", model="claude-haiku-4-5", client=sim.client(), poll_interval=0.01).wait()
    cost = job.cost
    assert cost.requests_paid == 2 and cost.requests_reused == 0
    assert cost.total == pytest.approx(cost.standard / 2)  # no caching here: exactly the batch half
    outcomes = job.outcomes()
    assert outcomes["cost"].iloc[2] == 0 and outcomes["cost"].iloc[0] > 0  # the repeated row costs nothing more
    assert "standard API" in str(cost) and "$" in cost._repr_html_()
    # The same rows in a new call (another output name): all answered from the store, $0.
    again = df.claude.submit(
        "{t}", output="other", model="claude-haiku-4-5", client=sim.client(), poll_interval=0.01
    ).wait()
    assert again.cost.total == 0 and again.cost.requests_reused == 2


def test_estimate_counts_rows_skips_dedup_and_answered_rows():
    sim = Simulator(config=SimConfig(processing=Processing.instant()))
    df = pd.DataFrame({"t": ["a", "b", "a", None, "c"]})
    offline = df.claude.estimate("{t}", model="claude-haiku-4-5", max_tokens=10)
    assert offline.token_source == "offline"
    assert (offline.rows, offline.rows_skipped, offline.unique_requests, offline.already_answered) == (5, 1, 3, 0)
    df.iloc[:2].claude.batch("{t}", model="claude-haiku-4-5", max_tokens=10, client=sim.client(), poll_interval=0.01)
    counted = df.claude.estimate("{t}", model="claude-haiku-4-5", max_tokens=10, client=sim.client())
    assert counted.token_source == "count_tokens" and counted.already_answered == 2 and counted.requests == 1
    assert counted["batch"].typical == pytest.approx(counted["standard"].typical / 2)
    assert "batch" in counted._repr_html_() and len(counted.to_frame()) == 4


def test_budget_guard_refuses_before_any_batch_with_the_numbers():
    sim = Simulator(config=SimConfig(processing=Processing.instant()))
    df = pd.DataFrame({"t": [f"review {i} " * 50 for i in range(200)]})
    with pytest.raises(BudgetExceededError, match=r"max_cost=\$0\.01") as info:
        df.claude.batch("{t}", model="claude-opus-4-8", max_tokens=4000, client=sim.client(), max_cost=0.01)
    assert info.value.estimate > 0.01
    assert sim.stats()["batches_created"] == 0 and sim.stats()["batches.create"] == 0
    out = df.claude.batch(
        "{t}", model="claude-haiku-4-5", max_tokens=5, client=sim.client(), max_cost=5.0, poll_interval=0.01
    )
    assert out["response"].notna().all()


def test_unknown_model_runs_but_explains_how_to_price_it():
    from batchkit import UnknownModelError

    with pytest.raises(UnknownModelError, match="prices="):
        pd.DataFrame({"t": ["x"]}).claude.estimate("{t}", model="my-finetune", max_tokens=5)
