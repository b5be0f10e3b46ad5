"""From the arguments of a ``df.claude`` call to a planned job — or to its cost estimate.

:func:`prepare` does everything that needs neither network nor store: it checks the
arguments, lays out prompt caching, renders one request per row and keys them. Then
:func:`submit` checks the budget and opens the job, and :func:`estimate` prices it. Every
problem with a call surfaces here, before anything is paid.

Prompt caching (``cache=``):

* ``"auto"`` (default): if the part every request shares — the system prompt plus the
  prompt's text before its first ``{placeholder}`` — reaches the model's minimum cacheable
  length, that shared text becomes its own content block with a ``cache_control`` breakpoint
  (TTL ``cache_ttl``, 1 h by default since batches can run longer than 5 minutes). Below the
  minimum nothing is marked (the API would not cache it and the marker changes nothing).
* ``"prime"``: the same, and a one-request batch runs first so that the prefix is in the
  cache before the rest are created; without it, requests processed concurrently at the
  start of a batch all miss.
* ``False``: never mark.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anthropic
import numpy as np
import pandas as pd

from batchkit.backends import clients as backend
from batchkit.backends.realtime import learned_limits
from batchkit.backends.tokens import count_tokens
from batchkit.core import _json, modes
from batchkit.core.columns import Table, as_table
from batchkit.core.options import EstimateOptions, JobSpec, Options
from batchkit.core.requests import (
    MediaLines,
    Plan,
    Rendered,
    RequestTemplate,
    build_template,
    parse_prompt,
    plan_requests,
    render_prompts,
)
from batchkit.core.structured import OutputSpec
from batchkit.costs.calibration import Calibration, measure
from batchkit.costs.pricing import (
    ASSUMED_CONCURRENCY,
    SHORTEST_ANSWER_TOKENS,
    CostEstimate,
    TokenSource,
    cache_hit_range,
    estimate_cost,
    estimate_request_tokens,
    estimate_tokens,
    load_prices,
    schema_output_tokens,
    shared_prefix_tokens,
)
from batchkit.errors import (
    ColumnCollisionError,
    InvalidOptionError,
    NotAFrameError,
    OptionTypeError,
    RequestTooLargeError,
    UnknownModelError,
    UnknownOptionError,
)
from batchkit.stores.store import Store, default_store_path

from . import hedge
from .jobs import Job, open_job

__all__ = ["Call", "estimate", "prepare", "resolve", "submit"]

OFFLINE_SAMPLE = 5000
"""Requests whose tokens are counted offline; the total is scaled from them."""


@dataclass
class Call:
    """A call, checked, rendered and keyed, not yet written down or sent."""

    table: Table
    """The columns the call read (:func:`~batchkit.core.columns.as_table` of what was given)."""
    template: RequestTemplate
    plan: Plan
    kind: str
    output: str
    spec: JobSpec
    """What the job will store about this call."""
    options: Options
    """Everything the call was asked to do, checked."""
    cached: bool
    """Whether requests carry a cache breakpoint (the shared prefix is long enough)."""

    @property
    def model(self) -> str:
        return self.template.model

    @property
    def frame(self) -> pd.DataFrame | None:
        """The pandas DataFrame the call read, or None for any other table."""
        return self.table.frame

    @property
    def cache(self) -> str | bool:
        """The caching mode asked for."""
        return self.options.run.cache


def prepare(
    table: pd.DataFrame | Mapping[Any, Any] | Table,
    prompt: str | Callable[[Any], Any],
    *,
    output: str,
    options: Options | None = None,
    positional: Hashable = None,
    kind: str = "text",
    output_spec: OutputSpec | None = None,
    **kwargs: Any,
) -> Call:
    """Check, render and key a call. Pure: no network, no store.

    ``table`` is a pandas DataFrame or a mapping of column name → values, all of one length
    (list, numpy array, pandas Series, pyarrow Array/ChunkedArray, polars Series; see
    :mod:`batchkit.core.columns`): the same rows give the same request keys whichever it is. A
    callable ``prompt`` gets each row as a mapping of column name → value (a ``pd.Series`` for
    a pandas frame).

    ``options`` are the call's checked options; without them the keyword arguments are turned
    into options here (``prepare(df, "{t}", output="o", model=..., max_tokens=5)``).
    ``positional`` is the column a bare ``{}`` reads (the Series accessor's own values);
    ``output_spec`` is the structured output of ``classify``/``extract``.

    Raises:
        NotAFrameError: ``table`` is no table (neither a DataFrame nor a mapping of columns).
        ColumnLengthError: the columns of a mapping are not all of one length.
        ColumnCollisionError: an output column is named like an input column.
        BatchkitError: any other problem with the call, before anything is sent.
    """
    if isinstance(table, pd.Series):
        raise NotAFrameError(
            "expected a table, not a pandas Series: use series.claude, or pass a DataFrame or {name: series}."
        )
    table = as_table(table)
    if options is None:
        options = Options.build(kwargs, verb="prepare")
    elif kwargs:
        raise UnknownOptionError(
            f"pass options= or keyword options, not both (got {sorted(kwargs)})", option=next(iter(kwargs))
        )
    if not isinstance(output, str) or not output:
        raise OptionTypeError(f"output must be a non-empty column name, not {output!r}", option="output")
    outputs = [column for column, _ in output_spec.columns] if output_spec is not None else [output]
    if positional is None:
        _check_collisions(table, outputs, kind)
    params, run = options.params, options.run
    rendered = render_prompts(table, prompt, positional=positional, media_errors=run.media_errors)
    content, system, rendered, cached = _cache_layout(
        run.cache,
        run.cache_ttl,
        prompt,
        rendered,
        table,
        positional,
        params.system,
        params.extra.get("tools"),
        params.model,
        run.prices,
    )
    template = build_template(**params.template_kwargs(system=system), content=content)
    plan = plan_requests(rendered, template)
    _check_sizes(plan, run.chunk_bytes)
    stored_run = run if cached or run.cache is False else dataclasses.replace(run, cache=False)
    spec = JobSpec(
        run=stored_run,
        prompt=prompt if isinstance(prompt, str) else getattr(prompt, "__name__", "<callable>"),
        max_tokens=params.max_tokens,
        output_spec=output_spec.to_json() if output_spec is not None else None,
    )
    return Call(table, template, plan, kind, output, spec, options, cached)


def _check_collisions(table: Table, outputs: Sequence[str], kind: str) -> None:
    """Refuse an output column that would silently replace an input column."""
    inputs = {str(c) for c in table.names}
    for column in outputs:
        if column in inputs:
            fix = {"extract": "choose another prefix= (e.g. prefix='llm_')"}.get(kind, "choose another output=")
            raise ColumnCollisionError(
                f"the output column {column!r} has the name of an input column, which it would replace. "
                f"{fix[0].upper() + fix[1:]}, or drop the column first: "
                f"df.drop(columns=[{column!r}]).claude.…",
                column=column,
            )


def _cache_layout(
    cache: str | bool,
    ttl: str,
    prompt: str | Callable[..., Any],
    rendered: Rendered,
    table: Table,
    positional: Hashable,
    system: Any,
    tools: Any,
    model: str,
    prices: Any,
) -> tuple[Callable[[str], Any] | None, Any, Rendered, bool]:
    """Where the cache breakpoint goes: (user content builder, system, row texts, marked?).

    The shared lead text of the prompt becomes its own marked block and the rows keep only what
    follows it; with no lead, the last system block is marked. Nothing changes below the
    model's minimum cacheable length (or for a model with no known minimum).
    """
    if not cache:
        return None, system, rendered, False
    # With images or PDFs the user content is the row's own blocks: only a system prompt is marked.
    lead = _shared_lead(prompt, rendered, table, positional) if rendered.contents is None else ""
    minimum = _min_cacheable(model, prices)
    if minimum is None or _shared_tokens(system, tools, lead) < minimum:
        return None, system, rendered, False
    marker = {"type": "ephemeral", "ttl": ttl}
    if not lead:
        if not system:  # only tools are shared: mark those yourself with cache_control
            return None, system, rendered, False
        return None, _mark_system(system, marker), rendered, True

    def content(text: str) -> list[dict[str, Any]]:
        return [{"type": "text", "text": lead, "cache_control": marker}, {"type": "text", "text": text}]

    cut = len(lead)
    rows = Rendered([t[cut:] if t is not None else None for t in rendered.texts], rendered.skipped)
    return content, system, rows, True


def _shared_lead(prompt: str | Callable[..., Any], rendered: Rendered, table: Table, positional: Hashable) -> str:
    """The text every rendered prompt starts with, ending at a word boundary."""
    if isinstance(prompt, str):
        parsed = parse_prompt(prompt, table.names, positional=positional)
        return parsed.literals[0] if parsed.fields else ""
    texts = [t for t in rendered.texts if t is not None]
    if len(texts) < 2:
        return ""
    common = os.path.commonprefix(texts)  # noqa: RUF071 (texts, not paths: the common characters)
    cut = max(common.rfind("\n"), common.rfind(" "))
    return common[: cut + 1] if cut >= 0 else ""


def _shared_tokens(system: Any, tools: Any, lead: str) -> int:
    """Offline tokens of the prefix every request shares (tools → system → lead text)."""
    tokens = sum(estimate_tokens(_json.dumps(t).decode()) for t in tools or ())
    if isinstance(system, str):
        tokens += estimate_tokens(system)
    elif system:
        tokens += sum(estimate_tokens(str(b.get("text", ""))) for b in system)
    if lead:
        tokens += 4 + estimate_tokens(lead)  # the user message's own overhead, as the API counts it
    return tokens


def _min_cacheable(model: str, prices: Any) -> int | None:
    try:
        return load_prices(prices).get(model).min_cacheable_tokens
    except UnknownModelError:
        return None  # a model we cannot price: leave its requests unmarked


def _mark_system(system: Any, marker: dict[str, str]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = (
        [{"type": "text", "text": system}] if isinstance(system, str) else [dict(b) for b in system]
    )
    blocks[-1]["cache_control"] = marker
    return blocks


def _check_sizes(plan: Plan, max_bytes: int) -> None:
    """Refuse a row whose request alone cannot fit in a batch, naming the row."""
    limit = max_bytes - len(b'{"requests":[]}') - 1
    if not plan.lines or max(plan.line_sizes()) <= limit:
        return
    for key, size in zip(plan.lines, plan.line_sizes(), strict=True):
        if size > limit:
            row = plan.row_keys.index(key)
            raise RequestTooLargeError(
                f"row {row}'s request is {size:,} bytes, more than a whole batch may be "
                f"({max_bytes:,} bytes). Shorten that row's text, send fewer or smaller images, or split it.",
                row=row,
                size=size,
            )


# --------------------------------------------------------------------------- submit / estimate


def resolve(options: Options, *, client: bool = True) -> Options:
    """The options with the store (and the client) resolved as :func:`submit` resolves them.

    For a front end that must know before any partition is sent where the answers will be (Dask
    workers read them back from the store's path): ``run.store`` becomes an open
    :class:`~batchkit.Store` (``store=``, else the default store for the call's client), and with
    ``client=True`` ``run.client`` the client (``client=``, the default one, or one from the
    environment).

    Raises:
        NoCredentialsError: ``client=True`` and no client can be made, before anything is sent.
    """
    run = options.run
    resolved_client = backend.resolve_client(run.client) if client else run.client
    store = Store.resolve(run.store if run.store is not None else default_store_path(resolved_client))
    return dataclasses.replace(options, run=dataclasses.replace(run, client=resolved_client, store=store))


def submit(call: Call) -> Job:
    """Check the budget, write the job down and start it."""
    run = call.options.run
    # Nothing to send (empty frame, every row skipped) needs no client or key. The default store
    # depends on what the client talks to (asked once per client): the simulator's is its own.
    resolved_client = backend.resolve_client(run.client) if call.plan.lines else run.client
    resolved_store = Store.resolve(run.store if run.store is not None else default_store_path(resolved_client))
    if resolved_client is not None:
        resolved_store.claim_backend(backend.api_name(resolved_client))
    max_cost = run.max_cost
    spec = call.spec
    chosen, reason = run.mode, None
    to_send, input_tokens, output_tokens = len(call.plan.lines), 0.0, 0.0
    try:
        guess = estimate(
            call,
            client=resolved_client if max_cost is not None else None,
            store=resolved_store,
            count=max_cost is not None,
        )
    except UnknownModelError:
        if max_cost is not None:
            raise
        if run.mode == "auto":
            answered = resolved_store.answered(call.plan.lines) if call.plan.lines else set()
            chosen, reason = choose_mode(
                call, requests=len(call.plan.lines) - len(answered), input_tokens=0, output_tokens=0
            )
    else:
        to_send, input_tokens = guess.requests, guess.input_tokens
        output_tokens = guess.requests * guess.typical_output_tokens
        chosen, reason = choose_mode(
            call,
            requests=guess.requests,
            input_tokens=guess.input_tokens,
            output_tokens=guess.requests * guess.typical_output_tokens,
        )
        mode = pricing_mode(call, chosen)
        if max_cost is not None:
            guess.check_budget(max_cost, mode=mode)
        figures = guess[mode]
        spec = dataclasses.replace(
            spec,
            estimate={
                "mode": mode,
                "low": figures.low,
                "typical": figures.typical,
                "high": figures.high,
                "upper_bound": figures.upper_bound,
                "token_source": guess.token_source,
            },
        )
    if run.deadline is not None and chosen == "batch" and resolved_client is not None and to_send > 0:
        spec = _hedged(
            call, spec, resolved_client, requests=to_send, input_tokens=input_tokens, output_tokens=output_tokens
        )
    return open_job(
        resolved_store,
        resolved_client,
        call.frame,
        call.plan,
        call.template,
        kind=call.kind,
        output=call.output,
        spec=spec.to_json(),
        mode=chosen,
        mode_reason=reason,
    )


def _hedged(
    call: Call, spec: JobSpec, client: anthropic.Anthropic, *, requests: int, input_tokens: float, output_tokens: float
) -> JobSpec:
    """The spec of a batch job with a ``deadline=``: split into several batches
    (:func:`~batchkit.engine.hedge.plan_hedge`) and its hedge written down with the deadline as an
    absolute time on the server's clock.

    Raises:
        InvalidOptionError: the deadline has passed on the server's clock (before any paid call).
    """
    deadline = call.options.run.deadline
    now = backend.server_clock(client)()
    if isinstance(deadline, dt.datetime):
        ahead = deadline.timestamp() - now
    elif isinstance(deadline, dt.timedelta):
        ahead = deadline.total_seconds()
    else:
        ahead = float(deadline)  # type: ignore[arg-type]
    seconds, _ = modes.realtime_seconds(max(requests, 1), input_tokens, output_tokens, realtime_limits(call))
    plan = hedge.plan_hedge(
        requests,
        deadline=ahead,
        now=now,
        realtime_rate=max(requests, 1) / max(seconds, 1e-9),
        settle_seconds=hedge.settle_seconds(ahead),
        clock_rate=backend.server_clock_rate(client),
    )
    run = dataclasses.replace(spec.run, chunk_size=min(spec.run.chunk_size, plan.chunk_size))
    return dataclasses.replace(
        spec,
        run=run,
        hedge={
            "deadline_at": plan.deadline,
            "deadline": dt.datetime.fromtimestamp(plan.deadline, dt.UTC).isoformat(),
            "realtime_rate": plan.realtime_rate,
            "settle_seconds": plan.settle_seconds,
            "safety": plan.safety,
            "clock_rate": plan.clock_rate,
        },
    )


def run_mode(call: Call) -> str:
    """The pricing mode the call will actually run in, were it sent as batches."""
    return f"batch+{call.options.run.cache_ttl}" if call.cached else "batch"


def pricing_mode(call: Call, mode: str) -> str:
    """The estimate's row for a job sent in ``mode`` (realtime is the standard price)."""
    return "standard" if mode == "realtime" else run_mode(call)


def choose_mode(call: Call, *, requests: int, input_tokens: float, output_tokens: float) -> tuple[str, str]:
    """The call's mode (``auto`` resolved with the job's own numbers) and why."""
    run = call.options.run
    return modes.choose(
        run.mode,
        requests=requests,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        deadline_seconds=_deadline_seconds(getattr(run, "deadline", None)),
        limits=realtime_limits(call),
    )


def realtime_limits(call: Call) -> modes.RealtimeLimits:
    """The rate limits realtime is timed by: the workspace's, once a realtime answer's headers gave
    them in this process, else :class:`~batchkit.core.modes.RealtimeLimits`'s defaults."""
    learned = learned_limits(call.model, call.options.run.client or backend.get_default_client())
    if learned is None:
        return modes.RealtimeLimits()
    default = modes.RealtimeLimits()
    return modes.RealtimeLimits(
        requests_per_minute=learned.requests_per_minute or default.requests_per_minute,
        input_tokens_per_minute=learned.input_tokens_per_minute or default.input_tokens_per_minute,
        output_tokens_per_minute=learned.output_tokens_per_minute or default.output_tokens_per_minute,
        learned=True,
    )


def _deadline_seconds(deadline: Any) -> float | None:
    """Seconds until ``deadline=`` (seconds, a timedelta or an aware datetime), if one was given."""
    if deadline is None:
        return None
    if isinstance(deadline, dt.timedelta):
        return deadline.total_seconds()
    if isinstance(deadline, dt.datetime):
        now = dt.datetime.now(deadline.tzinfo or dt.UTC)
        return (deadline - now).total_seconds()
    try:
        return float(deadline)
    except (TypeError, ValueError):
        return None


def estimate(
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

    With ``sample_answers=N`` (in ``call.options.estimate``) N rows are answered first, in realtime
    and paid (see :func:`_estimate_on_sample`), and the estimate is calibrated on them.
    """
    run, options = call.options.run, call.options.estimate
    if options.sample_answers is not None:
        return _estimate_on_sample(call, options.sample_answers, client=client, store=store, count=count)
    if store is None:
        store = run.store
    if store is None and run.client is not None:
        store = default_store_path(run.client)  # the simulator's answers live in its own store
    resolved_store = Store.resolve(store)
    plan = call.plan
    answered = resolved_store.answered(plan.lines) if plan.lines else set()
    # Requests already in a batch (this call's, resumed, or another's): paid for, waited for, not sent again.
    in_flight = {k for k in resolved_store.in_flight_keys() if k in plan.lines} - answered if plan.lines else set()
    to_send = [k for k in plan.lines if k not in answered and k not in in_flight]
    if not count:
        client = None
    elif client is None:
        client = run.client or backend.get_default_client()
        if client is None and (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
            client = backend.resolve_client(None)
    source: TokenSource = "offline"
    input_tokens = 0
    input_range: tuple[float, float] | None = None
    if to_send and client is not None:
        picked = _spread_sample(plan, to_send, options.sample)
        counted, offline = [], 0
        for key in picked:
            tokens = count_tokens(client, plan.body(key))
            if tokens is None:
                offline += 1
                tokens = _offline_tokens(plan, key)
            counted.append(tokens)
        input_tokens = round(sum(counted) / len(counted) * len(to_send))
        input_range = _scaled_range(counted, len(to_send))
        source = "count_tokens" if not offline else "offline" if offline == len(picked) else "count_tokens+offline"
    elif to_send:
        # Every request when there are few (exact), else a sample scaled up.
        picked = to_send if len(to_send) <= OFFLINE_SAMPLE else random.Random(0).sample(to_send, OFFLINE_SAMPLE // 5)
        counted = [_offline_tokens(plan, key) for key in picked]
        input_tokens = round(sum(counted) / len(counted) * len(to_send))
        input_range = _scaled_range(counted, len(to_send))
    prefix = 0
    if call.cached and to_send:
        prefix = shared_prefix_tokens(_json.loads(plan.body(to_send[0])))
        prefix = min(prefix, input_tokens // len(to_send))
    hit_rate: tuple[float, float] | None = options.hit_rate
    typical_hit: float | None = None
    bound_hit = 0.0
    measured = None
    if run.calibrate is not None:
        measured = measure(run.calibrate, model=call.model, prompt=call.spec.prompt, kind=call.kind)
    warm = measured is not None and measured.cache_warm and call.cached
    if hit_rate is None:  # from what priming (or a sample run just before) and the batch's size make likely
        primed = call.spec.run.cache == "prime" or warm
        worst, typical_hit, best = cache_hit_range(len(to_send), primed=primed)
        hit_rate, bound_hit = (worst, best), worst
    if call.model not in run.prices:
        raise UnknownModelError(
            f"no price for model {call.model!r}, so there is no cost to estimate (check_model=False sends it "
            f"unchecked but cannot price it). Give its price in US dollars per million tokens: "
            f"prices={{{call.model!r}: {{'input': 3.0, 'output': 15.0}}}}.",
            model=call.model,
        )
    output = _output_figures(call, options.typical_output_tokens, measured)
    if call.cached and to_send and typical_hit is not None:
        lo, hi = hit_rate
        why = (
            "the cache is primed: every request after the first reads it"
            if call.spec.run.cache == "prime" or warm
            else f"in a batch of {len(to_send):,} requests not primed, the first ones (batchkit assumes "
            f"about {ASSUMED_CONCURRENCY[1]}, {ASSUMED_CONCURRENCY[0]}–{ASSUMED_CONCURRENCY[2]}) run at once "
            f"and all miss; cache='prime' avoids that"
        )
        output.setdefault("extra_notes", ())
        output["extra_notes"] = (
            f"Cache hits {lo:.0%}–{hi:.0%}, typically {typical_hit:.0%}: {why}.",
            *output["extra_notes"],
        )
    if warm:
        output["extra_notes"] += (
            "The sample's run wrote the shared prefix to the cache: a run started within the "
            "cache's TTL reads it from the first request, as if primed.",
        )
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


def _estimate_on_sample(
    call: Call,
    wanted: int,
    *,
    client: anthropic.Anthropic | None,
    store: Store | str | os.PathLike[str] | None,
    count: bool,
) -> CostEstimate:
    """``estimate(..., sample_answers=N)``: answer N random rows in realtime, then price the rest on them.

    The sample goes through :func:`submit` like any call (mode ``realtime``, the store the run
    will use), so its answers are stored under their request keys and the run reuses them: the
    estimate that follows counts them as already answered and prices only the other requests,
    with the output length measured on the sample (``calibrate=`` that job). The rows are drawn
    across request sizes (:func:`_spread_sample`, seeded) from every request of the call not in a
    batch already — answered or not — so the same cell run again draws the same rows, finds the
    same job and pays nothing more.

    Raises:
        InvalidOptionError: ``calibrate=`` is given too, or the sample would be every request of
            the call (before anything is sent).
        NoCredentialsError: no client can be made (before anything is sent).
    """
    run = call.options.run
    if run.calibrate is not None:
        raise InvalidOptionError(
            "pass sample_answers= or calibrate=, not both: sample_answers=N answers N rows now to measure "
            "the answers' length; calibrate=job measures a run that already answered. Remove one of them.",
            option="sample_answers",
        )
    population = list(call.plan.lines)
    if population and wanted >= len(population):
        raise InvalidOptionError(
            f"sample_answers={wanted:,} is as many as the call's {len(population):,} distinct requests: the "
            f"sample would be the whole run, answered in realtime at the standard price (twice the batch "
            f"price). Ask for fewer (sample_answers={max(1, len(population) // 10):,}), or run the call itself.",
            option="sample_answers",
        )
    resolved_client = backend.resolve_client(client if client is not None else run.client)
    resolved_store = Store.resolve(
        store if store is not None else run.store if run.store is not None else default_store_path(resolved_client)
    )
    rest = dataclasses.replace(call.options.estimate, sample_answers=None)
    if not population:  # no row to send: nothing to sample
        return estimate(
            dataclasses.replace(call, options=dataclasses.replace(call.options, estimate=rest)),
            client=client,
            store=resolved_store,
            count=count,
        )
    in_flight = resolved_store.in_flight_keys()
    free = [k for k in population if k not in in_flight]
    picked = _spread_sample(call.plan, free, wanted)
    job = submit(_sample_call(call, picked, resolved_client, resolved_store)).wait()
    calibrated = dataclasses.replace(call.options, run=dataclasses.replace(run, calibrate=job), estimate=rest)
    guess = estimate(dataclasses.replace(call, options=calibrated), client=client, store=resolved_store, count=count)
    return dataclasses.replace(guess, sample_answers=len(picked), sample_cost=job.cost.total, sample_job=job.job_id)


def _spread_sample(plan: Plan, keys: Sequence[str], k: int) -> list[str]:
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


def _sample_call(call: Call, keys: Sequence[str], client: anthropic.Anthropic, store: Store) -> Call:
    """The call of ``keys`` alone (one row each), sent in realtime to ``store``: the same request
    bodies, hence the same keys, as the whole call's."""
    wanted, first = set(keys), {}
    for row, key in enumerate(call.plan.row_keys):
        if key in wanted and key not in first:
            first[key] = row
    rows = [first[k] for k in keys]
    lines = call.plan.lines
    plan = Plan(list(keys), lines.select(keys) if isinstance(lines, MediaLines) else {k: lines[k] for k in keys}, {})
    # A job keeps a pandas frame for to_frame(); of any other table only the names and length are kept.
    table = as_table(call.frame.iloc[rows]) if call.frame is not None else Table(list(call.table.names), len(rows), {})
    run = dataclasses.replace(
        call.options.run, mode="realtime", deadline=None, calibrate=None, client=client, store=store
    )
    options = dataclasses.replace(call.options, run=run, estimate=EstimateOptions())
    spec = dataclasses.replace(call.spec, run=dataclasses.replace(call.spec.run, mode="realtime", deadline=None))
    return dataclasses.replace(call, table=table, plan=plan, options=options, spec=spec)


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
        if call.options.run.mode == "auto":
            notes += (f"mode='auto' sends these as {chosen}: {reason.removeprefix('auto: ')}.",)
    return dataclasses.replace(guess, notes=notes, finish_seconds=times)
