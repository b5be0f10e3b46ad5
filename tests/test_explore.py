"""df.claude.explore / estimate.explore / comparison.explore: the explorer shows the figures
estimate() gives for the same settings, in text outside a notebook and in a panel inside one,
and refuses a wrong setting before anything changes or is sent."""

from __future__ import annotations

import time

import pandas as pd
import pytest

import batchkit
from batchkit import InvalidOptionError, MissingColumnError, pricing
from batchkit.costs.usage import pct, usd
from batchkit.display.explore_widget import ExplorerPanel
from batchkit.simulator import SimConfig, Simulator
from tests.conftest import DATA

# A shared system prompt over Haiku 4.5's 4,096-token cache minimum, and rows of one length,
# so that a frame of N such rows is what the explorer's scaling describes.
SYSTEM = "You label movie reviews. " + " ".join(
    f"Rule {i}: weigh the reviewer's verdict over isolated complaints and read sarcasm by its intent."
    for i in range(400)
)
PROMPT = "Sentiment of this review: {t}"
CALL = {"system": SYSTEM, "max_tokens": 20}
FIGURES = ["low", "typical", "high", "upper_bound"]


def reviews(n: int) -> pd.DataFrame:
    return pd.DataFrame({"t": [f"review {i:08d}: a fine film, well acted" for i in range(n)]})


def figures(explorer: batchkit.CostEstimate | object, mode: str) -> list[float]:
    row = explorer.table.xs(mode, level="mode").iloc[0]  # type: ignore[attr-defined]
    return [float(row[k]) for k in FIGURES]


def of(estimate: batchkit.CostEstimate, prices: str) -> list[float]:
    cost = estimate[prices]
    return [cost.low, cost.typical, cost.high, cost.upper_bound]


@pytest.fixture(scope="module")
def explorer_and_base() -> tuple[object, batchkit.CostEstimate]:
    return reviews(200).claude.explore(PROMPT, **CALL), reviews(200).claude.estimate(PROMPT, **CALL)


def test_at_its_own_settings_the_explorer_shows_the_estimate(explorer_and_base):
    explorer, base = explorer_and_base
    explorer.set(rows=200, mode="batch", caching="auto", ttl="1h", hit_rate=None, output_tokens=None)
    assert base.cached_prefix_tokens > 4096  # the caching lines are not trivially the batch line
    assert figures(explorer, "realtime") == of(base, "standard")
    assert figures(explorer, "batch") == of(base, "batch+1h")
    table = explorer.table
    assert table.loc[(base.model, "realtime"), "finish_seconds"] == base.finish_seconds["realtime"]
    assert table.loc[(base.model, "batch"), "finish_seconds"] == base.finish_seconds["batch"]
    assert table.loc[(base.model, "batch"), "finish_max_seconds"] == base.finish_seconds["batch_max"]
    assert list(table["runs"]) == [False, True]


@pytest.mark.parametrize(
    ("settings", "asked", "prices"),
    [
        ({"rows": 3000}, {}, "batch+1h"),
        ({"rows": 3000, "caching": "prime", "ttl": "5m"}, {"cache": "prime", "cache_ttl": "5m"}, "batch+5m"),
        ({"rows": 1000, "caching": "off"}, {"cache": False}, "batch"),
        ({"rows": 1000, "hit_rate": (0.4, 0.6)}, {"hit_rate": (0.4, 0.6)}, "batch+1h"),
        ({"rows": 1500, "output_tokens": 7}, {"typical_output_tokens": 7}, "batch+1h"),
        ({"rows": 40, "caching": "prime"}, {"cache": "prime"}, "batch+1h"),
    ],
)
def test_moved_the_explorer_shows_what_estimate_gives_for_the_same_settings(explorer_and_base, settings, asked, prices):
    explorer, _ = explorer_and_base
    explorer.set(**{"rows": 200, "caching": "auto", "ttl": "1h", "hit_rate": None, "output_tokens": None, **settings})
    expected = reviews(settings["rows"]).claude.estimate(PROMPT, **CALL, **asked)
    assert figures(explorer, "batch") == pytest.approx(of(expected, prices), rel=1e-12)
    assert figures(explorer, "realtime") == pytest.approx(of(expected, "standard"), rel=1e-12)
    realtime = explorer.table.xs("realtime", level="mode").iloc[0]["finish_seconds"]
    assert realtime == pytest.approx(expected.finish_seconds["realtime"])
    assert usd(expected[prices].typical) in str(explorer)  # the text view shows the same figure


def test_another_model_is_estimated_as_estimate_would():
    explorer = reviews(300).claude.explore(PROMPT, **CALL)
    explorer.set(model="claude-sonnet-4-5", rows=300)
    expected = reviews(300).claude.estimate(PROMPT, model="claude-sonnet-4-5", **CALL)
    assert figures(explorer, "batch") == of(expected, "batch+1h")
    assert "claude-sonnet-4-5" in str(explorer)


def test_classify_prices_its_label_set_and_a_given_answer_length_like_estimate():
    labels = ["negative", "positive"]
    explorer = reviews(200).claude.explore(PROMPT, labels=labels, **CALL)
    assert figures(explorer, "batch") == of(reviews(200).claude.estimate(PROMPT, labels=labels, **CALL), "batch+1h")
    explorer.set(rows=2000, output_tokens=3)
    expected = reviews(2000).claude.estimate(PROMPT, labels=labels, typical_output_tokens=3, **CALL)
    assert figures(explorer, "batch") == pytest.approx(of(expected, "batch+1h"), rel=1e-12)


def test_auto_and_the_deadline_choose_the_line_a_job_would_run():
    explorer = reviews(200).claude.explore(PROMPT, mode="auto", **CALL)
    runs = explorer.set(rows=50).table["runs"]
    assert runs.xs("realtime", level="mode").item() and "fewer than 100" in str(explorer)
    runs = explorer.set(rows=5000).table["runs"]
    assert runs.xs("batch", level="mode").item()
    table = explorer.set(deadline_hours=0.5, rows=150).table  # realtime meets half an hour, a batch may not
    assert table["runs"].xs("realtime", level="mode").item()
    assert table["meets_deadline"].tolist() == [True, False]


def test_tens_of_millions_of_rows_price_without_rendering_a_row_again():
    explorer = reviews(200).claude.explore(PROMPT, **CALL)
    started = time.process_time()
    for rows in (1_000_000, 10_000_000, 30_000_000):
        table = explorer.set(rows=rows).table
    spent = time.process_time() - started
    assert spent < 0.5, f"three slider moves took {spent:.2f} s of CPU"
    assert table["requests"].iloc[0] == 30_000_000
    assert "30,000,000 rows" in str(explorer)


def test_the_break_even_points_are_the_cost_models():
    explorer = reviews(200).claude.explore(PROMPT, **CALL)
    even = explorer.set(ttl="1h").break_even
    assert even["hit_rate"] == pytest.approx(pricing.break_even_hit_rate("claude-haiku-4-5", ttl="1h"))
    assert even["rows"] == pricing.break_even_rows("claude-haiku-4-5", hit_rate=even["typical_hit_rate"], ttl="1h")
    assert "break-even: a 1h cache pays above a 53% hit rate" in str(explorer)
    short = reviews(200).claude.explore(PROMPT, max_tokens=20)  # no prefix long enough to cache
    assert short.break_even["hit_rate"] is None and "caching changes nothing" in str(short)


def test_a_typical_hit_rate_of_zero_is_the_break_even_points_rate():
    # 50 requests sent at once all miss a cache nobody has written yet: the typical hit rate is 0%
    # (the best case 60%), and the break-even line reads the estimate's own 0%, not the range's middle.
    explorer = reviews(200).claude.explore(PROMPT, **CALL)
    even = explorer.set(rows=50, ttl="5m").break_even
    expected = reviews(50).claude.estimate(PROMPT, **CALL, cache_ttl="5m")
    assert expected.basis["typical_hit_rate"] == 0.0 and expected.hit_rate == (0.0, pytest.approx(0.6))
    assert even["typical_hit_rate"] == 0.0
    assert even["rows"] is None  # at 0% a cache never pays (at the middle, 30%, a 5m one would)
    assert "break-even: a 5m cache pays above a 22% hit rate; at 0% it never pays" in str(explorer)


def test_estimate_explore_scales_the_estimate_and_prints_as_text():
    estimate = reviews(200).claude.estimate(PROMPT, cache="prime", **CALL)
    explorer = estimate.explore(rows=2000)
    assert explorer.settings.caching == "prime"
    expected = reviews(2000).claude.estimate(PROMPT, cache="prime", **CALL)
    assert figures(explorer, "batch") == pytest.approx(of(expected, "batch+1h"), rel=1e-12)
    text = str(explorer)
    assert text.startswith("Explorer\nclaude-haiku-4-5: 2,000 rows, mode batch, caching prime (1h)")
    assert "realtime" in text and "batch + 1h cache" in text and "◀ runs" in text


def test_the_panel_redraws_the_figures_when_a_control_moves():
    explorer = reviews(200).claude.explore(PROMPT, **CALL)
    panel = ExplorerPanel(explorer)
    panel.controls["rows"].value = 4000
    panel.controls["caching"].value = "off"
    expected = reviews(4000).claude.estimate(PROMPT, cache=False, **CALL)
    assert explorer.settings.rows == 4000 and panel.controls["rows_log"].value == pytest.approx(4000)
    html = panel.table.value
    assert f'data-figure="typical" data-value="{expected["batch"].typical!r}"' in html
    panel.controls["output_tokens"].value = 9
    assert explorer.settings.output_tokens == 9 and not panel.controls["output_auto"].value
    panel.controls["output_auto"].value = True  # back to the estimate's own length
    assert explorer.settings.output_tokens is None and panel.controls["output_tokens"].value == 5
    panel.controls["rows"].value = 0  # refused, said in the panel, and the control goes back
    assert explorer.settings.rows == 4000 and panel.controls["rows"].value == 4000
    assert "rows must be a whole number of rows from 1" in panel.error.value
    assert f'data-value="{expected["batch"].typical!r}"' in panel.table.value


def test_bad_settings_are_refused_before_anything_is_sent_naming_the_fix():
    sim = Simulator(config=SimConfig())
    client = sim.client()
    with pytest.raises(InvalidOptionError, match="rows must be a whole number of rows from 1"):
        reviews(20).claude.explore(PROMPT, rows=0, client=client)
    with pytest.raises(MissingColumnError):
        reviews(20).claude.explore("{nope}", client=client)
    with pytest.raises(InvalidOptionError, match=r"sample_answers must be left out: explore answers nothing"):
        reviews(20).claude.explore(PROMPT, sample_answers=5, client=client)
    assert sim.stats()["messages_answered"] == 0 and sim.stats()["batch_requests_received"] == 0
    explorer = reviews(20).claude.explore(PROMPT, **CALL)
    before = explorer.table
    for bad, match in [
        ({"mode": "fast"}, "mode must be 'batch'"),
        ({"caching": "on"}, "caching must be 'off'"),
        ({"hit_rate": (0.9, 0.2)}, "hit_rate must be a fraction"),
        ({"output_tokens": 0}, "output_tokens must be a whole number"),
        ({"deadline_hours": -1}, "deadline_hours must be hours from now"),
        ({"model": "gpt-4"}, "model must be one of"),
        ({"speed": 2}, "explore has no setting speed"),
    ]:
        with pytest.raises(InvalidOptionError, match=match):
            explorer.set(**bad)
    pd.testing.assert_frame_equal(explorer.table, before)
    answered = pricing.estimate_cost(
        model="claude-haiku-4-5", rows=10, unique_requests=10, already_answered=10, input_tokens=0, max_tokens=5
    ).explore()
    with pytest.raises(InvalidOptionError, match="every request of this estimate is answered already"):
        answered.set(rows=100)
    assert answered.settings.rows == 10
    with pytest.raises(InvalidOptionError, match="prices its estimate's model only"):
        reviews(20).claude.estimate(PROMPT).explore(model="claude-sonnet-4-5")


@pytest.fixture(scope="module")
def comparison():
    tweets = pd.read_csv(DATA / "tweeteval_sentiment_val.csv").head(400)
    tweets["gold"] = tweets["label"].map(dict(enumerate(["negative", "neutral", "positive"])))
    sim = Simulator(config=SimConfig(time_scale=50.0))
    return tweets.claude.compare(
        "Classify the sentiment of this tweet: {text}",
        task="classify",
        labels=["negative", "neutral", "positive"],
        truth="gold",
        models=["claude-haiku-4-5", "claude-sonnet-4-6"],
        sample=60,
        client=sim.client(),
        progress=False,
    )


def test_a_comparison_explores_each_variant_with_quality_and_dollars_per_correct_row(comparison):
    explorer = comparison.explore()
    table = explorer.table
    assert set(table.index.get_level_values("line")) == {v.name for v in comparison.variants}
    for v in comparison.variants:
        batch = table.loc[(v.name, "batch")]
        assert batch["prices"] == "batch"  # no prefix long enough to cache: caching starts off
        assert batch["typical"] == comparison.projected(v, "batch")
        assert batch["quality"] == v.quality and (batch["quality_low"], batch["quality_high"]) == v.interval
        assert batch["per_correct_row"] == pytest.approx(batch["typical"] / 400 / v.quality)
    explorer.set(rows=1_000_000, caching="off")
    for v in comparison.variants:
        batch = explorer.table.loc[(v.name, "batch")]
        assert batch["per_correct_row"] == pytest.approx(batch["typical"] / 1_000_000 / v.quality)
        assert batch["per_correct_row_low"] < batch["per_correct_row"] < batch["per_correct_row_high"]
    text = str(explorer)
    assert "accuracy" in text and "$ / correct row" in text and "1,000,000 rows" in text


def test_a_polars_frame_explores_as_pandas_does():
    import polars as pl

    explorer = pl.from_pandas(reviews(200)).claude.explore(PROMPT, **CALL).set(rows=2500, caching="prime")
    expected = reviews(2500).claude.estimate(PROMPT, cache="prime", **CALL)
    assert figures(explorer, "batch") == pytest.approx(of(expected, "batch+1h"), rel=1e-12)


def test_after_its_run_a_frame_is_explored_as_new_rows_like_it_calibrated_on_the_job():
    sim = Simulator(config=SimConfig())
    kwargs = {"client": sim.client(), "max_tokens": 20, "progress": False}
    frame = reviews(30)
    job = batchkit.Job.of(frame.claude.batch(PROMPT, **kwargs))
    assert frame.claude.estimate(PROMPT, **kwargs).requests == 0  # every row answered: $0 more
    explorer = frame.claude.explore(PROMPT, calibrate=job, **kwargs)
    assert explorer.table["requests"].iloc[0] == 30 and "priced as new rows like them" in str(explorer)
    assert f"calibrated on job {job.job_id}" in str(explorer)
    assert (explorer.set(rows=3000).table["requests"] == 3000).all()


def test_outside_a_kernel_the_explorer_shows_its_table_as_text(capsys):
    explorer = reviews(200).claude.explore(PROMPT, **CALL)
    explorer._ipython_display_()  # what IPython calls to show it; no kernel here, so no panel
    shown = capsys.readouterr().out
    assert shown.startswith("Explorer\nclaude-haiku-4-5: 200 rows") and "◀ runs" in shown


def test_counted_by_the_api_the_figures_still_equal_estimates():
    client = Simulator(config=SimConfig()).client()  # count_tokens on a sample, scaled up, with a range
    explorer = reviews(200).claude.explore(PROMPT, client=client, **CALL).set(rows=3000, caching="prime")
    expected = reviews(3000).claude.estimate(PROMPT, client=client, cache="prime", **CALL)
    assert expected.token_source == "count_tokens"
    assert figures(explorer, "batch") == pytest.approx(of(expected, "batch+1h"), rel=1e-12)
    assert figures(explorer, "realtime") == pytest.approx(of(expected, "standard"), rel=1e-12)


# --------------------------------------------------------------------------- cascades

TWEET_PROMPT = "Classify the sentiment of this tweet: {text}"
TWEET_LABELS = ["negative", "neutral", "positive"]
HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"


@pytest.fixture(scope="module")
def cascades():
    from batchkit.simulator import Processing

    tweets = pd.read_csv(DATA / "tweeteval_sentiment_val.csv").head(600)
    tweets["gold"] = tweets["label"].map(dict(enumerate(TWEET_LABELS)))
    sim = Simulator(config=SimConfig(processing=Processing.instant()))
    return tweets.claude.compare(
        TWEET_PROMPT,
        task="classify",
        labels=TWEET_LABELS,
        truth="gold",
        models=[HAIKU, SONNET],
        sample=200,
        cascade=True,
        client=sim.client(),
        progress=False,
    )


def test_a_comparisons_cascades_are_explored_at_every_stage_as_the_comparison_prices_them(cascades):
    from batchkit.compare.cascades import CascadeVariant
    from batchkit.costs.scaling import reprice

    explorer = cascades.explore()
    staged = [v for v in cascades.variants if isinstance(v, CascadeVariant)]
    assert staged and len(staged) < len(cascades.variants)
    for v in cascades.variants:  # at the comparison's own settings: its own projection, single models and cascades
        for mode, prices in (("batch", "batch"), ("realtime", "standard")):
            row = explorer.table.loc[(v.name, mode)]
            assert [row[k] for k in FIGURES] == of(v.projection, prices)
    frame = cascades.to_frame()
    explorer.set(rows=1_000_000, caching="off")
    sonnet = explorer.table.loc[(f"{SONNET} · p1", "batch")]
    for v in staged:
        row = explorer.table.loc[(v.name, "batch")]
        first = reprice(cascades[f"{HAIKU} · p1"].staged_projection, rows=1_000_000)["batch"]
        # stage 1 on every row with the confidence, plus the escalated share of Sonnet alone (its own line)
        for k, share in zip(("low", "typical", "high"), v.share, strict=True):
            assert row[k] == pytest.approx(getattr(first, k) + share * sonnet[k], rel=1e-9)
        assert row["low"] < row["typical"] < row["high"]  # the escalation share's range is the range
        # what the comparison's table says a row costs, a million times (the sample measured, the frame estimated)
        assert row["typical"] / 1_000_000 == pytest.approx(frame.loc[v.name, "cost_per_row_batch"], rel=0.1)
        assert row["per_correct_row"] == pytest.approx(row["typical"] / 1_000_000 / v.quality)
        # its range: the escalation share's cost range with the quality's interval, cheapest at best quality
        assert row["per_correct_row_low"] == pytest.approx(row["low"] / 1_000_000 / row["quality_high"])
        assert row["per_correct_row_high"] == pytest.approx(row["high"] / 1_000_000 / row["quality_low"])
    assert "caching off" in str(explorer) and "no caching" not in str(explorer) and "100%–100%" not in str(explorer)


def test_the_header_says_when_nothing_is_cached():
    explorer = reviews(200).claude.explore(PROMPT, max_tokens=20)  # no prefix long enough to cache
    assert explorer.settings.caching == "auto"
    assert "nothing cacheable" in explorer.headline()[0] and "hit rate" not in explorer.headline()[0]
    text = str(explorer)  # said once, and the batch line is priced as what it is: batch, nothing cached
    assert text.count("caching changes nothing") == 1 and "no shared prefix is cached" not in text
    assert explorer.table.loc[(HAIKU, "batch"), "prices"] == "batch" and "cache" not in text.split("\n\n")[1]
    assert "caching off," in explorer.set(caching="off").headline()[0]
    assert "no caching" not in str(explorer) and "caching changes nothing" not in str(explorer)
    lo, hi = reviews(200).claude.estimate(PROMPT, **CALL).hit_rate  # a prefix to cache: its hit rate is said
    assert (
        f"hit rate {pct(lo)}–{pct(hi)} (from priming and size)"
        in reviews(200).claude.explore(PROMPT, **CALL).headline()[0]
    )


def test_a_frame_explores_a_cascade_call_as_estimate_prices_it():
    labels = ["negative", "positive"]
    call = {**CALL, "labels": labels, "cascade": [HAIKU, SONNET]}
    explorer = reviews(200).claude.explore(PROMPT, **call)
    base = reviews(200).claude.estimate(PROMPT, **call)
    assert figures(explorer, "batch") == of(base, "batch+1h")
    assert "escalation assumed" in str(explorer)  # the share's prior is said
    explorer.set(rows=3000, caching="prime", ttl="5m")
    expected = reviews(3000).claude.estimate(PROMPT, cache="prime", cache_ttl="5m", **call)
    assert figures(explorer, "batch") == pytest.approx(of(expected, "batch+5m"), rel=1e-12)
    assert figures(explorer, "realtime") == pytest.approx(of(expected, "standard"), rel=1e-12)
    assert base.explore(rows=3000, caching="prime", ttl="5m").table.equals(explorer.table)
    another = r"another cascade is another call: df.claude.explore\(\.\.\., cascade=\[\.\.\.\]\)"
    with pytest.raises(InvalidOptionError, match=another):
        explorer.set(model=SONNET)
    with pytest.raises(InvalidOptionError, match=another):
        base.explore(model=SONNET)


def test_after_its_run_a_cascade_is_explored_as_new_rows_like_it():
    from batchkit.simulator import Processing

    sim = Simulator(config=SimConfig(processing=Processing.instant()))
    labels = ["negative", "positive"]
    kwargs = {"client": sim.client(), "max_tokens": 20, "progress": False, "cascade": [HAIKU, SONNET]}
    frame = reviews(30)
    frame.claude.classify(PROMPT, labels, **kwargs)
    explorer = frame.claude.explore(PROMPT, labels=labels, **kwargs)
    assert "priced as new rows like them" in str(explorer)
    fresh = reviews(3030).iloc[30:].claude.estimate(PROMPT, labels=labels, **kwargs)  # 3,000 rows never answered
    assert figures(explorer.set(rows=3000), "batch") == pytest.approx(of(fresh, "batch"), rel=1e-12)


def test_after_a_plain_run_of_the_last_model_a_cascade_is_explored_as_estimate_prices_it():
    from batchkit.simulator import Processing

    sim = Simulator(config=SimConfig(processing=Processing.instant()))
    labels = ["negative", "positive"]
    kwargs = {"client": sim.client(), "max_tokens": 20, "progress": False}
    frame = reviews(120)
    frame.claude.classify(PROMPT, labels, model=SONNET, **kwargs)  # stage 2's answers only: stage 1 is unpaid
    call = {**kwargs, "labels": labels, "cascade": [HAIKU, SONNET]}
    base = frame.claude.estimate(PROMPT, **call)
    explorer = frame.claude.explore(PROMPT, **call)
    assert figures(explorer, "batch") == of(base, "batch") and figures(explorer, "realtime") == of(base, "standard")
    assert base["batch"].typical > 0 and "costs $0 more" not in str(explorer)
    sent = explorer.set(mode="auto").table  # stage 2 has nothing to send: stage 1's batch is the way, no mix
    assert sent.index.get_level_values("mode").tolist() == ["realtime", "batch"] and sent["runs"].tolist()[1]
    fresh = reviews(3120).iloc[120:].claude.estimate(PROMPT, **call)  # more rows: stage 2 priced as new ones too
    assert figures(explorer.set(rows=3000, mode="batch"), "batch") == pytest.approx(of(fresh, "batch"), rel=1e-12)


def test_a_cascades_stages_run_one_after_another_in_its_times_and_deadline():
    from batchkit.core import modes

    call = {**CALL, "labels": ["negative", "positive"], "cascade": [HAIKU, SONNET]}
    base = reviews(200).claude.estimate(PROMPT, **call)
    alone = reviews(200).claude.estimate(PROMPT, **{**call, "cascade": None, "model": HAIKU})
    assert base.finish_seconds["batch"] == 2 * modes.TYPICAL_BATCH_SECONDS
    assert base.finish_seconds["batch_max"] == 2 * modes.MAX_BATCH_SECONDS
    assert base.finish_seconds["realtime"] > alone.finish_seconds["realtime"]  # stage 2's share added
    times = [n for n in base.notes if n.startswith("Time to finish")]
    assert len(times) == 1 and "one after another" in times[0] and "at most 48 h" in times[0]
    explorer = reviews(200).claude.explore(PROMPT, **call).set(rows=200_000, mode="batch", deadline_hours=25)
    batch = explorer.table.xs("batch", level="mode").iloc[0]
    assert (batch["finish_seconds"], batch["finish_max_seconds"]) == (7200.0, 48 * 3600.0)
    assert not batch["meets_deadline"] and "≈ 2.0 h (≤ 48.0 h)" in str(explorer)  # two batches may take 48 h
    assert explorer.set(deadline_hours=49).table.xs("batch", level="mode")["meets_deadline"].item()


def test_auto_chooses_per_stage_and_shows_the_mix():
    call = {**CALL, "labels": ["negative", "positive"], "cascade": [HAIKU, SONNET]}
    explorer = reviews(200).claude.explore(PROMPT, mode="auto", **call).set(rows=150)
    table = explorer.table  # stage 1 sends 150 requests (a batch), stage 2 about 45 (realtime)
    mix = table.xs("stage 1 batch, stage 2 realtime", level="mode").iloc[0]
    assert mix["runs"] and table["runs"].sum() == 1 and mix["prices"] == "batch + 1h cache, standard"
    e = explorer.priced(explorer.lines()[0])
    first, second = e.staged["stages"]
    share = e.staged["shares"][0][1]
    assert mix["typical"] == pytest.approx(first["batch+1h"].typical + share * second["standard"].typical)
    assert mix["finish_seconds"] < 2 * 3600 and "stage 2: auto: 45 requests to send, fewer than 100" in mix["why"]
    assert "stage 1 batch, stage 2 realtime" in str(explorer) and "auto sends each stage realtime" in str(explorer)
    assert not explorer.set(rows=5000).table.index.get_level_values("mode").str.startswith("stage").any()
    base = reviews(150).claude.estimate(PROMPT, mode="auto", **call)
    assert any("stage 1 (150 requests) as batch, stage 2 (45 requests) as realtime" in n for n in base.notes)
