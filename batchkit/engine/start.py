"""From a prepared call to a running job: the store and the client resolved, the budget checked,
the mode chosen, a deadline's hedge planned, the job written down and started.

Every check that can refuse a call (no client, over budget, a deadline already passed) runs here,
before anything is paid; then :func:`~batchkit.engine.jobs.open_job` records intent before money.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING

import anthropic

from batchkit.backends import clients as backend
from batchkit.core import modes
from batchkit.core.options import JobSpec, Options
from batchkit.core.states import Mode, SendMode
from batchkit.costs.pricing import CostEstimate
from batchkit.errors import UnknownModelError
from batchkit.stores.store import Store

from . import hedge
from .estimates import estimate_call
from .jobs import Job, open_job
from .locations import default_store_path
from .sendmode import choose_mode, pricing_mode, realtime_limits

if TYPE_CHECKING:
    from .prepared import Call

__all__ = ["resolve", "submit"]


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
        guess = estimate_call(
            call,
            client=resolved_client if max_cost is not None else None,
            store=resolved_store,
            count=max_cost is not None,
        )
    except UnknownModelError:
        if max_cost is not None:
            raise
        if run.mode == Mode.AUTO:
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
        spec = _with_estimate(spec, guess, mode)
    if run.deadline is not None and chosen == SendMode.BATCH and resolved_client is not None and to_send > 0:
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
        prices=run.prices,
    )


def _with_estimate(spec: JobSpec, guess: CostEstimate, mode: str) -> JobSpec:
    """The spec with the estimate's figures for the price line the job pays (kept for its cost view)."""
    figures = guess[mode]
    return dataclasses.replace(
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
