"""What a call will cost, before it runs: tokens and dollars under every price line.

Input tokens are counted by the free ``count_tokens`` endpoint on a sample spread across request
sizes and scaled up (with a range from the sample's spread), or estimated offline; the output
length comes from a calibration run, the output schema, or a prior inside a range that holds
whatever the answers are. Prompt caching's hit rate comes from priming and the batch's size. The
estimate then says how long each mode takes and what ``auto`` would choose.
:func:`sum_estimates` adds up the estimates of a partitioned run's partitions.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anthropic
import numpy as np

from batchkit.backends import clients as backend
from batchkit.backends.tokens import count_tokens
from batchkit.core import _json, modes
from batchkit.core.modes import duration
from batchkit.core.plan import MediaLines, Plan
from batchkit.core.states import Mode
from batchkit.costs.caching import expected_hit_rates
from batchkit.costs.calibration import Calibration, measure
from batchkit.costs.pricing import (
    ASSUMED_CONCURRENCY,
    SHORTEST_ANSWER_TOKENS,
    CostBreakdown,
    CostEstimate,
    ModeCost,
    TokenSource,
    estimate_cost,
    estimate_request_tokens,
    schema_output_tokens,
    shared_prefix_tokens,
)
from batchkit.errors import UnknownModelError
from batchkit.stores.store import Store

from .locations import default_store_path
from .sendmode import choose_mode, realtime_limits

if TYPE_CHECKING:
    from .prepared import Call

__all__ = ["INPUT_Z", "LIKELY_HIGH", "MEDIA_NOTE", "OFFLINE_SAMPLE", "estimate_call", "spread_sample", "sum_estimates"]

OFFLINE_SAMPLE = 5000
"""Requests whose tokens are counted offline; the total is scaled from them."""


def estimate_call(
    call: Call,
    *,
    client: anthropic.Anthropic | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    count: bool = True,
) -> CostEstimate:
    """Price a call before it runs (``typical_output_tokens``, ``hit_rate`` and ``sample`` come
    from ``call.options.estimate``; ``client`` and ``store`` default to the call's own).

    Input tokens come from the ``count_tokens`` endpoint on a random sample of up to
    ``sample`` requests, scaled to all of them, when a client is available (counting is
    free) and ``count`` is true; otherwise from the offline estimate. A request larger than
    ``count_tokens`` takes (:data:`COUNT_TOKENS_MAX_BYTES`; it still fits a batch) is counted
    offline, and the estimate's ``token_source`` says so (``"count_tokens+offline"``).

    ``sample_answers=`` is not looked at here (:func:`batchkit.engine.calls.estimate` answers the
    sample first, :mod:`batchkit.engine.sampling`).
    """
    run, options = call.options.run, call.options.estimate
    plan = call.plan
    answered, in_flight, to_send = _to_send(call, store)
    counter = _counting_client(call, client) if count else None
    input_tokens, input_range, source = _input_tokens(plan, to_send, counter, options.sample)
    prefix = 0
    if call.cached and to_send:
        prefix = shared_prefix_tokens(_json.loads(plan.body(to_send[0])))
        prefix = min(prefix, input_tokens // len(to_send))
    measured = None
    if run.calibrate is not None:
        measured = measure(run.calibrate, model=call.model, prompt=call.spec.prompt, kind=call.kind)
    warm = measured is not None and measured.cache_warm and call.cached
    hit_rate, typical_hit, bound_hit = _hit_rates(call, len(to_send), warm)
    _check_priced(call)
    output = _output_figures(call, options.typical_output_tokens, measured)
    notes = (*_cache_notes(call, len(to_send), hit_rate, typical_hit, warm), *output.get("extra_notes", ()))
    if notes or warm:
        output["extra_notes"] = (*notes, *_warm_note(warm))
    calibrated_on = output.pop("calibrated_on", None)
    guess = estimate_cost(
        model=call.model,
        rows=len(call.plan.row_keys),
        rows_skipped=len(call.plan.skipped),
        unique_requests=len(plan.lines),
        already_answered=len(answered),
        in_flight=len(in_flight),
        input_tokens=input_tokens,
        max_tokens=call.spec.max_tokens,
        shared_prefix_tokens=prefix,
        token_source=source,
        hit_rate=hit_rate,
        typical_hit_rate=typical_hit,
        bound_hit_rate=bound_hit,
        input_range=input_range,
        cache_warm=warm,
        prices=run.prices,
        **output,
    )
    if isinstance(plan.lines, MediaLines):
        guess = dataclasses.replace(guess, notes=(*guess.notes, MEDIA_NOTE))
    if calibrated_on:
        guess = dataclasses.replace(guess, calibrated_on=calibrated_on)
    return _with_times(call, guess)


def _to_send(call: Call, store: Store | str | os.PathLike[str] | None) -> tuple[set[str], set[str], list[str]]:
    """The call's requests already answered, those in a batch already (this call's, resumed, or
    another's: paid for, waited for, not sent again), and the rest, to send."""
    run, plan = call.options.run, call.plan
    if store is None:
        store = run.store
    if store is None and run.client is not None:
        store = default_store_path(run.client)  # the simulator's answers live in its own store
    resolved_store = Store.resolve(store)
    keys = list(plan.lines)
    answered = resolved_store.answered(keys) if keys else set()
    in_flight = resolved_store.in_flight_among(keys) - answered if keys else set()
    if answered or in_flight:
        keys = [k for k in keys if k not in answered and k not in in_flight]
    return answered, in_flight, keys


def _counting_client(call: Call, client: anthropic.Anthropic | None) -> anthropic.Anthropic | None:
    """The client that counts tokens: the given one, the call's, the default, or one from the
    environment's key (None: count offline)."""
    if client is not None:
        return client
    client = call.options.run.client or backend.get_default_client()
    if client is None and (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
        client = backend.resolve_client(None)
    return client


def _input_tokens(
    plan: Plan, to_send: Sequence[str], client: anthropic.Anthropic | None, sample: int
) -> tuple[int, tuple[float, float] | None, TokenSource]:
    """Input tokens of the requests to send, their range, and where the figure comes from."""
    if not to_send:
        return 0, None, "offline"
    if client is None:
        # Every request when there are few (exact), else a sample scaled up.
        picked = to_send if len(to_send) <= OFFLINE_SAMPLE else random.Random(0).sample(to_send, OFFLINE_SAMPLE // 5)
        counted = [_offline_tokens(plan, key) for key in picked]
        return round(sum(counted) / len(counted) * len(to_send)), _scaled_range(counted, len(to_send)), "offline"
    picked = spread_sample(plan, to_send, sample)
    counted, offline = [], 0
    for key in picked:
        tokens = count_tokens(client, plan.body(key))
        if tokens is None:
            offline += 1
            tokens = _offline_tokens(plan, key)
        counted.append(tokens)
    source: TokenSource = (
        "count_tokens" if not offline else "offline" if offline == len(picked) else "count_tokens+offline"
    )
    return round(sum(counted) / len(counted) * len(to_send)), _scaled_range(counted, len(to_send)), source


def _hit_rates(call: Call, to_send: int, warm: bool) -> tuple[tuple[float, float], float | None, float]:
    """The cache hit rate's range, its typical value (None: given) and the rate the bound takes:
    given (``hit_rate=``), or from what priming (or a sample run just before) and the batch's size
    make likely."""
    primed = call.spec.run.cache == "prime" or warm
    return expected_hit_rates(to_send, given=call.options.estimate.hit_rate, primed=primed)


def _check_priced(call: Call) -> None:
    if call.model not in call.options.run.prices:
        raise UnknownModelError(
            f"no price for model {call.model!r}, so there is no cost to estimate (check_model=False sends it "
            f"unchecked but cannot price it). Give its price in US dollars per million tokens: "
            f"prices={{{call.model!r}: {{'input': 3.0, 'output': 15.0}}}}.",
            model=call.model,
        )


def _cache_notes(
    call: Call, to_send: int, hit_rate: tuple[float, float], typical_hit: float | None, warm: bool
) -> tuple[str, ...]:
    """The note that says why the cache hits what it is assumed to (none when nothing is cached)."""
    if not (call.cached and to_send and typical_hit is not None):
        return ()
    lo, hi = hit_rate
    why = (
        "the cache is primed: every request after the first reads it"
        if call.spec.run.cache == "prime" or warm
        else f"in a batch of {to_send:,} requests not primed, the first ones (batchkit assumes "
        f"about {ASSUMED_CONCURRENCY[1]}, {ASSUMED_CONCURRENCY[0]}–{ASSUMED_CONCURRENCY[2]}) run at once "
        f"and all miss; cache='prime' avoids that"
    )
    return (f"Cache hits {lo:.0%}–{hi:.0%}, typically {typical_hit:.0%}: {why}.",)


def _warm_note(warm: bool) -> tuple[str, ...]:
    if not warm:
        return ()
    return (
        "The sample's run wrote the shared prefix to the cache: a run started within the "
        "cache's TTL reads it from the first request, as if primed.",
    )


def spread_sample(plan: Plan, keys: Sequence[str], k: int) -> list[str]:
    """``k`` of ``keys`` drawn across their sizes: ordered by request size, one from each of ``k``
    equal slices at a random (seeded) offset — systematic sampling. Each request is as likely to be
    drawn as in a simple random sample, so the scaled-up figures stay unbiased, but the sample
    spans short and long requests alike: what grows with a request's length (its input tokens, and
    often its answer's) is measured closer (the ranges still take a simple random sample's spread,
    which is wider)."""
    if k >= len(keys):
        return list(keys)
    size_of = dict(zip(plan.lines, plan.line_sizes(), strict=True))
    order = np.argsort(np.fromiter((size_of[key] for key in keys), np.int64, len(keys)), kind="stable")
    step = len(keys) / k
    start = random.Random(0).random() * step
    return [keys[int(order[int(start + i * step)])] for i in range(k)]


MEDIA_NOTE = (
    "Images and PDFs are priced by the API's documented rules: an image costs width×height/750 tokens "
    "after a long edge over 1568 px is scaled down (dimensions read from its header), a PDF page an image "
    "of the page (~2,500 tokens for Letter) plus its text"
    ", which is not read offline."
)
"""The estimate's note for a call with images or PDFs."""


def _offline_tokens(plan: Plan, key: str) -> int:
    """Offline input tokens of one request: its text by the usual rule, its images and PDFs by
    the API's documented ones (without reading the files again)."""
    if isinstance(plan.lines, MediaLines):
        return estimate_request_tokens(_json.loads(plan.lines.light_body(key))) + plan.lines.media_tokens(key)
    return estimate_request_tokens(_json.loads(plan.body(key)))


LIKELY_HIGH = 4.0
"""Where the schema does not bound an answer's length (a free string field), the estimate's
``high`` takes answers this many times the typical length; ``upper_bound`` (the budget guard)
still takes ``max_tokens``."""
INPUT_Z = 3.0
"""Standard errors either side of a scaled-up input count that the estimate's range spans."""


def _scaled_range(counted: Sequence[int], total: int) -> tuple[float, float] | None:
    """(low, high) total input tokens when ``counted`` is a random sample of ``total`` requests:
    the scaled mean ± :data:`INPUT_Z` standard errors (finite population); None when all were counted."""
    k = len(counted)
    if k >= total or k < 2:
        return None
    mean = sum(counted) / k
    sd = math.sqrt(sum((c - mean) ** 2 for c in counted) / (k - 1))
    half = INPUT_Z * total * sd / math.sqrt(k) * math.sqrt((total - k) / (total - 1))
    return max(0.0, mean * total - half), mean * total + half


def _output_figures(call: Call, given: int | None, measured: Calibration | None) -> dict[str, Any]:
    """The output figures of a call's estimate (keyword arguments of :func:`estimate_cost`).

    Measured on ``calibrate=`` when given (typical: the sample's mean; range: what the sample
    supports), else from the output schema for ``classify``/``extract`` (the shortest and longest
    valid answers bound it, the label set gives the typical), else — free text — a prior for the
    typical (``typical_output_tokens``, or a quarter of ``max_tokens``) and a range that holds
    whatever the answers are: from answers of :data:`~batchkit.costs.pricing.SHORTEST_ANSWER_TOKENS` to
    answers of ``max_tokens``.
    """
    figures: dict[str, Any] = {"typical_output_tokens": given}
    if call.spec.output_spec is not None:
        shortest, typical, longest = schema_output_tokens(call.spec.output_spec["schema"])
        figures.update(output_basis="schema" if given is None else "given", output_bound=longest)
        if given is None:
            figures["typical_output_tokens"] = typical
            figures["output_range"] = (shortest, longest if longest is not None else LIKELY_HIGH * typical)
    else:  # free text: a prior (the user's figure or a quarter of max_tokens) in a range that holds
        figures["output_range"] = (SHORTEST_ANSWER_TOKENS, call.spec.max_tokens)
    if measured is None:
        return figures
    low, high = measured.output_range()
    bound = measured.output_bound()
    if figures.get("output_bound") is not None:
        bound = min(bound, figures["output_bound"])
    return {
        "typical_output_tokens": measured.output_mean,
        "output_range": (low, high),
        "output_bound": bound,
        "output_basis": "measured",
        "calibrated_on": measured.source,
        "extra_notes": (
            f"Calibrated on {measured.source}: {measured.output_mean:.1f} output tokens per "
            f"answer on average; the range is what that sample supports.",
        ),
    }


def _with_times(call: Call, guess: CostEstimate) -> CostEstimate:
    """The estimate with the time each mode takes to finish, and what ``auto`` would choose."""
    output_tokens = guess.requests * guess.typical_output_tokens
    limits = realtime_limits(call)
    seconds, binding = modes.realtime_seconds(guess.requests, guess.input_tokens, output_tokens, limits)
    times = {"realtime": seconds, "batch": modes.TYPICAL_BATCH_SECONDS, "batch_max": modes.MAX_BATCH_SECONDS}
    note = (
        f"Time to finish: realtime ≈ {modes.duration(seconds)} at the standard price ({binding} binds"
        f"{modes.where(limits)}); "
        f"batch typically within 1 h, at most 24 h, at half the price."
    )
    notes = (*guess.notes, note)
    if guess.requests:
        chosen, reason = choose_mode(
            call, requests=guess.requests, input_tokens=guess.input_tokens, output_tokens=output_tokens
        )
        if call.options.run.mode == Mode.AUTO:
            notes += (f"mode='auto' sends these as {chosen}: {reason.removeprefix('auto: ')}.",)
    return dataclasses.replace(guess, notes=notes, finish_seconds=times)


def sum_estimates(parts: Sequence[CostEstimate], npartitions: int) -> CostEstimate:
    """One estimate for a run of one job per partition: the partitions' counts and dollars added up
    (each partition's cache-hit range is its own job's)."""
    first = parts[0]
    modes = tuple(
        ModeCost(
            mode.mode,
            sum(p[mode.mode].low for p in parts),
            sum(p[mode.mode].typical for p in parts),
            sum(p[mode.mode].high for p in parts),
            sum(p[mode.mode].upper_bound for p in parts),
            sum((p[mode.mode].breakdown for p in parts), CostBreakdown()),
        )
        for mode in first.modes
    )
    requests = sum(p.requests for p in parts)
    lo = min((p.hit_rate[0] for p in parts if p.requests), default=first.hit_rate[0])
    hi = max((p.hit_rate[1] for p in parts if p.requests), default=first.hit_rate[1])
    realtime = sum(p.finish_seconds.get("realtime", 0.0) for p in parts)
    notes = tuple(n for n in first.notes if not n.startswith(("Time to finish", "mode='auto'")))
    note = (
        f"Over {npartitions:,} partitions, each its own job: input tokens estimated offline on each "
        f"partition; realtime would take ≈ {duration(realtime)} at the standard price, batches typically "
        f"finish within 1 h, at most 24 h, at half the price."
    )
    return dataclasses.replace(
        first,
        rows=sum(p.rows for p in parts),
        rows_skipped=sum(p.rows_skipped for p in parts),
        unique_requests=sum(p.unique_requests for p in parts),
        already_answered=sum(p.already_answered for p in parts),
        in_flight=sum(p.in_flight for p in parts),
        requests=requests,
        input_tokens=sum(p.input_tokens for p in parts),
        hit_rate=(lo, hi),
        modes=modes,
        notes=(*notes, note),
        finish_seconds={**first.finish_seconds, "realtime": realtime},
    )
