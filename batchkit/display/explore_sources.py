"""Where an explorer's estimates come from: a front end's call, an estimate, a comparison.

:func:`explore_call` is ``df.claude.explore`` (and Polars'): the call estimated as ``estimate``
does, for each model picked; :func:`explore_estimate` is ``estimate.explore()`` (registered with
:mod:`batchkit.costs.figures` when this module is imported, so that costs never import the display);
:func:`explore_comparison` is ``comparison.explore()``. Each checks its settings, and the call's
options, before anything is counted or sent, and returns a :class:`~batchkit.display.explore.Explorer`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from batchkit.core.options import Options
from batchkit.costs import figures
from batchkit.costs.estimate import CostEstimate
from batchkit.costs.prices import load_prices
from batchkit.costs.scaling import is_primed
from batchkit.costs.stages import combine_estimates
from batchkit.engine import calls
from batchkit.engine import cascade as cascades
from batchkit.engine.prepared import Call
from batchkit.engine.sendmode import realtime_limits
from batchkit.errors import InvalidOptionError
from batchkit.stores.store import Store

from .explore import Explorer, Line, Settings, as_hit_rate, check_setting_names, check_settings, refuse, refuse_model

__all__ = [
    "ANSWERED_NOTE",
    "explore_call",
    "explore_cascade",
    "explore_comparison",
    "explore_estimate",
    "starting_settings",
]

ANSWERED_NOTE = (
    "every row of this frame has an answer in the store already (a run of it costs $0 more): "
    "priced as new rows like them"
)


def starting_settings(estimate: CostEstimate, **given: Any) -> Settings:
    """The explorer's settings for ``estimate``: its own rows, model and caching, then ``given``."""
    caching = "prime" if is_primed(estimate) else "auto" if estimate.cached_prefix_tokens else "off"
    values: dict[str, Any] = {"rows": estimate.rows, "model": estimate.model, "caching": caching, **given}
    if "hit_rate" in values:
        values["hit_rate"] = as_hit_rate(values["hit_rate"])
    check_setting_names(values)
    return check_settings(Settings(**values))


def explore_estimate(estimate: CostEstimate, **settings: Any) -> Explorer:
    """The explorer of one estimate (``estimate.explore(**settings)``): its model only, at default
    rate limits (``df.claude.explore`` also offers other models and the workspace's learned limits)."""
    if settings.get("model", estimate.model) != estimate.model:
        refuse_model(estimate.model, settings["model"], cascade=bool(estimate.staged))
    lines = (Line(estimate.model, estimate),)
    return Explorer(lambda _model: lines, starting_settings(estimate, **settings))


def explore_comparison(comparison: Any, **settings: Any) -> Explorer:
    """The explorer of a :class:`batchkit.Comparison` (``comparison.explore(**settings)``): one line per
    variant with a projection (its whole-frame estimate, calibrated on its sample), with its quality,
    the quality's 95% interval, and the dollars per correct row at the explorer's settings.

    Raises:
        InvalidOptionError: no variant has a projection, or a wrong setting.
    """
    lines = tuple(
        Line(v.name, v.projection, v.quality, v.interval) for v in comparison.variants if v.projection is not None
    )
    if not lines:
        raise InvalidOptionError(
            "no variant of this comparison has a whole-frame estimate to explore: compare on a frame "
            "(df.claude.compare(...)), then explore",
            option="comparison",
        )
    start = starting_settings(lines[0].estimate, model=None, **settings)
    return Explorer(lambda _model: lines, start, quality_label=comparison.quality_label)


def explore_call(call_for: Callable[[Mapping[str, Any]], Call], *, rows: int | None = None) -> Explorer:
    """The explorer of a front end's call (``df.claude.explore``): ``call_for(overrides)`` prepares
    the call with some options replaced (``model``, ``cache``). Every option is checked — and
    ``rows`` — before anything is counted; the model control offers every priced model, each
    estimated when first picked; realtime is timed by the workspace's limits once learned.

    Raises:
        InvalidOptionError: a wrong option or setting, or ``sample_answers=`` (it pays for answers:
            estimate with it once, then ``estimate.explore()``; or pass ``calibrate=job``).
    """
    call = call_for({})
    run = call.options.run
    start = _start(call.options, len(call.plan.row_keys) if rows is None else rows, call.model)
    # The base is estimated with the cache on, so that the prefix is known and "off" is one control away.
    base = {"cache": "auto"} if run.cache is False else {}

    def source(model: str | None) -> Sequence[Line]:
        asked = call if model == call.model and not base else call_for({**base, "model": model})
        estimate = calls.estimate(asked)
        if not _all_answered(estimate):
            return (Line(str(model), estimate),)
        return (Line(str(model), _as_new([asked])[0], note=ANSWERED_NOTE),)

    models = list(dict.fromkeys([call.model, *load_prices(run.prices)]))
    return Explorer(source, start, models=models, limits=realtime_limits(call))


def explore_cascade(
    cascade_for: Callable[[Mapping[str, Any]], cascades.Cascade | None], table: Any, *, rows: int | None = None
) -> Explorer:
    """The explorer of a front end's cascade call (``df.claude.explore(..., cascade=[...])``): the
    estimate ``estimate(..., cascade=[...])`` gives — every stage over every row, later stages
    weighted by the escalation share (measured by ``calibrate=comparison``, else the stated prior),
    every stage priced as new rows like them once stage 1 has run (as :func:`explore_call` does; a
    later stage answered alone is $0 at the frame's rows, as ``estimate`` says, and new rows when scaled)
    — each stage priced again at the explorer's settings and combined with the same shares
    (:func:`batchkit.costs.scaling.reprice`). ``cascade_for(overrides)`` plans the cascade with some
    options replaced (``cache``). Its model is the cascade's: another cascade is another call.

    Raises:
        InvalidOptionError: a wrong option or setting, or ``sample_answers=``.
    """

    def plan(overrides: Mapping[str, Any]) -> cascades.Cascade:
        planned = cascade_for(overrides)
        assert planned is not None, "explore_cascade explores a call with cascade=[...]"
        return planned

    cascade = plan({})
    start = _start(cascade.options, len(table) if rows is None else rows, " → ".join(cascade.models))
    # The stages are estimated with the cache on, so that the prefix is known and "off" is one control away.
    planned = plan({"cache": "auto"}) if cascade.options.run.cache is False else cascade
    stages = [cascades.prepare_stage(planned, table, k) for k in range(len(planned.models))]
    priced = [calls.estimate(call) for call in stages]
    shares, basis = cascades.escalation_shares(planned)
    answered = [_all_answered(e) for e in priced]
    note, rescaled = "", None
    if answered[0]:  # run already: every stage priced as new rows, the escalated ones too
        priced, note = _as_new(stages), ANSWERED_NOTE
    elif any(answered):  # a later stage's rows answered already (by a run of its model): $0 here, as new when scaled
        fresh = iter(_as_new([call for call, done in zip(stages, answered, strict=True) if done]))
        again = [next(fresh) if done else e for e, done in zip(priced, answered, strict=True)]
        rescaled = combine_estimates(again, shares, planned.models, basis)
        done = ", ".join(f"stage {k + 1}" for k, d in enumerate(answered) if d)
        note = f"{done}: every row has an answer in the store already; at other row counts priced as new rows like them"
    estimate = combine_estimates(priced, shares, planned.models, basis)
    notes = [estimate.notes[0], *([note] if note else [])]  # where the escalation share comes from
    lines = (Line(estimate.model, estimate, note="; ".join(notes), rescaled=rescaled),)
    return Explorer(lambda _model: lines, start, limits=realtime_limits(stages[0]))


def _all_answered(estimate: CostEstimate) -> bool:
    """Whether every row of the estimated call is answered already (it is explored after its run)."""
    return not estimate.requests and bool(estimate.unique_requests)


def _as_new(priced: Sequence[Call]) -> list[CostEstimate]:
    """The calls' estimates as new rows like theirs (in an empty store), so that they scale."""
    with tempfile.TemporaryDirectory(prefix="batchkit-explore-") as folder:
        empty = Store(Path(folder) / "empty.sqlite3")
        try:
            return [calls.estimate(call, store=empty) for call in priced]
        finally:
            empty.close()


def _start(options: Options, rows: int, model: str) -> Settings:
    """A call's explorer starts at its own options: mode, caching, TTL and deadline (checked)."""
    run = options.run
    if options.estimate.sample_answers is not None:
        refuse(
            "sample_answers",
            options.estimate.sample_answers,
            "left out: explore answers nothing. Estimate with it once and explore that "
            "(df.claude.estimate(..., sample_answers=20).explore()), or pass calibrate=job",
        )
    start = Settings(
        rows=rows,
        model=model,
        mode=run.mode,
        caching="off" if run.cache is False else str(run.cache),
        ttl=run.cache_ttl,
        deadline_hours=_hours(run.deadline),
    )
    return check_settings(start)


def _hours(deadline: Any) -> float | None:
    """A ``deadline=`` (seconds, a timedelta or a datetime) as hours from now."""
    if deadline is None:
        return None
    if isinstance(deadline, dt.timedelta):
        return deadline.total_seconds() / 3600
    if isinstance(deadline, dt.datetime):
        return (deadline - dt.datetime.now(deadline.tzinfo or dt.UTC)).total_seconds() / 3600
    return float(deadline) / 3600


figures.register_view("explorer", explore_estimate)
