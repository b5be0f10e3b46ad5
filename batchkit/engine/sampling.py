"""``estimate(..., sample_answers=N)``: answer N rows in realtime first, then price the rest on them.

The sample is an ordinary job (mode ``realtime``, the store the run will use), so its answers are
stored under their request keys and the run reuses them; the estimate that follows counts them as
already answered and is calibrated on the sample's answers (``calibrate=`` that job).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anthropic

from batchkit.backends import clients as backend
from batchkit.core.columns import Table, as_table
from batchkit.core.options import EstimateOptions
from batchkit.core.plan import MediaLines, Plan
from batchkit.core.states import Mode
from batchkit.costs.pricing import CostEstimate
from batchkit.errors import InvalidOptionError
from batchkit.stores.store import Store

from .estimates import estimate_call, spread_sample
from .locations import default_store_path
from .start import submit

if TYPE_CHECKING:
    from .prepared import Call

__all__ = ["estimate_on_sample"]


def estimate_on_sample(
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
    across request sizes (:func:`~batchkit.engine.estimates.spread_sample`, seeded) from every
    request of the call not in a batch already — answered or not — so the same cell run again
    draws the same rows, finds the same job and pays nothing more.

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
        return estimate_call(
            dataclasses.replace(call, options=dataclasses.replace(call.options, estimate=rest)),
            client=client,
            store=resolved_store,
            count=count,
        )
    in_flight = resolved_store.in_flight_keys()
    free = [k for k in population if k not in in_flight]
    picked = spread_sample(call.plan, free, wanted)
    job = submit(_sample_call(call, picked, resolved_client, resolved_store)).wait()
    calibrated = dataclasses.replace(call.options, run=dataclasses.replace(run, calibrate=job), estimate=rest)
    guess = estimate_call(
        dataclasses.replace(call, options=calibrated), client=client, store=resolved_store, count=count
    )
    return dataclasses.replace(guess, sample_answers=len(picked), sample_cost=job.cost.total, sample_job=job.job_id)


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
        call.options.run, mode=Mode.REALTIME, deadline=None, calibrate=None, client=client, store=store
    )
    options = dataclasses.replace(call.options, run=run, estimate=EstimateOptions())
    spec = dataclasses.replace(call.spec, run=dataclasses.replace(call.spec.run, mode=Mode.REALTIME, deadline=None))
    return dataclasses.replace(call, table=table, plan=plan, options=options, spec=spec)
