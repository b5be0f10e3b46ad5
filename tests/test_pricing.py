"""Pricing arithmetic pinned to hand-computed figures (US dollars, prices per million tokens)."""

from __future__ import annotations

import doctest
import json
import math
import re
import typing

import numpy as np
import pandas as pd
import pytest
from anthropic.types import Model

from batchkit.costs import caching, pricing, tokens, usage
from batchkit.costs import estimate as estimate_objects
from batchkit.costs.pricing import (
    CostBreakdown,
    Price,
    break_even_hit_rate,
    break_even_rows,
    caching_savings,
    estimate_cost,
    estimate_request_tokens,
    estimate_tokens,
    kind_costs,
    load_prices,
    shared_prefix_tokens,
    usage_cost,
    usage_cost_frame,
)
from batchkit.errors import BudgetExceededError, ConfigurationError, UnknownModelError

SONNET = "claude-sonnet-4-5"  # $3 in / $15 out; 1h write $6, read $0.30; minimum cacheable 1024


def sdk_model_ids() -> list[str]:
    """Every model id the installed SDK's ``Model`` type lists (``Union[Literal[...], str]`` in
    2.10–2.17), however its Literals, Unions, ``Annotated`` and type aliases nest."""
    found: dict[str, None] = {}

    def walk(tp: object) -> None:
        tp = getattr(tp, "__value__", tp)  # a `type Model = ...` alias
        if isinstance(tp, str):
            found[tp] = None
        elif typing.get_origin(tp) is typing.Annotated:
            walk(typing.get_args(tp)[0])
        else:
            for arg in typing.get_args(tp):  # Literal values, Union members
                walk(arg)

    walk(Model)
    return list(found)


@pytest.mark.parametrize("module", [pricing, tokens, usage, caching, estimate_objects], ids=lambda m: m.__name__)
def test_docstring_examples_run(module: typing.Any) -> None:
    # pricing re-exports the other four; doctest runs a module's own docstrings only
    assert doctest.testmod(module, raise_on_error=False).failed == 0


# --------------------------------------------------------------------------- the table


def test_every_sdk_model_has_a_price() -> None:
    # Against the SDK installed, whichever release: a new SDK listing a model the table does not
    # price fails here (CI installs the newest), before a user meets UnknownModelError.
    table = load_prices()
    ids = sdk_model_ids()
    assert len(ids) >= 10, ids
    for model in ids:
        price = table.get(model)
        assert price.input > 0 and price.output > 0 and price.cache_read < price.input
        assert price.source, model
        alias = re.sub(r"-\d{8}$", "", model)
        if alias != model and alias in ids:  # a dated id is priced as the alias the SDK lists beside it
            assert table.resolve(model) == alias, model


def test_legacy_ids_and_dated_aliases_resolve_to_their_base_entry() -> None:
    table = load_prices()
    assert table.get("claude-haiku-4-5-20251001") is table.get("claude-haiku-4-5")
    assert table.get("claude-sonnet-4-20250514").input == 3.0
    assert table.get("claude-opus-4-1").output == 75.0
    assert table.get("claude-3-5-haiku-latest").cache_read == 0.08
    # a future snapshot of a priced model maps to its base id
    assert table.resolve("claude-sonnet-5-5-20261007") == "claude-sonnet-5-5"


def test_stacked_batch_cache_rates() -> None:
    table = load_prices()
    haiku = table.get("claude-haiku-4-5").rates(batch=True)
    assert haiku["cache_write_1h"] == 1.00  # 1 × 2 × 0.5
    assert haiku["cache_write_5m"] == 0.625
    assert haiku["input"] == 0.5 and haiku["output"] == 2.5


def test_per_model_cache_read_rates_are_not_a_fixed_multiplier() -> None:
    table = load_prices()
    assert table.get("claude-sonnet-5-5").cache_read == 0.10  # 0.05× of $2
    assert table.get("claude-fable-5-1").cache_read == 0.25  # 0.025× of $10
    assert table.get("claude-mythos-5-1").cache_read == 0.25
    assert table.get("claude-opus-5-5").cache_read == 0.20
    assert table.get("claude-fable-5").cache_read == 1.00  # 0.1×
    assert table.get("claude-sonnet-4-5").cache_read == 0.30


def test_minimum_cacheable_lengths() -> None:
    table = load_prices()
    assert table.get("claude-opus-4-8").min_cacheable_tokens == 4096
    assert table.get("claude-haiku-4-5").min_cacheable_tokens == 4096
    assert table.get("claude-fable-5").min_cacheable_tokens == 2048
    assert table.get("claude-sonnet-4-6").min_cacheable_tokens == 2048
    assert table.get("claude-sonnet-4-5").min_cacheable_tokens == 1024
    assert table.get("claude-opus-4-1").min_cacheable_tokens == 1024
    unknown = table.get("claude-opus-5")
    assert unknown.min_cacheable_tokens == 1024 and not unknown.min_cacheable_known


def test_uncertain_prices_are_marked_with_a_note() -> None:
    table = load_prices()
    for model in ("claude-mythos-5-2", "claude-fable-5-2", "claude-mythos-preview", "claude-haiku-5-5"):
        price = table.get(model)
        assert price.uncertain and price.note, model
    assert not table.get("claude-haiku-4-5").uncertain
    assert pricing.PRICES_AS_OF.startswith("2026-11-")


def test_table_to_frame_lists_every_model() -> None:
    table = load_prices()
    frame = table.to_frame()
    # only dated ids are left out: each is its alias's row
    for model in set(sdk_model_ids()) - set(frame.index):
        assert re.search(r"-\d{8}$", model) and table.resolve(model) in frame.index, model
    assert {"claude-haiku-4-5", "claude-opus-4-5", "claude-sonnet-4-5"} <= set(frame.index)
    assert frame.loc["claude-sonnet-5-5", "cache_read"] == 0.10


# --------------------------------------------------------------------------- unknown models, overrides


def test_unknown_model_error_says_how_to_add_a_price() -> None:
    with pytest.raises(UnknownModelError) as info:
        load_prices().get("claude-sonet-4-5")
    err = info.value
    assert isinstance(err, KeyError) and err.model == "claude-sonet-4-5"
    message = str(err)
    assert "'claude-sonet-4-5'" in message
    assert 'prices={"claude-sonet-4-5": {"input": 3.00, "output": 15.00}}' in message
    assert "load_prices(" in message
    assert "Did you mean 'claude-sonnet-4-5'" in message
    with pytest.raises(UnknownModelError):
        usage_cost({"input_tokens": 1}, "gpt-9")


def test_dict_override_for_a_new_model_derives_cache_rates() -> None:
    table = load_prices({"my-model": {"input": 2, "output": 8}})
    price = table.get("my-model")
    assert (price.cache_write_5m, price.cache_write_1h, price.cache_read) == (2.5, 4.0, 0.2)
    assert price.min_cacheable_tokens == 1024 and price.source == "user override"
    assert table.get("claude-haiku-4-5").input == 1.0  # the rest of the table is untouched
    assert load_prices().get("claude-haiku-4-5") is table.get("claude-haiku-4-5")
    assert "my-model" not in load_prices()


def test_dict_override_of_a_known_model() -> None:
    rederived = load_prices({"claude-sonnet-5-5": {"input": 1.0}}).get("claude-sonnet-5-5")
    assert (rederived.input, rederived.output, rederived.cache_read) == (1.0, 10.0, 0.1)
    assert not rederived.uncertain
    kept = load_prices({"claude-sonnet-5-5": {"min_cacheable_tokens": 512}}).get("claude-sonnet-5-5")
    assert (kept.cache_read, kept.min_cacheable_tokens) == (0.10, 512)
    explicit = load_prices({"claude-haiku-4-5": {"input": 2, "cache_read": 0.05}}).get("claude-haiku-4-5")
    assert (explicit.cache_read, explicit.cache_write_1h) == (0.05, 4.0)
    assert load_prices({"x": Price.from_input_output(1, 2)}).get("x").output == 2


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"new-model": {"input": 1}}, "needs at least 'input' and 'output'"),
        ({"new-model": {"input": 1, "output": 2, "cache_hit": 0.1}}, "unknown price field"),
        ({"new-model": {"input": -1, "output": 2}}, "must be a number >= 0"),
        ({"new-model": 3.0}, "must be a mapping"),
        ({"new-model": {"input": float("nan"), "output": 2}}, "must be a number >= 0"),
        ({"new-model": {"input": 1, "output": float("inf")}}, "must be a number >= 0"),
        ({"new-model": {"input": 1, "output": 2, "max_output_tokens": 2.5}}, "whole number of tokens"),
        ({"new-model": {"input": 1, "output": 2, "batch_multiplier": 2}}, "in \\(0, 1\\]"),
        ({"new-model": {"input": 1, "output": 2, "uncertain": "no"}}, "True or False"),
    ],
)
def test_bad_overrides_are_configuration_errors(spec: dict, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        load_prices(spec)


def test_every_current_model_has_an_output_cap_and_the_300k_beta_list_is_in_the_table() -> None:
    table = load_prices()
    for model in sdk_model_ids():
        assert table.get(model).max_output_tokens is not None, model
    assert table.get("claude-haiku-4-5").max_output_tokens == 64_000
    assert table.get("claude-opus-4-8").max_output_tokens == 128_000
    covered = {m for m in table if table.get(m).batch_output_300k}
    assert {"claude-opus-4-6", "claude-opus-5", "claude-sonnet-4-6"} <= covered
    assert not covered & {"claude-haiku-4-5", "claude-sonnet-4-5", "claude-fable-5"}
    # users extend it like any price field; numpy numbers are numbers
    price = load_prices({"new": {"input": np.float64(1), "output": 5, "max_output_tokens": np.int64(9000)}}).get("new")
    assert (price.max_output_tokens, type(price.max_output_tokens), price.input) == (9000, int, 1.0)


def test_a_missing_or_malformed_price_file_names_its_path(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match=r"nope\.json.*does not exist"):
        load_prices(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(ConfigurationError, match=r"bad\.json.*not valid JSON"):
        load_prices(bad)


def test_file_overrides_json_and_toml(tmp_path) -> None:
    as_json = tmp_path / "prices.json"
    as_json.write_text(json.dumps({"my-model": {"input": 1, "output": 5, "cache_read": 0.05}}))
    assert load_prices(as_json).get("my-model").cache_read == 0.05
    assert load_prices(str(as_json)).get("my-model").cache_write_1h == 2.0
    as_toml = tmp_path / "prices.toml"
    as_toml.write_text('[prices."my-model"]\ninput = 4\noutput = 20\nmin_cacheable_tokens = 2048\n')
    price = load_prices(as_toml).get("my-model")
    assert (price.input, price.cache_write_5m, price.min_cacheable_tokens) == (4, 5.0, 2048)
    # the prices= argument accepts a path too
    assert usage_cost({"input_tokens": 1_000_000}, "my-model", batch=False, prices=as_toml).total == 4.0


# --------------------------------------------------------------------------- tokens


def test_offline_token_estimate() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2
    assert estimate_tokens("가" * 100) == 75  # 300 UTF-8 bytes: ≈0.75 token per Korean character


def test_request_tokens_follow_the_simulators_rule() -> None:
    tool = {"name": "t", "input_schema": {"type": "object"}}
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    params = {
        "model": "claude-haiku-4-5",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "s" * 40}, {"type": "text", "text": "s" * 5}],
        "tools": [tool],
        "messages": [
            {"role": "user", "content": "u" * 8},
            {"role": "assistant", "content": [{"type": "text", "text": "a" * 9}, {"type": "image", "source": {}}]},
        ],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    }
    tool_tokens = math.ceil(len(json.dumps(tool, separators=(",", ":"))) / 4)
    schema_tokens = math.ceil(len(json.dumps(schema, separators=(",", ":"))) / 4)
    # 3 + system (10 + 2) + tool + user (4 + 2) + assistant (4 + 3 + image 0) + schema
    assert estimate_request_tokens(params) == 3 + 12 + tool_tokens + 6 + 7 + schema_tokens
    assert estimate_request_tokens({"system": "x" * 400, "messages": []}) == 103


def test_shared_prefix_ends_at_the_last_breakpoint() -> None:
    mark = {"type": "ephemeral", "ttl": "1h"}
    params = {
        "tools": [{"name": "t", "input_schema": {"type": "object"}}],
        "system": [{"type": "text", "text": "x" * 4000, "cache_control": mark}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "y" * 400, "cache_control": mark},
                    {"type": "text", "text": "row text"},
                ],
            }
        ],
    }
    tool = math.ceil(len(json.dumps(params["tools"][0], separators=(",", ":"))) / 4)
    assert shared_prefix_tokens(params) == tool + 1000 + 4 + 100
    params["messages"][0]["content"][0].pop("cache_control")
    assert shared_prefix_tokens(params) == tool + 1000
    params["system"][0].pop("cache_control")
    assert shared_prefix_tokens(params) == 0
    assert shared_prefix_tokens({**params, "cache_control": mark}) == estimate_request_tokens(params) - 3


# --------------------------------------------------------------------------- actual usage


def test_usage_cost_by_kind() -> None:
    usage = {
        "input_tokens": 1_000_000,
        "output_tokens": 1_000_000,
        "cache_creation_input_tokens": 3_000_000,
        "cache_read_input_tokens": 1_000_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1_000_000, "ephemeral_1h_input_tokens": 2_000_000},
    }
    cost = usage_cost(usage, "claude-haiku-4-5", batch=True)
    assert cost == CostBreakdown(input=0.5, output=2.5, cache_write_5m=0.625, cache_write_1h=2.0, cache_read=0.05)
    assert cost.total == pytest.approx(5.675)
    assert usage_cost(usage, "claude-haiku-4-5", batch=False).total == pytest.approx(11.35)


def test_usage_cost_with_missing_fields() -> None:
    assert usage_cost({}, SONNET).total == 0
    nones = {
        "input_tokens": 1000,
        "output_tokens": None,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
        "cache_creation": None,
    }
    assert usage_cost(nones, SONNET, batch=False).total == pytest.approx(0.003)
    # no TTL split: writes are billed as 5-minute writes
    unsplit = usage_cost({"cache_creation_input_tokens": 1_000_000}, SONNET, batch=False)
    assert (unsplit.cache_write_5m, unsplit.cache_write_1h) == (3.75, 0.0)


def test_usage_cost_accepts_sdk_usage_objects() -> None:
    from anthropic.types import Usage

    usage = Usage(input_tokens=500, output_tokens=200)
    assert usage_cost(usage, SONNET, batch=False).total == pytest.approx(0.0045)


def test_haiku_5_5_long_prompt_tier_multiplies_the_whole_request_by_five() -> None:
    short = usage_cost({"input_tokens": 100_000, "output_tokens": 1000}, "claude-haiku-5-5", batch=False)
    assert short.total == pytest.approx(100_000 * 0.10 / 1e6 + 1000 * 0.50 / 1e6)
    long = usage_cost({"input_tokens": 100_001, "output_tokens": 1000}, "claude-haiku-5-5", batch=False)
    assert long.total == pytest.approx(100_001 * 0.50 / 1e6 + 1000 * 2.50 / 1e6)
    # cache reads and writes count towards the threshold and are multiplied too
    mixed = usage_cost(
        {"input_tokens": 50_000, "cache_read_input_tokens": 60_000, "output_tokens": 0}, "claude-haiku-5-5", batch=True
    )
    assert mixed.cache_read == pytest.approx(60_000 * 0.01 * 5 * 0.5 / 1e6)
    assert mixed.input == pytest.approx(50_000 * 0.10 * 5 * 0.5 / 1e6)


def test_kind_costs_prices_each_request_in_its_own_tier() -> None:
    usage = np.array([[100_000, 1000, 0, 0, 0], [50_000, 0, 0, 0, 60_000], [0, 0, 0, 0, 0]])
    dollars = kind_costs(usage, "claude-haiku-5-5", batch=False)
    assert dollars.shape == (3, 5)
    for row, counts in zip(dollars, usage, strict=True):
        one = usage_cost(
            dict(
                zip(
                    (
                        "input_tokens",
                        "output_tokens",
                        "ephemeral_5m_input_tokens",
                        "ephemeral_1h_input_tokens",
                        "cache_read_input_tokens",
                    ),
                    counts.tolist(),
                    strict=True,
                )
            ),
            "claude-haiku-5-5",
            batch=False,
        )
        assert row.tolist() == pytest.approx(
            [one.input, one.output, one.cache_write_5m, one.cache_write_1h, one.cache_read]
        )
    assert dollars[1, 4] == pytest.approx(60_000 * 0.01 * 5 / 1e6)  # the second request is long: all of it ×5


def test_cost_breakdowns_add_and_sum() -> None:
    a, b = CostBreakdown(input=1.0, cache_read=0.5), CostBreakdown(output=2.0, cache_read=0.25)
    assert (a + b) == CostBreakdown(input=1.0, output=2.0, cache_read=0.75)
    assert sum([a, b]) == a + b and sum([a, b]).total == 3.75
    assert sum([], CostBreakdown()).total == 0
    assert "$3.75" in str(a + b)


def random_usage(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "input_tokens": rng.integers(0, 150_000, n),
            "output_tokens": rng.integers(0, 2000, n),
            "cache_creation_input_tokens": rng.integers(0, 5000, n),
            "cache_read_input_tokens": rng.integers(0, 20_000, n),
            "cache_creation.ephemeral_1h_input_tokens": rng.integers(0, 3000, n),
        }
    )
    frame["cache_creation.ephemeral_1h_input_tokens"] = np.minimum(
        frame["cache_creation.ephemeral_1h_input_tokens"], frame["cache_creation_input_tokens"]
    )
    frame = frame.astype("Int64")
    frame.loc[::5, "output_tokens"] = pd.NA
    return frame


def as_usage_dict(row: pd.Series) -> dict:
    value = {k: (None if pd.isna(v) else int(v)) for k, v in row.items() if "." not in k}
    w1 = row["cache_creation.ephemeral_1h_input_tokens"]
    value["cache_creation"] = {
        "ephemeral_1h_input_tokens": int(w1),
        "ephemeral_5m_input_tokens": int(row["cache_creation_input_tokens"] - w1),
    }
    return value


@pytest.mark.parametrize("batch", [True, False])
def test_usage_cost_frame_equals_summed_usage_cost(batch: bool) -> None:
    frame = random_usage(300)
    models = np.array(["claude-haiku-5-5", "claude-sonnet-5-5", "claude-haiku-4-5-20251001"])[np.arange(300) % 3]
    dollars = usage_cost_frame(frame, pd.Series(models), batch=batch)
    assert list(dollars.columns) == [*pricing.KINDS, "total"] and dollars.index.equals(frame.index)
    expected = [
        usage_cost(as_usage_dict(row), m, batch=batch) for (_, row), m in zip(frame.iterrows(), models, strict=True)
    ]
    for kind in pricing.KINDS:
        np.testing.assert_allclose(dollars[kind], [getattr(c, kind) for c in expected], rtol=1e-12)
    assert dollars["total"].sum() == pytest.approx(sum(expected).total, rel=1e-12)
    single = usage_cost_frame(frame, "claude-haiku-5-5", batch=batch)
    assert (single["total"] > 0).any()


def test_usage_cost_frame_handles_missing_columns_and_prefixes() -> None:
    frame = pd.DataFrame({"usage.input_tokens": [1_000_000, None], "usage.output_tokens": [0, 1_000_000]})
    dollars = usage_cost_frame(frame, SONNET, batch=False)
    assert dollars["total"].tolist() == [3.0, 15.0]
    assert dollars["cache_read"].tolist() == [0.0, 0.0]


def test_usage_cost_frame_is_vectorised() -> None:
    frame = pd.DataFrame(
        np.ones((1_000_000, 4), dtype=np.int64) * 1000,
        columns=["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"],
    )
    dollars = usage_cost_frame(frame, "claude-haiku-4-5")
    # per row, batch: 1000 × (0.5 + 2.5 + 0.625 + 0.05) / 1e6
    assert dollars["total"].sum() == pytest.approx(1_000_000 * 1000 * 3.675 / 1e6)


# --------------------------------------------------------------------------- estimates


def sonnet_estimate(**kw) -> pricing.CostEstimate:
    args = {
        "model": SONNET,
        "rows": 100_000,
        "unique_requests": 100_000,
        "input_tokens": 100_000 * 500,
        "max_tokens": 200,
        "typical_output_tokens": 200,
    }
    return estimate_cost(**{**args, **kw})


def test_standard_and_batch_figures() -> None:
    # 100,000 × (500 in × $3 + 200 out × $15) / 1e6 = $150 + $300
    estimate = sonnet_estimate()
    assert estimate["standard"].typical == 450.0 and estimate["standard"].high == 450.0
    assert estimate["batch"].typical == 225.0 and estimate.upper_bound("batch") == 225.0


def test_prefix_under_the_minimum_gives_no_caching_benefit() -> None:
    # a 1,000-token shared system prompt is under Sonnet 4.5's 1,024 minimum (and Sonnet 4.6's
    # 2,048): the API silently does not cache it, whatever a naive "90% off" calculation says.
    for model in (SONNET, "claude-sonnet-4-6"):
        estimate = sonnet_estimate(model=model, input_tokens=100_000 * 1500, shared_prefix_tokens=1000)
        assert estimate.cached_prefix_tokens == 0
        for mode in ("batch+5m", "batch+1h"):
            assert estimate[mode].typical == estimate["batch"].typical == 375.0
        assert any("under" in note and "minimum" in note for note in estimate.notes)
    saving = caching_savings(
        SONNET, rows=100_000, prefix_tokens=1000, other_input_tokens=500, output_tokens=200, hit_rate=0.98
    )
    assert not saving["cached"] and saving["saving"] == 0


def test_primed_1h_cache_in_a_batch_counts_the_write_premium() -> None:
    # 100,000 requests, each a 2,000-token shared system prompt + 500 other input + 200 output.
    # Batch rates: input $1.50, output $7.50, 1h write $3.00 (6 × 0.5), read $0.15 (0.30 × 0.5).
    # Primed (h = 1): 1 write + 99,999 reads of the prefix:
    #   write   1 × 2,000 × 3.00 / 1e6            =   0.006
    #   reads   99,999 × 2,000 × 0.15 / 1e6       =  29.9997
    #   other   100,000 × 500 × 1.50 / 1e6        =  75
    #   output  100,000 × 200 × 7.50 / 1e6        = 150
    #   total                                     = 255.0057   (vs 525 without the cache)
    primed = caching_savings(
        SONNET, rows=100_000, prefix_tokens=2000, other_input_tokens=500, output_tokens=200, hit_rate=1.0, ttl="1h"
    )
    assert primed["with_cache"] == pytest.approx(255.0057, abs=1e-9)
    assert primed["without_cache"] == pytest.approx(525.0)
    assert (primed["cache_writes"], primed["cache_reads"]) == (1, 99_999)


def test_realistic_hit_rate_saving_is_smaller_than_the_naive_calculation() -> None:
    # Best-effort hit rate h = 0.64 (middle of the documented 30%–98%):
    #   writes 36,000 × 2,000 × 3.00 / 1e6 = 216;  reads 64,000 × 2,000 × 0.15 / 1e6 = 19.2
    #   + 75 other input + 150 output                                        = 460.2
    # Naive "90% off cached tokens, ignore writes": the 36,000 misses pay plain input
    #   36,000 × 2,000 × 1.50 / 1e6 = 108;  + 19.2 + 75 + 150                  = 352.2
    # So the naive figure claims a $172.80 saving where the real one is $64.80.
    h = 0.64
    real = caching_savings(
        SONNET, rows=100_000, prefix_tokens=2000, other_input_tokens=500, output_tokens=200, hit_rate=h, ttl="1h"
    )
    assert real["with_cache"] == pytest.approx(460.2)
    naive = 100_000 * 2000 * (h * 0.15 + (1 - h) * 1.50) / 1e6 + 75 + 150
    assert naive == pytest.approx(352.2)
    assert real["with_cache"] > naive
    assert real["saving"] == pytest.approx(64.8) and real["saving"] < 525.0 - naive
    # estimate_cost uses the same model: a single hit rate makes the range collapse to it
    estimate = sonnet_estimate(input_tokens=100_000 * 2500, shared_prefix_tokens=2000, hit_rate=h)
    assert estimate["batch+1h"].typical == pytest.approx(460.2)
    assert estimate["batch"].typical == pytest.approx(525.0)


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-4-8"])
@pytest.mark.parametrize("prefix", [0, 1000, 5000])
def test_estimate_ranges_are_ordered(model: str, prefix: int) -> None:
    estimate = estimate_cost(
        model=model,
        rows=5000,
        rows_skipped=10,
        unique_requests=4000,
        already_answered=500,
        input_tokens=3500 * (prefix + 300),
        shared_prefix_tokens=prefix,
        max_tokens=400,
    )
    assert estimate.requests == 3500
    for cost in estimate.modes:
        assert 0 < cost.low <= cost.typical <= cost.high <= cost.upper_bound, cost
    assert estimate["batch"].typical == pytest.approx(estimate["standard"].typical / 2)
    assert estimate.typical_output_assumed and estimate.typical_output_tokens == 100


def test_caching_modes_range_over_the_hit_rate() -> None:
    estimate = estimate_cost(
        model="claude-haiku-4-5",
        rows=10_000,
        unique_requests=10_000,
        input_tokens=10_000 * 5000,
        shared_prefix_tokens=4500,
        max_tokens=20,
        typical_output_tokens=20,
    )
    one_hour = estimate["batch+1h"]
    # Per request: 500 other input at $0.50, 20 output at $2.50; prefix 4,500 written at $1.00 (1h)
    # or read at $0.05. Low: h = 0.98 → 200 writes, 9,800 reads.
    other = 10_000 * (500 * 0.5 + 20 * 2.5) / 1e6
    assert one_hour.low == pytest.approx(other + (200 * 4500 * 1.0 + 9800 * 4500 * 0.05) / 1e6)
    assert one_hour.high == pytest.approx(other + (7000 * 4500 * 1.0 + 3000 * 4500 * 0.05) / 1e6)
    assert one_hour.upper_bound == pytest.approx(other + 10_000 * 4500 * 1.0 / 1e6)
    # at a 30% hit rate a 1h cache costs more than not caching at all — and the note says so
    assert one_hour.high > estimate["batch"].high
    assert any("costs more than no cache" in note for note in estimate.notes)


def test_already_answered_requests_cost_nothing() -> None:
    estimate = estimate_cost(
        model=SONNET, rows=10, unique_requests=8, already_answered=8, input_tokens=0, max_tokens=100
    )
    assert estimate.requests == 0
    assert all(c.upper_bound == 0 for c in estimate.modes)


def test_estimate_rejects_inconsistent_counts() -> None:
    with pytest.raises(ValueError, match="inconsistent"):
        estimate_cost(model=SONNET, rows=10, unique_requests=11, input_tokens=0, max_tokens=1)
    with pytest.raises(ValueError, match="whole number"):
        estimate_cost(model=SONNET, rows=10, unique_requests=5, input_tokens=-1, max_tokens=1)
    with pytest.raises(ValueError, match="hit_rate"):
        estimate_cost(model=SONNET, rows=1, unique_requests=1, input_tokens=1, max_tokens=1, hit_rate=(0.9, 0.1))


def test_long_tier_in_estimates() -> None:
    estimate = estimate_cost(
        model="claude-haiku-5-5",
        rows=10,
        unique_requests=10,
        input_tokens=10 * 150_000,
        max_tokens=100,
        typical_output_tokens=100,
    )
    # 1.5M input × $0.10 × 5 + 1,000 output × $0.50 × 5, standard
    assert estimate["standard"].typical == pytest.approx(1.5 * 0.5 + 0.001 * 2.5)
    assert any("long-prompt" in note for note in estimate.notes)


def test_budget_guard_raises_with_the_numbers() -> None:
    estimate = sonnet_estimate(typical_output_tokens=50)
    estimate.check_budget(225.0)  # exactly the upper bound: allowed
    with pytest.raises(BudgetExceededError) as info:
        estimate.check_budget(200.0)
    err = info.value
    assert (err.limit, err.estimate) == (200.0, 225.0)
    message = str(err)
    for figure in ("$225.00", "max_cost=$200.00", "100,000 requests", "50,000,000 input tokens", "200 tokens"):
        assert figure in message
    with pytest.raises(BudgetExceededError):
        estimate.check_budget(300.0, mode="standard")
    with pytest.raises(KeyError, match="modes are"):
        estimate.check_budget(1.0, mode="batch-ish")


def test_estimate_displays() -> None:
    estimate = sonnet_estimate(input_tokens=100_000 * 2500, shared_prefix_tokens=2000)
    page = estimate._repr_html_()
    for label in ("standard", "batch", "batch + 5m cache", "batch + 1h cache"):
        assert f">{label}<" in page
    assert "<table" in page and "$525.00" in page
    text = str(estimate)
    assert repr(estimate) == text and "batch + 1h cache" in text and "$1,050.00" in text
    frame = estimate.to_frame()
    assert list(frame.index) == list(pricing.MODES)
    assert {"low", "typical", "high", "upper_bound", "input_tokens", "output_tokens_max"} <= set(frame.columns)
    assert frame.loc["batch", "typical"] == pytest.approx(525.0)


def test_uncertain_price_is_named_in_the_estimate() -> None:
    estimate = estimate_cost(model="claude-mythos-5-2", rows=1, unique_requests=1, input_tokens=10, max_tokens=10)
    assert any("uncertain" in note for note in estimate.notes)


# --------------------------------------------------------------------------- break-even


def test_break_even_hit_rates() -> None:
    assert break_even_hit_rate(SONNET, ttl="1h") == pytest.approx(1 / 1.9)  # (2-1)/(2-0.1)
    assert break_even_hit_rate(SONNET, ttl="5m") == pytest.approx(0.25 / 1.15)
    assert break_even_hit_rate("claude-sonnet-5-5", ttl="1h") == pytest.approx(2 / 3.9)  # (4-2)/(4-0.1)


@pytest.mark.parametrize("model", [SONNET, "claude-sonnet-5-5", "claude-fable-5-1"])
@pytest.mark.parametrize("ttl", ["5m", "1h"])
@pytest.mark.parametrize("hit_rate", [1.0, 0.9, 0.6, 0.5, 0.2])
def test_break_even_rows_matches_brute_force(model: str, ttl: str, hit_rate: float) -> None:
    def pays(n: int) -> bool:
        s = caching_savings(
            model, rows=n, prefix_tokens=5000, other_input_tokens=100, output_tokens=10, hit_rate=hit_rate, ttl=ttl
        )
        return s["with_cache"] < s["without_cache"] - 1e-12

    first = next((n for n in range(1, 200) if pays(n)), None)
    assert break_even_rows(model, hit_rate=hit_rate, ttl=ttl) == first
    if first is not None:
        assert all(pays(n) for n in range(first, 200))


def test_savings_curves() -> None:
    by_prefix = pricing.savings_vs_prefix(SONNET, rows=1000, other_input_tokens=500, output_tokens=100, hit_rate=0.9)
    assert by_prefix.index.name == "prefix_tokens" and 1023 in by_prefix.index and 1024 in by_prefix.index
    assert by_prefix.loc[1023, "saving"] == 0 and by_prefix.loc[1024, "saving"] > 0
    by_rows = pricing.savings_vs_rows(
        SONNET, prefix_tokens=2000, other_input_tokens=500, output_tokens=100, hit_rate=1.0, rows_range=[1, 2, 3, 10]
    )
    assert (by_rows["saving"] > 0).tolist() == [False, False, True, True]


def test_savings_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="ttl"):
        caching_savings(
            SONNET, rows=1, prefix_tokens=2000, other_input_tokens=0, output_tokens=0, hit_rate=0.5, ttl="24h"
        )
    with pytest.raises(ValueError, match="hit_rate"):
        caching_savings(SONNET, rows=1, prefix_tokens=2000, other_input_tokens=0, output_tokens=0, hit_rate=1.5)


def test_offline_counts_agree_with_the_simulator() -> None:
    # The simulator bills by the same rule; if either side changes, estimates stop matching usage.
    params_mod = pytest.importorskip("batchkit.simulator._params")
    mark = {"type": "ephemeral", "ttl": "1h"}
    params = {
        "model": "claude-haiku-4-5",
        "max_tokens": 10,
        "tools": [{"name": "t", "input_schema": {"type": "object"}, "cache_control": mark}],
        "system": [{"type": "text", "text": "시스템 " * 300, "cache_control": mark}],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "x" * 99, "cache_control": mark}, {"type": "text", "text": "row"}],
            }
        ],
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
    }
    analysis = params_mod.analyze(
        params, version="2026-10-21", in_batch=True, reject_sampling=True, model_known=lambda _model: True
    )
    assert analysis.input_tokens == estimate_request_tokens(params)
    assert analysis.breakpoints[-1][0] == shared_prefix_tokens(params)


def test_the_issue_case_a_1000_token_system_prompt_cached_1h_in_a_batch() -> None:
    # A Sonnet-class model at $3/$15 whose minimum cacheable length admits 1,000 tokens (the real
    # Sonnet 4.5 needs 1,024 — see the test above). 100,000 requests of a 1,000-token shared
    # system prompt + 500 other input + 200 output, 1h TTL, batch rates: input $1.50, output $7.50,
    # 1h write $3.00, read $0.15.
    #   primed (1 write):   0.003 + 99,999 × 1,000 × 0.15 / 1e6 (14.99985) + 75 + 150 = 240.00285
    #   at h = 0.64:        36,000 writes × 1,000 × 3.00 / 1e6 = 108 + reads 9.6 + 75 + 150 = 342.6
    #   naive (90% off the cached share, writes ignored): 36,000 × 1,000 × 1.50 / 1e6 = 54
    #                       + 9.6 + 75 + 150 = 288.6 — overstates the saving by $54.
    prices = {"sonnet-class": {"input": 3.0, "output": 15.0, "min_cacheable_tokens": 1000}}
    common = dict(rows=100_000, prefix_tokens=1000, other_input_tokens=500, output_tokens=200, ttl="1h", prices=prices)
    plain = estimate_cost(
        model="sonnet-class",
        rows=100_000,
        unique_requests=100_000,
        input_tokens=100_000 * 1500,
        max_tokens=200,
        typical_output_tokens=200,
        prices=prices,
    )
    # 100,000 × (1,500 in × $3 + 200 out × $15) / 1e6 = 450 + 300; the batch pays half
    assert (plain["standard"].typical, plain["batch"].typical) == (pytest.approx(750.0), pytest.approx(375.0))
    primed = caching_savings("sonnet-class", hit_rate=1.0, **common)
    assert primed["with_cache"] == pytest.approx(240.00285)
    assert primed["without_cache"] == pytest.approx(100_000 * (1500 * 1.5 + 200 * 7.5) / 1e6)  # 375
    real = caching_savings("sonnet-class", hit_rate=0.64, **common)
    assert real["with_cache"] == pytest.approx(342.6)
    naive = 100_000 * 1000 * (0.64 * 0.15 + 0.36 * 1.50) / 1e6 + 75 + 150
    assert naive == pytest.approx(288.6) and real["with_cache"] - naive == pytest.approx(54.0)


def test_usage_cost_frame_reads_job_outcome_columns() -> None:
    outcomes = pd.DataFrame(
        {
            "input_tokens": [100],
            "output_tokens": [10],
            "cache_write_5m": [0],
            "cache_write_1h": [4000],
            "cache_read": [0],
        }
    )
    api = pd.DataFrame(
        {
            "input_tokens": [100],
            "output_tokens": [10],
            "cache_creation_input_tokens": [4000],
            "ephemeral_1h_input_tokens": [4000],
            "cache_read_input_tokens": [0],
        }
    )
    assert usage_cost_frame(outcomes, SONNET)["total"].iloc[0] == pytest.approx(
        usage_cost_frame(api, SONNET)["total"].iloc[0]
    )
    assert usage_cost_frame(outcomes, SONNET)["cache_write_1h"].iloc[0] > 0
