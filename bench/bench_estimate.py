"""Estimates that hold: estimate vs actual for batch, classify and extract on every dataset in data/.

For each dataset, verb and caching mode — ``cache=False`` with the bare prompt (the row's text is
most of the input, so the output estimate matters most), and ``"auto"`` and ``"prime"`` behind a
shared instruction block of ~5,000 tokens (over claude-haiku-4-5's 4,096-token minimum) — on the
simulator (default processing concurrency, clock sped up 20×):

1. **Uncalibrated**: ``df.claude.estimate(...)`` in a fresh store, then the same call run on every
   row; the actual cost must fall inside the estimate's low–high range and the typical figure be
   within ±25% of it. Output tokens come from the schema (classify, extract) or, for free text,
   from the user's figure (``typical_output_tokens=12``: "one short sentence"). Free text without
   a figure (``prior``: the typical is a quarter of ``max_tokens``, a prior) must only hold its range.
2. **Calibrated**: in another fresh store, the same call on a 100-row sample first (25 rows of
   the 50 synopses), then
   ``estimate(..., calibrate=sample_job)`` and the run on every row (the sample's rows are
   answered already: neither estimated nor paid again); the typical figure must be within ±10%.
3. **A paid sample**: in a third fresh store, ``estimate(..., sample_answers=20)`` (20 rows
   answered in realtime, their cost shown) and the run on every row (those 20 reused): the
   actual inside the range, the typical within ±10%.

It prints the table and the worst errors, and exits non-zero if a bound is missed.

Usage: ``python bench/bench_estimate.py`` (about two minutes on 2 cores).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import batchkit  # noqa: E402, F401  (registers df.claude)
from batchkit.engine import calls  # noqa: E402
from batchkit.engine.sendmode import run_mode  # noqa: E402
from batchkit.simulator import SimConfig, Simulator  # noqa: E402

MODEL = "claude-haiku-4-5"
INSTRUCTIONS = (
    " ".join(
        f"Guideline {i}: read the whole text before answering, weigh its overall meaning over isolated words, "
        f"treat irony by its intent, and ignore spelling, slang and emoticons that do not change the meaning."
        for i in range(1, 121)
    )
    + "\n\n"
)
SECTORS = [
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
]


def datasets() -> dict[str, tuple[pd.DataFrame, dict[str, dict[str, Any]]]]:
    """name → (frame, {verb: call arguments})."""
    data = ROOT / "data"
    nsmc = pd.read_csv(data / "nsmc_sample.tsv", sep="\t", quoting=3)
    tweets = pd.read_csv(data / "tweeteval_sentiment_val.csv")
    sp500 = pd.read_csv(data / "sp500_constituents.csv")
    synopses = pd.read_csv(data / "nsmc_synopses.csv")
    free = {"max_tokens": 200, "typical_output_tokens": 12}
    prior = {"max_tokens": 200}
    return {
        "nsmc_sample (2,000 ko)": (
            nsmc,
            {
                "batch": {"prompt": "Summarise this movie review in one short sentence: {document}", **free},
                "prior": {"prompt": "Summarise this movie review in one short sentence: {document}", **prior},
                "classify": {
                    "prompt": "Sentiment of this movie review: {document}",
                    "labels": ["positive", "negative"],
                },
                "extract": {
                    "prompt": "From this movie review: {document}",
                    "schema": {"sentiment": str, "aspect": str, "recommends": bool},
                },
            },
        ),
        "tweeteval (2,000 en)": (
            tweets,
            {
                "batch": {"prompt": "Summarise this tweet in one short sentence: {text}", **free},
                "prior": {"prompt": "Summarise this tweet in one short sentence: {text}", **prior},
                "classify": {
                    "prompt": "Sentiment of this tweet: {text}",
                    "labels": ["negative", "neutral", "positive"],
                },
                "extract": {"prompt": "From this tweet: {text}", "schema": {"topic": str, "mentions_person": bool}},
            },
        ),
        "sp500 (503)": (
            sp500,
            {
                "batch": {
                    "prompt": "Describe {Security} ({Symbol}), of {Headquarters Location}, in one short sentence.",
                    **free,
                },
                "prior": {
                    "prompt": "Describe {Security} ({Symbol}), of {Headquarters Location}, in one short sentence.",
                    **prior,
                },
                "classify": {"prompt": "Which GICS sector is {Security} ({GICS Sub-Industry}) in?", "labels": SECTORS},
                "extract": {
                    "prompt": "About {Security}, founded {Founded}, based in {Headquarters Location}:",
                    "schema": {"city": str, "state": str, "founded_year": int},
                },
            },
        ),
        "nsmc_synopses (50 ko)": (
            synopses,
            {
                "batch": {"prompt": "Summarise this synopsis in one short sentence: {synopsis}", **free},
                "prior": {"prompt": "Summarise this synopsis in one short sentence: {synopsis}", **prior},
                "classify": {
                    "prompt": "Genre of this film: {synopsis}",
                    "labels": ["drama", "action", "comedy", "thriller", "romance", "other"],
                },
                "extract": {"prompt": "From this synopsis: {synopsis}", "schema": {"protagonist": str, "setting": str}},
            },
        ),
    }


def _call(
    frame: pd.DataFrame,
    verb: str,
    args: dict[str, Any],
    cache: Any,
    store: str,
    client: Any,
    sample_answers: int | None = None,
) -> calls.Call:
    """The call ``df.claude.<verb>(...)`` would make (through the accessor's own path); ``prior`` is
    free text (``batch``) without a figure for the answers' length."""
    from batchkit.core.options import Options
    from batchkit.core.structured import classify_spec, extract_spec

    args = dict(args)
    prompt = (INSTRUCTIONS if cache is not False else "") + args.pop("prompt")
    typical = args.pop("typical_output_tokens", None)
    kw: dict[str, Any] = {"model": MODEL, "cache": cache, "store": store, "client": client, "poll_interval": 0.02}
    spec = None
    if verb == "prior":
        verb = "batch"
    if verb == "classify":
        spec = classify_spec(args.pop("labels"), output="predicted")
        kw["max_tokens"] = 256
    elif verb == "extract":
        spec = extract_spec(args.pop("schema"), prefix="x_")
        kw["max_tokens"] = 1024
    kw.update(args)
    options = Options.build({**kw, "typical_output_tokens": typical, "sample_answers": sample_answers}, verb="estimate")
    if spec is not None:
        options = Options(
            options.params.with_output_format(spec.output_config, verb=verb), options.run, options.estimate
        )
    output = "predicted" if spec is None else spec.columns[0][0]
    return calls.prepare(
        frame, prompt, output=output, options=options, kind=spec.kind if spec else "text", output_spec=spec
    )


def _with_calibration(call: calls.Call, job: Any) -> calls.Call:
    import dataclasses

    from batchkit.core.options import Options

    o = call.options
    return dataclasses.replace(call, options=Options(o.params, dataclasses.replace(o.run, calibrate=job), o.estimate))


def one(frame: pd.DataFrame, verb: str, args: dict[str, Any], cache: Any) -> dict[str, Any]:
    mode_of = run_mode
    # 1. uncalibrated, fresh store
    sim = Simulator(config=SimConfig(time_scale=20.0))
    store = str(Path(tempfile.mkdtemp()) / "jobs.sqlite3")
    call = _call(frame, verb, args, cache, store, sim.client())
    guess = calls.estimate(call)[mode_of(call)]
    actual = calls.submit(call).wait().cost.total
    # 2. calibrated on a 100-row sample, another fresh store
    sim = Simulator(config=SimConfig(time_scale=20.0))
    store = str(Path(tempfile.mkdtemp()) / "jobs.sqlite3")
    client = sim.client()
    sample = frame.sample(min(100, len(frame) // 2), random_state=0)  # 25 of the 50 synopses
    sample_job = calls.submit(_call(sample, verb, args, cache, store, client)).wait()
    call2 = _with_calibration(_call(frame, verb, args, cache, store, client), sample_job)
    calibrated = calls.estimate(call2)[mode_of(call2)]
    actual2 = calls.submit(call2).wait().cost.total if len(frame) > len(sample) else 0.0
    # 3. a paid sample of 20 answers, a third fresh store
    sim = Simulator(config=SimConfig(time_scale=20.0))
    store = str(Path(tempfile.mkdtemp()) / "jobs.sqlite3")
    client = sim.client()
    sampled = calls.estimate(_call(frame, verb, args, cache, store, client, sample_answers=20))
    s20 = sampled[mode_of(call)]
    actual3 = calls.submit(_call(frame, verb, args, cache, store, client)).wait().cost.total
    return {
        "mode": mode_of(call),
        "low": guess.low,
        "typical": guess.typical,
        "high": guess.high,
        "upper": guess.upper_bound,
        "actual": actual,
        "inside": guess.low - 1e-9 <= actual <= guess.high + 1e-9,
        "typical_err": guess.typical / actual - 1 if actual else 0.0,
        "cal_typical": calibrated.typical,
        "cal_actual": actual2,
        "cal_upper": calibrated.upper_bound,
        "cal_err": calibrated.typical / actual2 - 1 if actual2 else 0.0,
        "cal_inside": calibrated.low - 1e-9 <= actual2 <= calibrated.high + 1e-9,
        "s20_typical": s20.typical,
        "s20_actual": actual3,
        "s20_cost": sampled.sample_cost,
        "s20_err": s20.typical / actual3 - 1 if actual3 else 0.0,
        "s20_inside": s20.low - 1e-9 <= actual3 <= s20.high + 1e-9,
    }


CACHES: tuple[Any, ...] = (False, "auto", "prime")


def main() -> int:
    started = time.monotonic()
    rows = []
    for name, (frame, verbs) in datasets().items():
        for verb, args in verbs.items():
            for cache in CACHES:
                r = one(frame, verb, args, cache)
                rows.append({"dataset": name, "verb": verb, "cache": str(cache), **r})
                print(
                    f"{name:<24} {verb:<8} {cache!s:<6} {r['mode']:<9} est ${r['low']:.4f}–${r['high']:.4f} "
                    f"typ ${r['typical']:.4f} (upper ${r['upper']:.4f})  actual ${r['actual']:.4f} "
                    f"{'in' if r['inside'] else 'OUT'} {r['typical_err']:+.1%} | calibrated typ "
                    f"${r['cal_typical']:.4f} vs ${r['cal_actual']:.4f} {r['cal_err']:+.1%} "
                    f"{'in' if r['cal_inside'] else 'OUT'} | 20 answers (${r['s20_cost']:.4f}) typ "
                    f"${r['s20_typical']:.4f} vs ${r['s20_actual']:.4f} {r['s20_err']:+.1%} "
                    f"{'in' if r['s20_inside'] else 'OUT'}",
                    flush=True,
                )
    table = pd.DataFrame(rows)
    given = table["verb"] != "prior"  # a prior's typical is not held to ±25%: its range is
    bad = table[
        ~table["inside"]
        | ~table["cal_inside"]
        | ~table["s20_inside"]
        | (given & (table["typical_err"].abs() > 0.25))
        | (table["cal_err"].abs() > 0.10)
        | (table["s20_err"].abs() > 0.10)
    ]
    print(
        f"\n{len(table)} combinations in {time.monotonic() - started:.0f} s; "
        f"worst typical error {table[given]['typical_err'].abs().max():.1%} (bound 25%; a prior's: "
        f"{table[~given]['typical_err'].abs().max():.1%}, unbound), "
        f"after calibration {table['cal_err'].abs().max():.1%} (bound 10%), "
        f"on 20 answers {table['s20_err'].abs().max():.1%} (bound 10%); "
        f"actual inside the range: {int(table['inside'].sum())}/{len(table)} "
        f"(calibrated {int(table['cal_inside'].sum())}, on 20 answers {int(table['s20_inside'].sum())}); "
        f"upper bound / actual at most {(table['upper'] / table['actual']).max():.2f}× "
        f"(calibrated {(table['cal_upper'] / table['cal_actual']).max():.2f}×)"
    )
    if not bad.empty:
        print(
            "\nMISSED:\n"
            + bad[
                ["dataset", "verb", "cache", "typical_err", "cal_err", "s20_err", "inside", "cal_inside", "s20_inside"]
            ].to_string()
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
