"""``batchkit demo``: a real batch through the anthropic SDK on the local simulator, told as it goes.

It classifies a shipped sample of Korean movie reviews (NSMC, ``batchkit/data``) with the calls a
user would write — estimate, submit, watch the batch, read the answers and the cost, re-run for
free — and says plainly that the answers are the simulator's heuristic, not Claude's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import unicodedata
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from batchkit.core.states import UnitState

if TYPE_CHECKING:
    from batchkit.costs.pricing import CostEstimate
    from batchkit.engine.jobs import Job

__all__ = [
    "DEMO_PROMPT",
    "DEMO_REVIEWS",
    "api_calls",
    "cmd_demo",
    "demo_data_path",
    "demo_rows",
    "display_width",
    "load_reviews",
]

DEMO_PROMPT = (
    "Classify the sentiment of this movie review as positive or negative. Answer with one word.\n\nReview: {document}"
)


def cmd_demo(args: argparse.Namespace) -> int:
    """Classify Korean movie reviews through the real SDK on the local simulator, and say so.

    Uses a temporary job store, removed at the end, unless ``--store`` names one to keep.
    """
    import batchkit  # noqa: F401  (registers df.claude)
    from batchkit.local import start_simulator

    reviews = load_reviews(args.rows)
    with tempfile.TemporaryDirectory(prefix="batchkit-demo-") as scratch:
        store = args.store or str(Path(scratch) / "jobs.sqlite3")
        # The simulator keeps its batches in the demo's scratch folder (removed with it), never
        # beside a store of the user's: the demo leaves no files behind and touches no other state.
        server = start_simulator(state=Path(scratch) / "simulator-api.sqlite3")
        try:
            _demo_run(reviews, args.model, store, server)
        finally:
            server.stop()
            _close_store(store)
    where = f"kept at {args.store}" if args.store else "temporary, removed (pass --store PATH to keep one)"
    print(f"Job store: {where}.")
    return 0


def _demo_run(reviews: pd.DataFrame, model: str, store: str, server: Any) -> None:
    print(
        f"batchkit demo: {len(reviews):,} Korean movie reviews (NSMC) classified as Message Batches naming\n"
        f"{model}, through the anthropic SDK, sent to batchkit's local simulator of the Anthropic API\n"
        f"({server.base_url}).\n"
        "The answers are SIMULATED: a small word-list heuristic in the simulator, not Claude. They show\n"
        "how batchkit works (estimate, batches, answers, cost, re-runs), not how well Claude classifies.\n"
        "For real answers, set ANTHROPIC_API_KEY=sk-ant-... and run the same calls in Python\n"
        '(see "A short tour" in the README); batchkit then talks to Anthropic and bills your account.\n'
    )
    print("Prompt, one request per row:")
    print(_indent(DEMO_PROMPT) + "\n")

    started = time.monotonic()
    estimate = reviews.claude.estimate(DEMO_PROMPT, output="sentiment", model=model, max_tokens=5, store=store)
    print("Before sending anything, reviews.claude.estimate(...):")
    print(_indent(str(estimate)) + "\n")

    job = reviews.claude.submit(DEMO_PROMPT, output="sentiment", model=model, max_tokens=5, store=store)
    _demo_watch(job, started)
    out = _demo_answers(job, reviews)
    _demo_cost(job, estimate)
    _demo_rerun(reviews, out, model, store, server.simulator)


def _demo_watch(job: Job, started: float) -> None:
    """The job's batches as they change, until it has ended."""
    requests = len(set(job.row_keys))
    same = len(job.row_keys) - requests
    print(
        f"reviews.claude.submit(...) → job {job.job_id}: {len(job.row_keys):,} rows, {requests:,} requests"
        + (f" ({same:,} duplicate review{'s' * (same != 1)} sent once)" if same else "")
    )
    last = None
    while not job.done:
        line = ", ".join(
            f"batch {b.api_id} {_BATCH_STATES.get(b.state, b.state)}" if b.api_id else "a batch being created"
            for b in job.batches().itertuples()
        )
        if line != last:
            print(f"  {time.monotonic() - started:5.1f} s  {line}")
            last = line
        time.sleep(0.1)
    job.wait()
    print(f"  {time.monotonic() - started:5.1f} s  ended: {job.summary()}\n")


def _demo_answers(job: Job, reviews: pd.DataFrame) -> pd.DataFrame:
    """The answers beside the reviewers' labels; returns the frame with the answers."""
    out = job.to_frame(reviews)
    gold = reviews["label"].map({0: "negative", 1: "positive"})
    agree = int((out["sentiment"].str.strip().str.lower() == gold).sum())
    print("Simulated answers next to the reviewers' own labels (first 10):")
    rows = [(_clip(str(d), 46), g, str(a)) for d, g, a in zip(out["document"], gold, out["sentiment"], strict=True)]
    print(_table(("review", "label", "simulated answer"), rows[:10]))
    print(
        f"The simulator's heuristic agrees with the labels on {agree:,} of {len(out):,} reviews "
        f"({agree / len(out):.1%}):\na figure about the simulator, not about Claude.\n"
    )
    return out


def _demo_cost(job: Job, estimate: CostEstimate) -> None:
    """Usage and cost, against the standard price and the estimate given before sending."""
    outcomes = job.outcomes()
    cost = job.cost
    batch = estimate["batch"]
    inside = batch.low - 1e-9 <= cost.total <= batch.high + 1e-9
    print(
        f"Usage: {int(outcomes['input_tokens'].sum()):,} input and {int(outcomes['output_tokens'].sum()):,} "
        f"output tokens for {cost.requests_paid:,} requests."
    )
    print(
        f"Cost at batch prices: ${cost.total:,.4f} (simulated: nothing is billed). Sent one by one to the\n"
        f"standard API it would be ${cost.standard:,.4f}, so {cost.saving:.0%} saved. The estimate above said "
        f"${batch.low:,.4f}–${batch.high:,.4f}:\nthe actual cost is {'within' if inside else 'outside'} it.\n"
    )


def _demo_rerun(reviews: pd.DataFrame, out: pd.DataFrame, model: str, store: str, sim: Any) -> None:
    """The same call again: the same answers from the store, no batch and no API call."""
    batches_before, calls_before = sim.stats()["batches_created"], api_calls(sim.stats())
    again = reviews.claude.batch(
        DEMO_PROMPT, output="sentiment", model=model, max_tokens=5, store=store, progress=False
    )
    assert again["sentiment"].equals(out["sentiment"])
    print(
        f"Re-run of the same call, reviews.claude.batch(...): the same {len(again):,} answers, read from the\n"
        f"job store — {sim.stats()['batches_created'] - batches_before} new batches, "
        f"{api_calls(sim.stats()) - calls_before} API calls, $0."
    )


_BATCH_STATES = {
    UnitState.IN_PROGRESS: "in progress",
    UnitState.ENDED: "ended",
    UnitState.COLLECTED: "ended, results collected",
    UnitState.CANCELING: "canceling",
    UnitState.FAILED: "refused by the API",
    UnitState.LOST: "lost: the API no longer knows it (its rows have no answer)",
}


def _close_store(path: str) -> None:
    """Close the demo's store so its folder can go (the store keeps one connection per path)."""
    from batchkit.stores.store import Store

    Store.resolve(path).close()


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clip(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns, with ``…`` where it was cut."""
    text = " ".join(text.split())
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns, padded by display width so Korean text lines up."""
    widths = [max(display_width(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = []
    for row in (header, *rows):
        cells = [cell + " " * (w - display_width(cell)) for cell, w in zip(row, widths, strict=True)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def api_calls(stats: dict[str, Any]) -> int:
    """API calls the simulator has answered, from its stats."""
    return sum(v for k, v in stats.items() if k.startswith(("batches.", "messages.", "models.")))


DEMO_REVIEWS = 2000
"""Reviews in the shipped sample (``batchkit/data/nsmc_sample.tsv``): the most ``demo --rows`` takes."""


def demo_rows(text: str) -> int:
    try:
        rows = int(text)
    except ValueError:
        rows = 0
    if not 1 <= rows <= DEMO_REVIEWS:
        raise argparse.ArgumentTypeError(
            f"{text!r} rows: the demo classifies 1 to {DEMO_REVIEWS:,} reviews (the sample it ships); pass "
            f"--rows N with N in that range"
        )
    return rows


def demo_data_path() -> Path:
    """The NSMC review sample the demo uses: shipped inside the package (``batchkit/data``), so
    the demo works after a normal install, not only from a checkout."""
    return Path(str(resources.files("batchkit") / "data" / "nsmc_sample.tsv"))


def load_reviews(rows: int) -> pd.DataFrame:
    """The first ``rows`` of the NSMC Korean movie-review sample (see ``batchkit/data/README.md``)."""
    frame = pd.read_csv(demo_data_path(), sep="\t", quoting=3)
    return frame.head(rows).reset_index(drop=True)
