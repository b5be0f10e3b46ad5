"""df.claude.compare: quality and cost of model × prompt variants on a sample, and the run after it."""

from __future__ import annotations

import time

import matplotlib
import numpy as np
import pandas as pd
import pytest

import batchkit
from batchkit import BatchkitWarning, CalibrationError, Comparison, InvalidOptionError
from batchkit.compare.comparison import wilson_interval
from batchkit.compare.runner import sample_positions
from batchkit.simulator import Processing, SimConfig, Simulator
from batchkit.simulator._responder import default_responder
from tests.conftest import DATA, echo, make_sim

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
    cmp = tweets.claude.compare(
        PROMPT,
        prompts=[OTHER],
        task="classify",
        labels=LABELS,
        truth="gold",
        models=MODELS,
        sample=200,
        client=sim.client(),
        poll_interval=0.02,
    )
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
    cmp = tweets.claude.compare(
        PROMPT, task="classify", labels=LABELS, models=MODELS, sample=60, client=sim.client(), poll_interval=0.02
    )
    assert cmp.truth is None and cmp.reference is not None and cmp.reference.model == "claude-opus-4-7"
    assert cmp.quality_label == "agreement with claude-opus-4-7 · p1"
    text = str(cmp)
    assert "AGREEMENT" in text and "not accuracy" in text and "accuracy against" not in text
    table = cmp.to_frame()
    assert table.attrs["quality"].startswith("agreement") and table["reference"].sum() == 1
    confusion = cmp.confusion("claude-haiku-4-5 · p1")
    assert confusion.to_numpy().sum() == 60 and confusion.index.name == "reference"


def test_a_target_picks_the_cheapest_variant_whose_lower_bound_meets_it(tweets, sim):
    kwargs = dict(
        task="classify", labels=LABELS, truth="gold", models=MODELS, sample=100, client=sim.client(), poll_interval=0.02
    )
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
        "Which sector is {Security} in?",
        task="extract",
        schema={"sector": str},
        truth={"sector": "GICS Sector"},
        models=["claude-haiku-4-5", "claude-sonnet-4-6"],
        sample=40,
        client=sim.client(),
        poll_interval=0.02,
    )
    table = cmp.to_frame()
    assert "quality_sector" in table.columns and (table["scored_rows"] == 40).all()
    assert table["quality"].between(0, 1).all()
    with pytest.raises(InvalidOptionError, match="per-field"):
        cmp.confusion()


def test_plot_marks_the_front_and_the_choice(tweets, sim):
    cmp = tweets.claude.compare(
        PROMPT,
        task="classify",
        labels=LABELS,
        truth="gold",
        models=MODELS[:2],
        sample=50,
        client=sim.client(),
        poll_interval=0.02,
    )
    ax = cmp.plot()
    labels = [line.get_label() for line in ax.get_lines()]
    assert "cost–quality front" in labels and "recommended" in labels
    assert ax.get_ylabel() == "accuracy" and "$ per row" in ax.get_xlabel()


def test_the_plots_names_sit_inside_the_figure_and_apart(tweets, sim):
    """Six variants, the opus ones at nearly the same point: every name is drawn whole and legible."""
    cmp = tweets.claude.compare(
        PROMPT,
        prompts=[OTHER],
        task="classify",
        labels=LABELS,
        truth="gold",
        models=MODELS,
        sample=200,
        client=sim.client(),
        poll_interval=0.02,
    )
    ax = cmp.plot()
    figure = ax.figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    names = [t for t in ax.texts if t.get_text() in {v.name for v in cmp.variants}]
    assert len(names) == 6
    frame, boxes = ax.get_window_extent(renderer), [t.get_window_extent(renderer) for t in names]
    for text, box in zip(names, boxes, strict=True):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text.get_text()
    for i, box in enumerate(boxes):
        for other, text in zip(boxes[i + 1 :], names[i + 1 :], strict=True):
            assert not box.overlaps(other), (names[i].get_text(), text.get_text())
    legend = ax.get_legend().get_window_extent(renderer)
    assert not any(legend.overlaps(box) for box in boxes)


def test_free_text_compare_and_estimate_calibrated_on_the_comparison(tweets, sim):
    client = sim.client()
    prompt = "Summarise this tweet in one sentence: {text}"
    cmp = tweets.claude.compare(
        prompt,
        models=["claude-haiku-4-5", "claude-opus-4-7"],
        sample=40,
        max_tokens=100,
        client=client,
        poll_interval=0.02,
    )
    assert cmp.truth is None and cmp.task == "batch"
    guess = tweets.claude.estimate(prompt, model="claude-opus-4-7", max_tokens=100, client=client, calibrate=cmp)
    assert guess.calibrated_on is not None and "claude-opus-4-7" in guess.calibrated_on
    assert guess.output_basis == "measured" and "calibrated on" in str(guess)
    with pytest.raises(CalibrationError, match="no variant with the prompt"):
        tweets.claude.estimate("Other: {text}", model="claude-opus-4-7", client=client, calibrate=cmp)


def test_simulated_models_differ_deterministically_only_where_the_text_shows_no_sentiment():
    def ask(model: str, text: str) -> str:
        return default_responder(
            {
                "model": model,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": f"Sentiment (positive, negative or neutral): {text}"}],
            }
        )

    plain = [f"The meeting is on day {i} at the office." for i in range(300)]
    haiku = [ask("claude-haiku-4-5", t) for t in plain]
    opus = [ask("claude-opus-4-7", t) for t in plain]
    assert haiku == [ask("claude-haiku-4-5", t) for t in plain]  # deterministic
    guessed = {m: sum(a != "neutral" for a in answers) / len(plain) for m, answers in (("h", haiku), ("o", opus))}
    assert 0.2 < guessed["h"] < 0.5 and guessed["o"] < 0.12 and guessed["o"] < guessed["h"]
    for model in ("claude-haiku-4-5", "claude-opus-4-7"):  # a verdict with evidence is never changed
        assert ask(model, "I love it, a wonderful day") == "positive"
        assert ask(model, "Terrible, I hate it") == "negative"


# --------------------------------------------------------------------------- easy samples, silent variants


def _variant(name: str, model: str, right: int, n: int, cost: float, answers: pd.DataFrame):
    from batchkit.compare.comparison import Variant

    return Variant(
        name,
        model,
        "p1",
        PROMPT,
        job=None,
        answers=answers,
        correct=np.arange(n) < right,
        scored=np.ones(n, dtype=bool),
        usage_cost=(cost * n, 2 * cost * n),
    )


def _comparison(variants, n: int, *, truth="gold", target=None, reference=None) -> Comparison:
    return Comparison(
        frame=pd.DataFrame(index=range(n)),
        positions=np.arange(n),
        task="batch",
        variants=variants,
        truth=truth,
        reference=reference,
        target=target,
        call_kwargs={},
        structure={},
        output=None,
        simulated=True,
    )


def test_wilson_interval_holds_its_proportion_for_every_sample_size_up_to_1000():
    rng = np.random.default_rng(0)
    for n in range(1, 1001):
        for k in {0, 1, n // 3, n // 2, (4 * n) // 5, n - 1, n, int(rng.integers(0, n + 1))}:
            lo, hi = wilson_interval(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0, (k, n, lo, hi)
        assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0, n


def test_the_choice_never_fails_whatever_the_sample_size_and_the_proportions():
    for n in range(1, 1001):
        answers = pd.DataFrame({"a": ["x"] * n})
        haiku, sonnet = (
            _variant(m, f"claude-{m}", n, n, cost, answers) for m, cost in (("haiku", 0.001), ("sonnet", 0.003))
        )
        for k in (n, (9 * n) // 10, n // 2):  # an easy sample (every variant right on every row) and harder ones
            opus = _variant("opus", "claude-opus-4-7", k, n, 0.005, answers)
            easy = _comparison([haiku, sonnet, opus], n)
            assert easy.recommended is haiku and "best accuracy (100.0%)" in easy.reason, (n, k, easy.reason)
            # without truth: agreement with the reference (the dearest), which agrees with itself on every row
            agree = _comparison([haiku, sonnet, opus], n, truth=None, reference=opus)
            assert agree.recommended is haiku, (n, k, agree.reason)
        worse = [
            _variant("haiku", "claude-haiku-4-5", n // 2, n, 0.001, answers),
            _variant("sonnet", "claude-sonnet-4-6", (9 * n) // 10, n, 0.003, answers),
            _variant("opus", "claude-opus-4-7", n, n, 0.005, answers),
        ]
        cmp = _comparison(worse, n)
        assert cmp.recommended is not None and cmp.recommended.interval[1] >= 1.0 - 1e-9, (n, cmp.reason)
        # a target no variant can be sure of: no choice, said in words
        far = _comparison(worse, n, target=1.0)
        assert far.recommended is None and "lower target" in far.reason, (n, far.reason)
    assert "recommended: none" in str(far) and "<table" in far._repr_html_()


def test_a_sample_every_variant_answers_right_recommends_the_cheapest_without_error():
    sim = make_sim()
    easy = pd.DataFrame({"t": [f"row {i}" for i in range(400)]}).assign(gold=lambda d: "re:" + d["t"])
    for size in (10, 300):  # the upper bound of n/n was 0.9999999999999999 for both
        cmp = easy.claude.compare(
            "{t}", models=MODELS[:2], sample=size, truth="gold", client=sim.client(), progress=False
        )
        assert (cmp.to_frame()["quality"] == 1.0).all() and (cmp.to_frame()["quality_high"] == 1.0).all()
        assert cmp.recommended is not None and cmp.recommended.model == "claude-haiku-4-5", cmp.reason
        assert "best accuracy (100.0%)" in cmp.reason and "✓" in str(cmp)
        agree = easy.claude.compare("{t}", models=MODELS[:2], sample=size, client=sim.client(), progress=False)
        assert agree.recommended is not None and agree.recommended.model == "claude-haiku-4-5", agree.reason


def _fails_on(model: str):
    def responder(params):
        if params["model"] == model:
            raise RuntimeError("this model is down")
        return echo(params)

    return responder


def test_a_variant_without_answers_prints_says_why_and_is_never_the_choice():
    sim = Simulator(config=SimConfig(processing=Processing.instant()), responder=_fails_on("claude-haiku-4-5"))
    df = pd.DataFrame({"t": [f"row {i}" for i in range(30)], "none": None}).assign(gold=lambda d: "re:" + d["t"])
    with pytest.warns(BatchkitWarning) as warned:  # each failed job says so, as any job does
        cmp = df.claude.compare(
            "{t}",
            prompts={"blank": "{none}"},
            models=MODELS[:2],
            sample=10,
            truth="gold",
            mode="batch",
            max_retries=0,
            client=sim.client(),
            progress=False,
        )
    assert {"errored" in str(w.message) for w in warned} == {True, False}
    silent = cmp["claude-haiku-4-5 · p1"]
    assert silent.answered == 0 and silent.missing == "10 errored"
    assert cmp["claude-sonnet-4-6 · blank"].missing == "10 skipped"  # no value to fill the prompt: not sent
    assert cmp.recommended is cmp["claude-sonnet-4-6 · p1"], cmp.reason
    text = str(cmp)
    assert "no answers from claude-haiku-4-5 · p1 (10 errored)" in text and "no answers" in cmp._repr_html_()
    table = cmp.to_frame()
    assert (
        table.loc["claude-haiku-4-5 · p1", "answered_rows"] == 0
        and not table.loc["claude-haiku-4-5 · p1", "recommended"]
    )
    assert np.isfinite(cmp.projected(silent))  # priced without calibration: it has no answers to measure


def test_without_answers_from_the_reference_there_is_no_choice_and_run_says_why():
    sim = Simulator(config=SimConfig(processing=Processing.instant()), responder=_fails_on("claude-sonnet-4-6"))
    df = pd.DataFrame({"t": [f"row {i}" for i in range(30)]})
    with pytest.warns(BatchkitWarning, match="errored"):
        cmp = df.claude.compare(
            "{t}", models=MODELS[:2], sample=10, mode="batch", max_retries=0, client=sim.client(), progress=False
        )
    assert cmp.reference is not None and cmp.reference.model == "claude-sonnet-4-6"
    assert cmp.recommended is None and "reference claude-sonnet-4-6 · p1 has no answers (10 errored)" in cmp.reason
    assert "reference=" in cmp.reason and "truth=" in cmp.reason
    assert "recommended: none" in str(cmp) and "<table" in cmp._repr_html_()
    assert "no variant has answers to score" in [t.get_text() for t in cmp.plot().texts]
    before = sim.stats()["batch_requests_received"]
    with pytest.raises(InvalidOptionError, match=r"no recommended variant .*has no answers"):
        cmp.run()
    assert sim.stats()["batch_requests_received"] == before


def test_extraction_truth_is_read_as_the_fields_kind():
    def year(params):
        return {"year": 2000 + int(str(params["messages"][0]["content"]).split()[-1])}

    sim = Simulator(config=SimConfig(processing=Processing.instant()), responder=year)
    df = pd.DataFrame({"t": [f"founded in {i}" for i in range(40)]})
    df["as_float"] = [2000.0 + i if i % 4 else np.nan for i in range(40)]  # ints with gaps are floats
    df["as_text"] = [f" {2000 + i} " for i in range(40)]
    for column in ("as_float", "as_text"):
        cmp = df.claude.compare(
            "{t}",
            task="extract",
            schema={"year": int},
            truth={"year": column},
            models=MODELS[:2],
            sample=20,
            client=sim.client(),
            progress=False,
        )
        assert (cmp.to_frame()["quality"] == 1.0).all(), (column, cmp.to_frame()["quality"])


def test_a_classify_truth_is_matched_as_it_is_scored_case_and_final_period_aside():
    def label(params):
        return {"label": "positive" if "good" in str(params["messages"][0]["content"]) else "negative"}

    sim = Simulator(config=SimConfig(processing=Processing.instant()), responder=label)
    df = pd.DataFrame({"t": [f"good {i}" if i % 2 else f"bad {i}" for i in range(20)]})
    df["gold"] = [" Positive." if i % 2 else "NEGATIVE" for i in range(20)]
    df.loc[0, "gold"] = ""  # a blank truth is no truth: not scored
    cmp = df.claude.compare(
        "{t}",
        task="classify",
        labels=["positive", "negative"],
        truth="gold",
        models=MODELS[:2],
        sample=20,
        client=sim.client(),
        progress=False,
    )
    table = cmp.to_frame()
    assert (table["quality"] == 1.0).all() and (table["scored_rows"] == 19).all()
