"""How often the simulator's default responder labels the shipped data right.

The simulator's answers are simulated, not Claude's: this measures the small lexicon heuristic
behind its labelling answers (``batchkit/simulator/_sentiment.py``), so that the figures stated
in ``batchkit/simulator/README.md`` are measured, not claimed. Each dataset goes through the
real request path — ``df.claude.batch`` (free-text prompt) and ``df.claude.classify`` (a
JSON-schema enum) rendered by batchkit, sent through the ``anthropic`` SDK to an in-process
simulator, answers merged back — and the answers are compared with the gold labels, which the
responder never sees.

- ``data/nsmc_sample.tsv``: 2,000 Korean movie reviews, positive / negative. The lexicon was
  written while looking at rows 0–999 only; rows 1,000–1,999 are held out and shown apart.
- ``data/tweeteval_sentiment_val.csv``: 2,000 English tweets, negative / neutral / positive.
  The English lexicon was extended while looking at rows 0–999; rows 1,000–1,999 are shown apart.

It also times the responder alone on each dataset's requests (µs per request).

Usage: ``python bench/bench_responder.py``
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import pandas as pd
import pydantic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import batchkit  # noqa: E402
from batchkit.compare.scoring import wilson_interval  # noqa: E402
from batchkit.simulator import Processing, SimConfig, Simulator, default_responder  # noqa: E402

KOREAN_PROMPT = (
    "Classify the sentiment of this movie review as positive or negative. Answer with one word.\n\nReview: {document}"
)
ENGLISH_PROMPT = (
    "Classify the sentiment of this tweet as positive, negative or neutral. Answer with one word.\n\nTweet: {text}"
)
MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7")
HELD_OUT = slice(1000, 2000)
"""Rows not looked at while the lexicons were written (in both datasets)."""


def _run(
    frame: pd.DataFrame, how: str, prompt: str, labels: list[str], client, store: str, model: str = "claude-haiku-4-5"
) -> pd.Series:
    common = {"model": model, "client": client, "store": store}
    if how == "batch":
        out = frame.claude.batch(prompt, output="answer", max_tokens=5, progress=False, poll_interval=0.01, **common)
        return out["answer"].astype("string").str.strip().str.lower()
    out = frame.claude.classify(prompt, labels=labels, output="answer", progress=False, poll_interval=0.01, **common)
    return out["answer"].astype("string")


def _accuracy(answer: pd.Series, gold: pd.Series) -> float:
    return float((answer.to_numpy() == gold.to_numpy()).mean())


def _responder_microseconds(frame: pd.DataFrame, prompt: str) -> float:
    params = [
        {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": prompt.format(**row)}]}
        for row in frame.to_dict("records")
    ]
    started = time.perf_counter()
    for p in params:
        default_responder(p)
    return (time.perf_counter() - started) / len(params) * 1e6


def _judged(
    frame: pd.DataFrame, prompt: str, labels: list[str], model: str, gold: pd.Series, client, store: str
) -> pd.DataFrame:
    """Each row's label, confidence, whether it is right, and what it cost, from ``model``:
    extract with a label and a ``confidence`` in [0, 1], what a cascade asks its first model for."""
    judged = pydantic.create_model(
        "Judged",
        label=(Literal[tuple(labels)], ...),  # type: ignore[valid-type]
        confidence=(float, pydantic.Field(ge=0, le=1)),
    )
    out = frame.claude.extract(
        prompt,
        schema=judged,
        prefix="llm_",
        model=model,
        client=client,
        store=store,
        progress=False,
        poll_interval=0.01,
    )
    return pd.DataFrame(
        {
            "confidence": out["llm_confidence"].to_numpy(dtype=float),
            "right": out["llm_label"].astype("string").to_numpy() == gold.to_numpy(),
            "cost": batchkit.Job.of(out).outcomes()["cost"].to_numpy(dtype=float),
        }
    )


def _interval(right: pd.Series) -> str:
    lo, hi = wilson_interval(float(right.sum()), len(right))
    return f"{right.mean():.1%} [{lo:.1%}–{hi:.1%}]"


def _bands(name: str, judged: dict[str, pd.DataFrame]) -> None:
    """Each model's accuracy, cost per row, and accuracy when its confidence is ≥ 0.8 and < 0.8."""
    print(f"\n{name}: {'accuracy [95% CI]':<24} {'$ / row':>9} {'conf ≥ 0.8':>18} {'conf < 0.8':>18}")
    for model, rows in judged.items():
        sure = rows["confidence"] >= 0.8
        print(
            f"  {model:<20} {_interval(rows['right']):<24} {rows['cost'].mean():>9.6f} "
            f"{sure.mean():>5.0%} rows {rows['right'][sure].mean():>6.1%} "
            f"{(~sure).mean():>5.0%} rows {rows['right'][~sure].mean():>6.1%}"
        )


def _confidence_report(datasets: list[tuple], client, store: str) -> None:
    """Accuracy by confidence band per model on each dataset, and on the last (the tweets) the
    haiku → sonnet cascade at each threshold ``t`` (keep haiku's answer when its confidence ≥ t)."""
    print("\nConfidence (a schema property named `confidence`, 0–1; simulated, not a benchmark of Claude)")
    for frame, prompt, labels, gold, name in datasets:
        judged = {model: _judged(frame, prompt, labels, model, gold, client, store) for model in MODELS}
        _bands(name, judged)
    first, second = judged["claude-haiku-4-5"], judged["claude-sonnet-4-6"]
    target_lo, target_hi = wilson_interval(float(second["right"].sum()), len(second))
    print(f"\nCascade haiku → sonnet (sonnet alone: {_interval(second['right'])}, ${second['cost'].sum():.4f}):")
    print(f"{'t':>5} {'escalated':>10} {'accuracy [95% CI]':<24} {'cost':>9} {'vs sonnet':>10}")
    best = None
    for t in [k / 20 for k in range(1, 20)]:
        keep = first["confidence"] >= t
        right = first["right"].where(keep, second["right"])
        cost = first["cost"].sum() + second["cost"][~keep].sum()
        lo, hi = wilson_interval(float(right.sum()), len(right))
        overlaps = lo <= target_hi and hi >= target_lo
        as_good = right.mean() >= second["right"].mean()
        if as_good and (best is None or cost < best[1]):
            best = (t, cost, right, (~keep).mean())
        note = "  as good as sonnet" if as_good else "" if overlaps else "  (interval misses sonnet’s)"
        print(
            f"{t:>5.2f} {(~keep).mean():>10.0%} {_interval(right):<24} {cost:>9.4f} "
            f"{cost / second['cost'].sum():>10.0%}{note}"
        )
    if best is not None:
        t, cost, right, escalated = best
        print(
            f"Cheapest cascade at least as accurate as sonnet: t = {t:.2f}, {escalated:.0%} escalated, accuracy "
            f"{_interval(right)}, ${cost:.4f} = {cost / second['cost'].sum():.0%} of sonnet's cost."
        )


def main() -> None:
    reviews = pd.read_csv(ROOT / "data" / "nsmc_sample.tsv", sep="\t", quoting=3)
    tweets = pd.read_csv(ROOT / "data" / "tweeteval_sentiment_val.csv")
    korean_gold = reviews["label"].map({0: "negative", 1: "positive"})
    english_gold = tweets["label_name"]

    sim = Simulator(config=SimConfig(processing=Processing.instant()))
    client = sim.client()
    print("Default responder (simulated answers, not Claude's) against the gold labels it never sees\n")
    print(f"{'dataset':<34} {'request':<28} {'rows':>6} {'accuracy':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "jobs.sqlite3")
        for how in ("batch", "classify"):
            answer = _run(reviews, how, KOREAN_PROMPT, ["negative", "positive"], client, store)
            kind = "free text, positive/negative" if how == "batch" else "classify (JSON-schema enum)"
            print(
                f"{'NSMC Korean reviews, all':<34} {kind:<28} {len(reviews):>6,} {_accuracy(answer, korean_gold):>9.1%}"
            )
            print(
                f"{'  held out (rows 1,000–1,999)':<34} {'':<28} {1000:>6,} "
                f"{_accuracy(answer[HELD_OUT], korean_gold[HELD_OUT]):>9.1%}"
            )
        for how in ("batch", "classify"):
            answer = _run(tweets, how, ENGLISH_PROMPT, ["negative", "neutral", "positive"], client, store)
            kind = "free text, 3 labels" if how == "batch" else "classify (JSON-schema enum)"
            print(
                f"{'TweetEval English tweets, all':<34} {kind:<28} {len(tweets):>6,} "
                f"{_accuracy(answer, english_gold):>9.1%}"
            )
            print(
                f"{'  held out (rows 1,000–1,999)':<34} {'':<28} {1000:>6,} "
                f"{_accuracy(answer[HELD_OUT], english_gold[HELD_OUT]):>9.1%}"
            )
            if how == "batch":
                table = pd.crosstab(english_gold.rename("gold"), answer.rename("answer"))
        print("\nSimulated per-model differences (SIMULATED_MODELS; simulated, not a benchmark of Claude):")
        three = ["negative", "neutral", "positive"]
        for frame, prompt, labels, gold, name in (
            (reviews, KOREAN_PROMPT, ["negative", "positive"], korean_gold, "NSMC Korean reviews, all"),
            (tweets, ENGLISH_PROMPT, three, english_gold, "TweetEval English tweets, all"),
        ):
            for model in MODELS:
                answer = _run(frame, "classify", prompt, labels, client, store, model)
                print(f"{name:<34} {'classify, ' + model:<28} {len(frame):>6,} {_accuracy(answer, gold):>9.1%}")
        _confidence_report(
            [
                (reviews, KOREAN_PROMPT, ["negative", "positive"], korean_gold, "NSMC Korean reviews"),
                (tweets, ENGLISH_PROMPT, three, english_gold, "TweetEval English tweets"),
            ],
            client,
            store,
        )
        client.close()
    majority = english_gold.value_counts(normalize=True).iloc[0]
    print(
        f"\nBaselines: NSMC majority class {korean_gold.value_counts(normalize=True).iloc[0]:.1%}, "
        f"TweetEval majority class (neutral) {majority:.1%}."
    )
    print("\nTweetEval, free text: gold (rows) × answer (columns)")
    print(table.to_string())
    print(
        f"\nResponder alone: {_responder_microseconds(reviews, KOREAN_PROMPT):.1f} µs per Korean review, "
        f"{_responder_microseconds(tweets, ENGLISH_PROMPT):.1f} µs per tweet"
    )
    assert batchkit  # imported for df.claude


if __name__ == "__main__":
    main()
