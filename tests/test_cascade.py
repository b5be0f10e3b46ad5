"""Model cascades: classify(..., cascade=[...]) stage after stage, and compare(..., cascade=True)."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest

import batchkit
from batchkit import BudgetExceededError, CascadeJob, InvalidOptionError, JobNotFoundError, UnknownModelError
from batchkit.compare.cascades import CascadeVariant
from batchkit.simulator import Processing, SimConfig, Simulator
from batchkit.simulator._responder import default_responder
from tests.conftest import DATA

LABELS = ["negative", "neutral", "positive"]
HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"
PROMPT = "Classify the sentiment of this tweet: {text}"


@pytest.fixture(scope="module")
def tweets() -> pd.DataFrame:
    df = pd.read_csv(DATA / "tweeteval_sentiment_val.csv")
    df["gold"] = df["label"].map(dict(enumerate(LABELS)))
    return df


class Counting:
    """The instant simulator with its default answers, counting the requests each model received."""

    def __init__(self) -> None:
        self.by_model: Counter[str] = Counter()

        def responder(params):
            self.by_model[params["model"]] += 1
            return default_responder(params)

        self.sim = Simulator(config=SimConfig(processing=Processing.instant()), responder=responder)

    def client(self):
        return self.sim.client()

    def sent(self) -> int:
        stats = self.sim.stats()
        return stats["batch_requests_received"] + stats["messages_answered"] + stats["messages.count_tokens"]


@pytest.fixture
def sim() -> Counting:
    return Counting()


def _classify(df, sim, **kwargs):
    kwargs.setdefault("cascade", [HAIKU, SONNET])
    return df.claude.classify(PROMPT, LABELS, output="sentiment", client=sim.client(), progress=False, **kwargs)


# --------------------------------------------------------------------------- the done-when, on the tweets


def test_compare_finds_a_cascade_as_good_as_the_best_model_for_less_and_its_run_sends_only_the_escalated_rows(
    tweets, sim
):
    cmp = tweets.claude.compare(
        PROMPT,
        task="classify",
        labels=LABELS,
        truth="gold",
        models=[SONNET, HAIKU],  # in any order: a cascade starts with the cheaper one
        sample=200,
        cascade=True,
        client=sim.client(),
        progress=False,
    )
    singles = {v.model: v for v in cmp.variants if not isinstance(v, CascadeVariant)}
    cascades = [v for v in cmp.variants if isinstance(v, CascadeVariant)]
    assert cascades and all(v.models == (HAIKU, SONNET) for v in cascades)
    assert sim.by_model == {HAIKU: 200, SONNET: 200}  # the cascades are scored from those answers: none paid twice
    # Sonnet, only ever a last stage, was asked no confidence: its figures are a run of it alone
    assert singles[SONNET].confidence is None and singles[SONNET].paid is None
    assert "confidence" not in str(singles[SONNET].job.output_spec.schema)
    # Haiku was (a first stage needs it), but it is priced as run alone, without it
    haiku = singles[HAIKU]
    assert haiku.paid is not None and cmp.cost_per_row(haiku) < haiku.paid[0] / 200 * 0.8
    assert "so the 200 sample rows are paid again" in str(cmp)
    best = max(singles.values(), key=lambda v: v.quality)
    good = [
        v
        for v in cascades
        if v.interval[1] >= best.interval[0]
        and v.interval[0] <= best.interval[1]
        and cmp.cost_per_correct_row(v) < cmp.cost_per_correct_row(best)
    ]
    assert good, str(cmp)
    table = cmp.to_frame()
    assert table.loc[[v.name for v in cascades], "threshold"].between(0, 1).all()
    assert table["on_front"].loc[[v.name for v in good]].any()
    pick = max(good, key=lambda v: v.quality)
    escalated_in_sample = int((~pick.kept).sum())
    assert 0 < escalated_in_sample < 200
    # priced before it runs from the sample's measured escalation (compare is the calibration)
    est = tweets.claude.estimate(
        PROMPT, labels=LABELS, cascade=list(pick.models), threshold=pick.threshold, calibrate=cmp, client=sim.client()
    )
    assert any("measured on the comparison's sample" in n for n in est.notes)
    sim.by_model.clear()
    out = cmp.run(variant=pick, output="predicted", progress=False)
    cascade = CascadeJob.of(out)
    escalated = int((out["predicted_model"] == SONNET).sum())
    # stage 1: every row but the sample's 200; stage 2: only the escalated rows the sample had not answered
    assert sim.by_model == {HAIKU: 1800, SONNET: escalated - escalated_in_sample}
    assert [len(s.rows) for s in cascade.stages] == [2000, escalated]
    assert out["predicted"].notna().all() and list(out["predicted"].cat.categories) == LABELS
    kept_first = out["predicted_model"] == HAIKU
    assert (out.loc[kept_first, "predicted_confidence"] >= pick.threshold).all()
    assert (out.loc[~kept_first, "predicted_why"].str.startswith("escalated: confidence")).all()
    # the escalation the sample measured priced the run: the actual share is within its interval
    lo, _, hi = pick.share
    assert lo <= escalated / 2000 <= hi
    assert est["batch"].low <= cascade.cost.total <= est["batch"].high
    # each single model as run: Sonnet alone reuses its sample and the cascade's last stage (the same
    # plain requests); Haiku alone sends the plain requests, its sample rows again, at the price shown
    sim.by_model.clear()
    cmp.run(variant=singles[SONNET], progress=False)
    assert sim.by_model == {SONNET: 2000 - 200 - (escalated - escalated_in_sample)}
    alone = batchkit.Job.of(cmp.run(variant=haiku, progress=False)).outcomes()
    assert sim.by_model[HAIKU] == 2000
    assert alone["cost"].iloc[cmp.positions].sum() == pytest.approx(haiku.usage_cost[0], rel=0.05)


def test_a_target_no_variant_meets_leaves_no_choice_and_run_is_refused_naming_the_fix(tweets, sim):
    cmp = tweets.claude.compare(
        PROMPT,
        task="classify",
        labels=LABELS,
        truth="gold",
        models=[HAIKU, SONNET],
        sample=100,
        cascade=True,
        target=0.95,
        client=sim.client(),
        progress=False,
    )
    assert cmp.recommended is None and "no variant" in cmp.reason and "lower target" in cmp.reason
    sent = sim.sent()
    with pytest.raises(InvalidOptionError, match="no recommended variant"):
        cmp.run()
    assert sim.sent() == sent


# --------------------------------------------------------------------------- running one


def test_each_stage_is_a_job_cost_and_rows_split_by_stage_and_a_rerun_pays_nothing(tweets, sim):
    df = tweets.head(300)
    out = _classify(df, sim, threshold=0.7)
    cascade = CascadeJob.of(out)
    first, second = cascade.stages
    escalated = int((out["sentiment_model"] == SONNET).sum())
    assert 0 < escalated < 300 and sim.by_model == {HAIKU: 300, SONNET: escalated}
    assert len(first.rows) == 300 and list(second.rows) == list(np.flatnonzero(out["sentiment_model"] == SONNET))
    assert second.job.model == SONNET and len(second.job.row_keys) == escalated
    # cost by stage: the per-row figures sum to each stage job's own cost
    cost = cascade.cost
    outcomes = cascade.outcomes()
    assert cost.to_frame()["rows_asked"].tolist() == [300, escalated]
    assert cost.to_frame()["rows_kept"].tolist() == [300 - escalated, escalated]
    assert outcomes["cost_stage_1"].sum() == pytest.approx(first.job.cost.total)
    assert outcomes["cost_stage_2"].sum() == pytest.approx(second.job.cost.total)
    assert cost.total == pytest.approx(outcomes["cost"].sum()) and cost.total > 0
    assert outcomes["stage"].tolist() == [2 if m == SONNET else 1 for m in out["sentiment_model"]]
    assert "stage 2 claude-sonnet-4-6" in str(cost)
    # the same cell again: every stage is found in the store, nothing is sent
    sent = sim.sent()
    again = _classify(df, sim, threshold=0.7)
    assert sim.sent() == sent
    pd.testing.assert_frame_equal(again, out, check_like=True)
    assert CascadeJob.of(again).cost.total == pytest.approx(cost.total)
    with pytest.raises(JobNotFoundError, match=r"CascadeJob\.of"):
        batchkit.Job.of(out)


def test_the_last_stage_sends_the_plain_requests_of_its_model_alone(tweets, sim):
    df = tweets.head(300)
    out = _classify(df, sim, threshold=0.7)
    last = out["sentiment_model"] == SONNET
    escalated = int(last.sum())
    # nothing escalates from the last model: it is asked no confidence, and its rows say why
    assert out.loc[last, "sentiment_confidence"].isna().all() and out.loc[~last, "sentiment_confidence"].notna().all()
    assert out.loc[last, "sentiment_why"].str.endswith(f"; {SONNET}, the last model").all()
    # its requests are those of classify(model=SONNET): a run of Sonnet alone reuses them
    sim.by_model.clear()
    alone = df.claude.classify(PROMPT, LABELS, output="sentiment", model=SONNET, client=sim.client(), progress=False)
    assert sim.by_model == {SONNET: 300 - escalated}
    assert alone.loc[last, "sentiment"].tolist() == out.loc[last, "sentiment"].tolist()
    # the confidence field costs a few tokens a request: stage 1 against Haiku alone
    haiku = df.claude.classify(PROMPT, LABELS, model=HAIKU, client=sim.client(), progress=False)
    plain = batchkit.Job.of(haiku).outcomes()[["input_tokens", "output_tokens"]].mean()
    staged = CascadeJob.of(out).stages[0].job.outcomes()[["input_tokens", "output_tokens"]].mean()
    assert 0 < staged["input_tokens"] - plain["input_tokens"] <= 12
    assert 0 < staged["output_tokens"] - plain["output_tokens"] <= 6


@pytest.mark.parametrize("mode", ["realtime", "auto"])
def test_realtime_and_auto_run_every_stage_the_same_way(tweets, sim, mode):
    df = tweets.head(60)  # auto sends so few rows realtime
    out = _classify(df, sim, mode=mode, threshold=0.7)
    escalated = int((out["sentiment_model"] == SONNET).sum())
    assert 0 < escalated < 60
    stats = sim.sim.stats()
    assert stats["messages_answered"] == 60 + escalated and stats["batch_requests_received"] == 0
    assert all(s.job.mode == "realtime" for s in CascadeJob.of(out).stages)


def test_the_estimate_covers_every_stage_and_max_cost_checks_it_before_anything_is_sent(tweets, sim):
    df = tweets.head(200)
    one = df.claude.estimate(PROMPT, labels=LABELS, model=HAIKU, client=sim.client())
    both = df.claude.estimate(PROMPT, labels=LABELS, cascade=[HAIKU, SONNET], client=sim.client())
    # stage 1 on every row, stage 2 on 0%..100% of them (30% typical: a prior, said so)
    assert both["batch"].low >= one["batch"].low * 0.99
    assert both["batch"].upper_bound > one["batch"].upper_bound * 2
    assert any("30% typical" in n and "prior" in n for n in both.notes)
    with pytest.raises(BudgetExceededError):
        _classify(df, sim, max_cost=both["batch"].upper_bound * 0.9)
    assert sum(sim.by_model.values()) == 0 and sim.sim.stats()["batch_requests_received"] == 0
    out = _classify(df, sim, max_cost=both["batch"].upper_bound * 1.01)
    actual = CascadeJob.of(out).cost.total
    assert both["batch"].low <= actual <= both["batch"].high


def test_calls_without_a_cascade_are_unchanged(tweets, sim):
    out = tweets.head(20).claude.classify(PROMPT, LABELS, output="sentiment", client=sim.client(), progress=False)
    assert [c for c in out.columns if c.startswith("sentiment")] == ["sentiment"]
    job = batchkit.Job.of(out)
    assert "confidence" not in str(job.output_spec.schema)


# --------------------------------------------------------------------------- refused before any call


@pytest.mark.parametrize(
    ("kwargs", "error", "fix"),
    [
        ({"cascade": [HAIKU]}, InvalidOptionError, "two or more"),
        ({"cascade": [HAIKU, "claude-sonet-4-6"]}, UnknownModelError, "typo costs no batch"),
        ({"cascade": [HAIKU, HAIKU]}, InvalidOptionError, "twice"),
        ({"cascade": [HAIKU, SONNET], "model": HAIKU}, InvalidOptionError, "Remove model="),
        ({"cascade": [HAIKU, SONNET], "threshold": 1.5}, InvalidOptionError, r"threshold=0\.8"),
        ({"cascade": [HAIKU, SONNET], "threshold": [0.5, 0.6]}, InvalidOptionError, "one per escalation"),
        ({"cascade": None, "threshold": 0.5}, InvalidOptionError, "needs cascade="),
    ],
)
def test_a_bad_cascade_is_refused_before_any_call(tweets, sim, kwargs, error, fix):
    with pytest.raises(error, match=fix):
        _classify(tweets.head(10), sim, **kwargs)
    assert sim.sent() == 0


def test_a_cascade_of_free_text_or_of_an_extraction_without_a_label_is_refused_naming_the_fix(tweets, sim):
    df = tweets.head(10)
    with pytest.raises(InvalidOptionError, match=r"df\.claude\.classify\(prompt, labels="):
        df.claude.batch(PROMPT, cascade=[HAIKU, SONNET], client=sim.client())
    with pytest.raises(InvalidOptionError, match="label field"):
        df.claude.extract(PROMPT, {"topic": str}, cascade=[HAIKU, SONNET], client=sim.client())
    with pytest.raises(InvalidOptionError, match="free text"):
        df.claude.estimate(PROMPT, cascade=[HAIKU, SONNET], client=sim.client())
    for bad in ({"models": [HAIKU]}, {"models": [HAIKU, SONNET], "task": "batch", "labels": None}):
        args = {"task": "classify", "labels": LABELS, **bad}
        with pytest.raises(InvalidOptionError, match="cascade"):
            df.claude.compare(PROMPT, truth="gold", cascade=True, client=sim.client(), **args)
    assert sim.sent() == 0


def test_an_extraction_with_a_label_field_cascades(tweets, sim):
    from typing import Literal

    schema = {"sentiment": Literal["negative", "neutral", "positive"], "topic": str}
    out = tweets.head(40).claude.extract(
        PROMPT, schema, cascade=[HAIKU, SONNET], threshold=0.7, client=sim.client(), progress=False
    )
    escalated = int((out["sentiment_model"] == SONNET).sum())
    assert out["sentiment"].notna().all() and out["topic"].notna().all()
    assert sim.by_model == {HAIKU: 40, SONNET: escalated} and 0 < escalated < 40


def test_a_polars_dataframe_cascades_like_pandas_with_the_same_requests(tweets, sim):
    import polars as pl

    df = tweets.head(80)
    frame = pl.from_pandas(df[["text"]])
    est = frame.claude.estimate(PROMPT, labels=LABELS, cascade=[HAIKU, SONNET], client=sim.client())
    assert est.model == f"{HAIKU} → {SONNET}" and any("30% typical" in n for n in est.notes)
    out = frame.claude.classify(
        PROMPT, LABELS, output="sentiment", cascade=[HAIKU, SONNET], threshold=0.7, client=sim.client(), progress=False
    )
    assert out.schema["sentiment"] == pl.Enum(LABELS) and out.schema["sentiment_confidence"] == pl.Float64
    assert out.schema["sentiment_model"] == pl.String and out.schema["sentiment_why"] == pl.String
    escalated = out["sentiment_model"].to_list().count(SONNET)
    assert sim.by_model == {HAIKU: 80, SONNET: escalated} and 0 < escalated < 80
    # the same rows in pandas are the same requests: answered from the store, nothing sent
    sent = sim.sent()
    again = _classify(df, sim, threshold=0.7)
    assert sim.sent() == sent
    assert again["sentiment_model"].tolist() == out["sentiment_model"].to_list()
    assert again["sentiment_why"].tolist() == out["sentiment_why"].to_list()


def test_a_lazy_polars_frame_cascades_partition_by_partition_with_the_requests_of_pandas(tweets, sim):
    import polars as pl

    df = tweets.head(80)
    lf = pl.from_pandas(df[["text"]]).lazy()
    args = {"cascade": [HAIKU, SONNET], "threshold": 0.7, "client": sim.client(), "progress": False}
    plan = lf.claude.classify(PROMPT, LABELS, output="sentiment", partition_rows=30, **args)  # 3 partitions
    assert sim.sent() == 0  # a plan: nothing read or sent until collected
    out = plan.collect()
    assert out.schema["sentiment"] == pl.Enum(LABELS) and out.schema["sentiment_why"] == pl.String
    escalated = out["sentiment_model"].to_list().count(SONNET)
    assert sim.by_model == {HAIKU: 80, SONNET: escalated} and 0 < escalated < 80  # stage 2: the escalated rows only
    # the same rows in pandas are the same requests, and collecting again reads the store: nothing sent
    sent = sim.sent()
    again = _classify(df, sim, threshold=0.7)
    assert again["sentiment_why"].tolist() == out["sentiment_why"].to_list()
    assert plan.select("sentiment_model").collect()["sentiment_model"].to_list() == again["sentiment_model"].tolist()
    assert sim.sent() == sent
    with pytest.raises(InvalidOptionError, match=r"lf\.collect\(\)\.claude\.estimate"):
        lf.claude.classify(PROMPT, LABELS, max_cost=1.0, **args)


def test_a_dask_frame_cascades_partition_by_partition_with_the_requests_of_pandas(tweets, sim):
    import dask.dataframe as dd

    df = tweets.head(80)[["text"]]
    ddf = dd.from_pandas(df, npartitions=3)  # Dask's default (threaded) scheduler runs the worker side
    args = {"labels": LABELS, "output": "sentiment", "cascade": [HAIKU, SONNET], "client": sim.client()}
    # estimate: every stage over every partition, before anything is sent; what pandas prices
    est = ddf.claude.estimate(PROMPT, **args)
    haiku = ddf.claude.estimate(PROMPT, labels=LABELS, model=HAIKU, client=sim.client())
    assert sim.sent() == 0
    assert est.model == f"{HAIKU} → {SONNET}" and any("30% typical" in n for n in est.notes)
    assert est.requests == df.claude.estimate(PROMPT, **args).requests == 80 + 24  # stage 2: 30% of 80 typical
    assert est["batch"].upper_bound > 2 * haiku["batch"].upper_bound
    out = ddf.claude.classify(PROMPT, threshold=0.7, progress=False, **args)
    escalated = int((out["sentiment_model"] == SONNET).sum().compute())
    assert sim.by_model == {HAIKU: 80, SONNET: escalated} and 0 < escalated < 80  # stage 2: the escalated rows only
    # the same columns and answers as pandas, whose run afterwards sends nothing; nor does computing again
    sent = sim.sent()
    again = _classify(df, sim, threshold=0.7)
    got = out.compute()
    assert list(got.columns) == list(again.columns)
    pd.testing.assert_frame_equal(got.drop(columns="text"), again.drop(columns="text"))
    assert sim.sent() == sent
    assert got["sentiment_why"].str.contains("< 0.7;").sum() == escalated


def test_a_dask_frame_extracts_with_a_cascade_and_a_partition_without_rows(tweets, sim):
    from typing import Literal

    import dask.dataframe as dd

    schema = {"sentiment": Literal["negative", "neutral", "positive"], "topic": str}
    df = tweets.head(60)[["text"]].assign(n=range(60))
    ddf = dd.from_pandas(df, npartitions=3)
    ddf = ddf[ddf["n"] >= 25]  # the first partition (rows 0-19) is left empty
    out = ddf.claude.extract(
        PROMPT, schema, cascade=[HAIKU, SONNET], threshold=0.7, client=sim.client(), progress=False
    )
    got = out.compute()
    escalated = int((got["sentiment_model"] == SONNET).sum())
    assert len(got) == 35 and got["sentiment"].notna().all() and got["topic"].notna().all()
    assert sim.by_model == {HAIKU: 35, SONNET: escalated} and 0 < escalated < 35


def test_a_dask_frame_refuses_a_bad_cascade_before_anything_is_sent(tweets, sim, tmp_path):
    import dask.dataframe as dd

    ddf = dd.from_pandas(tweets.head(10)[["text"]], npartitions=2)

    def classify(prompt=PROMPT, **kwargs):
        kwargs.setdefault("cascade", [HAIKU, SONNET])
        return ddf.claude.classify(prompt, LABELS, client=sim.client(), progress=False, **kwargs)

    with pytest.raises(InvalidOptionError, match=r"ddf\.claude\.estimate\(\.\.\., cascade="):
        classify(max_cost=1.0)
    with pytest.raises(InvalidOptionError, match=r"\.to_parquet\('dir/'\)"):
        classify(to_parquet=tmp_path / "out")
    with pytest.raises(InvalidOptionError, match="two or more"):
        classify(cascade=[HAIKU])
    with pytest.raises(UnknownModelError):
        classify(cascade=[HAIKU, "claude-sonet-4-6"])
    with pytest.raises(batchkit.MissingColumnError):
        classify("Classify: {body}")
    with pytest.raises(InvalidOptionError, match="label field"):
        ddf.claude.extract(PROMPT, {"topic": str}, cascade=[HAIKU, SONNET], client=sim.client())
    assert sim.sent() == 0 and not (tmp_path / "out").exists()


def test_a_skipped_row_is_sent_to_no_stage_and_says_so(tweets, sim):
    df = tweets.head(30).copy()
    df.loc[df.index[3], "text"] = None
    with pytest.warns(batchkit.BatchkitWarning, match="1 skipped"):
        out = _classify(df, sim, threshold=0.7)
    escalated = int((out["sentiment_model"] == SONNET).sum())
    assert sim.by_model == {HAIKU: 29, SONNET: escalated}
    row = out.iloc[3]
    assert pd.isna(row["sentiment"]) and pd.isna(row["sentiment_model"]) and row["sentiment_why"].startswith("skipped")
    assert CascadeJob.of(out).outcomes()["status"].iloc[3] == "skipped"


def test_three_models_escalate_twice_with_a_threshold_each(tweets, sim):
    opus = "claude-opus-4-7"
    out = _classify(tweets.head(120), sim, cascade=[HAIKU, SONNET, opus], threshold=[0.7, 0.8])
    cascade = CascadeJob.of(out)
    asked = [len(s.rows) for s in cascade.stages]
    assert asked[0] == 120 and 0 < asked[2] < asked[1] < 120
    assert sim.by_model == {HAIKU: 120, SONNET: asked[1], opus: asked[2]}
    second = out["sentiment_model"] == SONNET
    assert (out.loc[second, "sentiment_confidence"] >= 0.8).all()
    assert out.loc[out["sentiment_model"] == opus, "sentiment_why"].str.contains("< 0.8;").all()
    # each row's reason: every step it went through, the figures as compared
    row = int(np.flatnonzero(out["sentiment_model"] == opus)[0])
    first, second = (s.confidences[list(s.rows).index(row)] for s in cascade.stages[:2])
    assert out["sentiment_why"].iloc[row] == (
        f"escalated: confidence {float(first)!r} < 0.7; {SONNET} confidence {float(second)!r} < 0.8; {opus}, the last model"
    )
    assert cascade.cost.to_frame()["rows_asked"].tolist() == asked


# --------------------------------------------------------------------------- a comparison's cascades as they run


def _compare(df, sim, **kwargs):
    args = {"task": "classify", "labels": LABELS, "truth": "gold", "models": [HAIKU, SONNET], "cascade": True}
    return df.claude.compare(PROMPT, client=sim.client(), progress=False, **{**args, **kwargs})


def test_a_comparisons_cascades_cost_the_same_whatever_the_store_already_held(tweets, sim, tmp_path):
    fresh = _compare(tweets, sim, sample=100, store=tmp_path / "fresh.sqlite3")
    # another store, where a cascade already ran on the same rows: its stage 2 answered some of them
    warm = tmp_path / "warm.sqlite3"
    _classify(tweets.iloc[fresh.positions], sim, threshold=0.9, store=warm)
    sim.by_model.clear()
    again = _compare(tweets, sim, sample=100, store=warm)
    assert list(again.positions) == list(fresh.positions) and sim.by_model[SONNET] < 100  # found in the store
    # a row's cost is its tokens at the price, paid now or before: the same figures, the same choice
    table, before = again.to_frame(), fresh.to_frame()
    assert list(table.index) == list(before.index)
    assert any(isinstance(v, CascadeVariant) for v in again.variants)
    pd.testing.assert_series_equal(table["cost_per_row_batch"], before["cost_per_row_batch"])
    assert [v.name for v in again.front] == [v.name for v in fresh.front]


def test_a_comparisons_thresholds_are_confidences_a_row_gave_named_exactly_as_they_compare(tweets, sim):
    cmp = _compare(tweets, sim, sample=200, seed=1)  # a sample whose quantiles fall between two confidences
    haiku = next(v for v in cmp.variants if v.model == HAIKU)
    given = set(haiku.confidence[~np.isnan(haiku.confidence)].tolist())
    cascades = [v for v in cmp.variants if isinstance(v, CascadeVariant)]
    assert cascades
    for v in cascades:
        named = float(v.name.split(" @ ")[1].split(" · ")[0])
        assert named == v.threshold and v.threshold in given
        assert cmp.to_frame().loc[v.name, "threshold"] == named
    # the threshold typed from a name escalates the rows the comparison scored it on
    v = min(cascades, key=lambda c: abs(c.share[1] - 0.5))
    named = float(v.name.split(" @ ")[1].split(" · ")[0])
    out = _classify(tweets.iloc[cmp.positions], sim, threshold=named)
    assert (out["sentiment_model"] == SONNET).tolist() == (~v.kept).tolist()
    # and every reason reads true, with the figures compared
    why = out["sentiment_why"].str.extract(r"^(?:escalated: )?confidence ([0-9.]+) ([<≥]) ([0-9.]+)")
    assert why.notna().all().all()
    confidence, threshold = why[0].astype(float), why[2].astype(float)
    assert ((why[1] == "<") == (confidence < threshold)).all() and (threshold == v.threshold).all()


@pytest.mark.filterwarnings("ignore::batchkit.BatchkitWarning")
def test_a_comparison_escalates_by_the_rule_a_cascade_runs_failed_rows_go_on_skipped_rows_stay(tweets):
    df = tweets.copy()
    df.loc[df.index[::9], "text"] = None  # skipped: asked of no model
    df.loc[df.index[1::7], "text"] = df["text"].iloc[1::7] + " #garbled"

    def responder(params):  # Haiku's answer to a garbled tweet is not the JSON asked for: no usable answer
        if params["model"] == HAIKU and "#garbled" in str(params["messages"]):
            return "not json"
        return default_responder(params)

    sim = Simulator(config=SimConfig(processing=Processing.instant()), responder=responder)
    args = {"labels": LABELS, "client": sim.client(), "progress": False}
    cmp = df.claude.compare(
        PROMPT, task="classify", truth="gold", models=[HAIKU, SONNET], sample=150, cascade=True, **args
    )
    sample = df.iloc[cmp.positions]
    skipped = int(sample["text"].isna().sum())
    haiku = next(v for v in cmp.variants if v.model == HAIKU)
    assert skipped and haiku.outcome_counts["skipped"] == skipped and haiku.outcome_counts["invalid_output"] > 0
    v = next(v for v in cmp.variants if isinstance(v, CascadeVariant))
    # a cascade's rows end where their answer is kept: Sonnet answered every row Haiku could not
    assert v.outcome_counts == {"succeeded": 150 - skipped, "skipped": skipped}
    # the share the comparison measures (and prices a run by) is the share the run escalates
    share = cmp.escalation_shares([HAIKU, SONNET], [v.threshold], PROMPT)
    assert share is not None and share[0][1] == v.share[1]
    out = sample.claude.classify(PROMPT, output="sentiment", cascade=[HAIKU, SONNET], threshold=v.threshold, **args)
    escalated = int((out["sentiment_model"] == SONNET).sum())
    assert escalated == int((~v.kept & sample["text"].notna().to_numpy()).sum())
    assert share[0][1] == pytest.approx(escalated / (150 - skipped))


def test_max_cost_on_a_cascade_counts_the_requests_at_the_high_share_and_says_how_to_measure_it(tweets, sim):
    df = tweets.head(200)
    both = df.claude.estimate(PROMPT, labels=LABELS, cascade=[HAIKU, SONNET], client=sim.client())
    with pytest.raises(BudgetExceededError) as refused:
        _classify(df, sim, max_cost=both["batch"].upper_bound * 0.9)
    said = str(refused.value)
    assert "assumes every row escalates" in said and "400 requests" in said  # 200 rows, each at both stages
    assert "compare(..., cascade=True) and pass calibrate=cmp" in said and f"model={HAIKU!r}" in said
    assert sum(sim.by_model.values()) == 0 and sim.sim.stats()["batch_requests_received"] == 0


def test_compare_with_a_threshold_but_no_cascade_says_to_pass_cascade_true(tweets, sim):
    with pytest.raises(InvalidOptionError, match=r"pass cascade=True \(compare picks the thresholds\), or remove"):
        _compare(tweets, sim, sample=50, cascade=False, threshold=0.7)
    assert sim.sent() == 0


def test_compare_with_cascade_true_and_a_threshold_says_compare_picks_them(tweets, sim):
    with pytest.raises(InvalidOptionError, match=r"picks the thresholds itself.*remove threshold="):
        _compare(tweets, sim, sample=50, cascade=True, threshold=0.7)
    assert sim.sent() == 0


def test_a_cascade_listed_strongest_first_warns_naming_the_cheaper_first_order(tweets, sim):
    with pytest.warns(batchkit.BatchkitWarning, match=rf"cheapest first: cascade=\[{HAIKU!r}, {SONNET!r}\]"):
        _classify(tweets.head(10), sim, cascade=[SONNET, HAIKU])
    with warnings.catch_warnings():
        warnings.simplefilter("error", batchkit.BatchkitWarning)
        _classify(tweets.head(10), sim, cascade=[HAIKU, SONNET])
