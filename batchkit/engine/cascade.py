"""Model cascades: ``df.claude.classify(..., cascade=["claude-haiku-4-5", "claude-sonnet-4-6"])``.

A cascade is stages of ordinary calls. Stage 1 is the ``classify`` (or ``extract``) call with the
first model on every row, its output schema asking for one more field, ``confidence`` (a bare
number: :func:`with_confidence`). A row whose answer's confidence is under the stage's threshold —
or that got no usable answer — goes to the next model as stage 2, with the same prompt and
schema; and so on. The last model's answer is kept whatever it is, so it is asked no confidence:
its requests are the plain ``classify``/``extract`` requests, byte for byte those of the same call
with ``model=`` that model — they share its answers, and cost what a run of it alone costs.

Each stage is a normal durable, keyed job (:func:`batchkit.engine.calls.submit`), sent in the
call's mode — batch stage after stage, realtime, or ``auto`` choosing per stage from its own
numbers. A stage's requests are keyed by their content like any other, so re-running the cell,
or running it after a kernel restart, finds every stage already paid for and sends nothing; and
a comparison's sample (``compare(..., cascade=True)``, whose cheaper models ask for the same
confidence field and whose most expensive asks plainly) is reused by the run.

Pricing covers every stage (:func:`estimate`): stage 1 on every row, plus each later stage on the
share of rows that reach it — measured on a comparison's sample when ``calibrate=`` is the
comparison the cascade came from, else a stated prior (0%–100% escalated, 30% typical). The
budget guard (``max_cost=``) checks the upper end of that range before stage 1 is sent.

What the rows got back, which model answered each and why, and the cost split by stage is a
:class:`~batchkit.engine.cascade_job.CascadeJob`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from batchkit.core.columns import Table, as_table
from batchkit.core.options import DEFAULT_THRESHOLD, Options
from batchkit.core.states import Mode, PriceMode
from batchkit.core.structured import OutputSpec
from batchkit.costs.estimate import CostEstimate
from batchkit.costs.prices import load_prices
from batchkit.costs.stages import combine_estimates
from batchkit.costs.usage import pct
from batchkit.errors import ColumnCollisionError, InvalidOptionError, warn

from . import calls
from .cascade_job import CascadeJob, Stage, escalation, exact
from .jobs import Job

__all__ = [
    "CONFIDENCE",
    "PRIOR_SHARE",
    "Cascade",
    "CascadeJob",
    "EscalationSource",
    "Stage",
    "by_price",
    "combine_estimates",
    "escalation",
    "estimate",
    "exact",
    "has_label_field",
    "plan",
    "prepare_stage",
    "run",
    "take_rows",
    "with_confidence",
]

CONFIDENCE = "confidence"
"""The field every stage's answer carries besides the labels: the model's confidence, 0 to 1."""
CONFIDENCE_SCHEMA = {"type": "number"}
"""The confidence field's schema: a property named ``confidence`` of type number says what it is,
so it carries no description (every request pays for the schema's tokens: a description cost 22
more input tokens a row, for no difference in the answers). No ``minimum``/``maximum`` either:
structured outputs do not enforce numeric bounds; a value is compared with the threshold as the
model gave it."""
PRIOR_SHARE = (0.0, 0.3, 1.0)
"""The share of rows one escalation sends on, when no sample measured it: (low, typical, high)."""


@runtime_checkable
class EscalationSource(Protocol):
    """What measured a cascade's escalation shares (a comparison run with ``cascade=True``)."""

    def escalation_shares(
        self, models: Sequence[str], thresholds: Sequence[float], prompt: Any
    ) -> list[tuple[float, float, float]] | None:
        """Per escalation, the (low, typical, high) share of rows sent on; None: not measured."""


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Cascade:
    """A checked cascade call: every stage's options built (each model checked) before any is sent."""

    prompt: Any
    output: str
    """The first output column (the label column of ``classify``)."""
    spec: OutputSpec
    """The output spec every stage but the last sends: the call's, with :data:`CONFIDENCE`."""
    plain: OutputSpec
    """The call's own output spec, which the last stage sends (nothing escalates from it)."""
    stage_options: tuple[Options, ...]
    thresholds: tuple[float, ...]
    """One per escalation: stage k's answer is kept when its confidence is at least ``thresholds[k]``."""
    options: Options
    """The call's own options (``max_cost``, ``mode``, ``calibrate`` as asked)."""
    positional: Hashable = None

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(o.params.model for o in self.stage_options)

    @property
    def kind(self) -> str:
        return self.spec.kind

    def stage_spec(self, k: int) -> OutputSpec:
        """The output spec stage ``k`` (0-based) sends: with the confidence, but for the last stage."""
        return self.plain if k == len(self.stage_options) - 1 else self.spec

    def columns(self) -> tuple[str, str]:
        """The text columns a cascade adds, ``{output}_model`` and ``{output}_why`` (the spec types its
        ``{output}_confidence``: :func:`with_confidence`)."""
        return f"{self.output}_model", f"{self.output}_why"


def with_confidence(spec: OutputSpec, output: str) -> OutputSpec:
    """``spec`` with a required ``confidence`` number field, typed into the column ``{output}_confidence``.

    Raises:
        InvalidOptionError: the schema already has a field named ``confidence``.
    """
    properties = dict(spec.schema.get("properties") or {})
    if CONFIDENCE in properties:
        raise InvalidOptionError(
            f"the schema already has a field named {CONFIDENCE!r}; a cascade adds its own (the model's confidence "
            f"in its answer, 0 to 1). Rename your field, e.g. to 'certainty'.",
            option="schema",
        )
    properties[CONFIDENCE] = dict(CONFIDENCE_SCHEMA)
    schema = {**spec.schema, "properties": properties, "required": [*spec.schema.get("required", ()), CONFIDENCE]}
    columns = (*spec.columns, (f"{output}_{CONFIDENCE}", CONFIDENCE))
    return dataclasses.replace(spec, schema=schema, columns=columns)


def plan(
    prompt: Any, *, output: str, options: Options, spec: OutputSpec | None, positional: Hashable = None
) -> Cascade:
    """Check a cascade call and build each stage's options (each model checked), before anything is sent.

    ``options`` are the call's checked options with ``cascade=`` set (and ``output_config.format``
    set from ``spec``, as ``classify``/``extract`` do).

    Raises:
        InvalidOptionError: a cascade of free text, or of an extraction with no label field.
        UnknownModelError: a model of the cascade the price table does not know.
    """
    cascade = options.run.cascade
    assert cascade is not None
    if spec is None:
        raise InvalidOptionError(
            "cascade= escalates by the model's confidence in a label, so it is for df.claude.classify (and extract "
            "with a label field), not free text: use df.claude.classify(prompt, labels=[...], cascade=[...])",
            option="cascade",
        )
    if spec.kind == "extract" and not has_label_field(spec):
        raise InvalidOptionError(
            "cascade= on extract needs a label field in the schema (a Literal[...] or an Enum), whose answer the "
            "confidence is about; this schema has none. Add one, or use one model=",
            option="cascade",
        )
    _check_order(cascade, options.run.prices)
    staged = with_confidence(spec, output)
    threshold = options.run.threshold
    thresholds = (
        threshold
        if isinstance(threshold, tuple)
        else (DEFAULT_THRESHOLD if threshold is None else threshold,) * (len(cascade) - 1)
    )
    config = {**(options.params.extra.get("output_config") or {}), **staged.output_config}
    run = dataclasses.replace(options.run, cascade=None, threshold=None, max_cost=None)
    staged_extra = {**options.params.extra, "output_config": config}
    stage_options = tuple(
        Options(
            # the last stage's params are the call's own: the plain request of a call with model=m
            dataclasses.replace(
                options.params, model=m, extra=options.params.extra if k == len(cascade) - 1 else staged_extra
            ),
            run,
            options.estimate,
        )
        for k, m in enumerate(cascade)
    )
    return Cascade(prompt, output, staged, spec, stage_options, thresholds, options, positional)


def has_label_field(spec: OutputSpec) -> bool:
    """Whether an extraction's schema has a label field (a ``Literal[...]`` or an Enum): the answer a
    cascade's confidence is about (a classification's labels are one)."""
    return any(t.kind == "enum" for t in spec.types().values())


def by_price(models: Sequence[str], prices: Any) -> list[str]:
    """``models`` cheapest first, per million input and output tokens together at the standard price
    (the order a cascade pays off in); models the price table does not know keep their order, last."""
    table = load_prices(prices)
    return sorted(models, key=lambda m: table.get(m).input + table.get(m).output if m in table else math.inf)


def _check_order(models: Sequence[str], prices: Any) -> None:
    """Warn when a later model is cheaper than one before it (:func:`by_price`): every row is asked
    the first model, so it should be the cheapest."""
    cheaper_first = by_price(models, prices)
    table = load_prices(prices)
    known = [m for m in models if m in table]
    if [m for m in cheaper_first if m in table] != known:
        cost = {m: table.get(m).input + table.get(m).output for m in known}
        warn(
            f"cascade={list(models)!r} asks {models[0]} of every row, but a later model is cheaper by the price "
            f"table (per million input + output tokens: {', '.join(f'{m} ${cost[m]:g}' for m in known)}). A cascade "
            f"pays off cheapest first: cascade={cheaper_first!r}."
        )


def _check_columns(cascade: Cascade, table: Table) -> None:
    inputs = {str(c) for c in table.names}
    for column in cascade.columns():
        if column in inputs:
            raise ColumnCollisionError(
                f"a cascade adds the column {column!r}, which has the name of an input column it would replace. "
                f"Choose another output=, or drop the column first.",
                column=column,
            )


# --------------------------------------------------------------------------- running it


def run(cascade: Cascade, table: Any, *, wait: Callable[[Job], Any]) -> CascadeJob:
    """Run the cascade over ``table`` stage after stage; ``wait`` waits for one stage's job (the
    front end's, with its progress view). Returns the cascade's handle once every stage has ended.

    Raises:
        BudgetExceededError: ``max_cost=`` is under the upper bound of every stage together,
            before stage 1 is sent.
    """
    table = as_table(table)
    _check_columns(cascade, table)
    first = prepare_stage(cascade, table, 0)  # every row checked, rendered and keyed before anything is priced
    max_cost = cascade.options.run.max_cost
    if max_cost is not None:
        guess = estimate(cascade, table, first=first)
        guess.check_budget(max_cost, mode=_budget_mode(cascade, first))
    rows = np.arange(len(table))
    stages: list[Stage] = []
    for k in range(len(cascade.stage_options)):
        call = first if k == 0 else prepare_stage(cascade, take_rows(table, rows), k)
        job = calls.submit(call)
        wait(job)
        stage = Stage(cascade.models[k], job, rows, cascade.thresholds[k] if k < len(cascade.thresholds) else None)
        stages.append(stage)
        rows = stage.escalated()
        if not len(rows):
            break
    return CascadeJob(stages, cascade.models, cascade.thresholds, len(table), frame=table.frame)


def prepare_stage(cascade: Cascade, table: Any, k: int) -> calls.Call:
    """Stage ``k``'s (0-based) call over ``table``: checked, rendered and keyed (pure)."""
    return calls.prepare(
        table,
        cascade.prompt,
        output=cascade.output,
        options=cascade.stage_options[k],
        kind=cascade.kind,
        output_spec=cascade.stage_spec(k),
        positional=cascade.positional,
    )


def take_rows(table: Table, rows: np.ndarray) -> Any:
    """The rows of ``table`` at ``rows``, as a table the core reads the same way (same request keys)."""
    if table.frame is not None:
        return table.frame.iloc[rows]
    return {name: [table.cells(name).values[int(i)] for i in rows] for name in table.names}


def _budget_mode(cascade: Cascade, call: calls.Call) -> str:
    """The price line the budget is checked on: standard when a stage may go realtime (``auto``
    chooses per stage), else the call's batch line."""
    mode = cascade.options.run.mode
    if mode in (Mode.REALTIME, Mode.AUTO):
        return PriceMode.STANDARD
    return calls.pricing_mode(call, "batch")


# --------------------------------------------------------------------------- pricing it


def escalation_shares(cascade: Cascade) -> tuple[list[tuple[float, float, float]], str]:
    """Per escalation, the (low, typical, high) share of rows sent on, and where it comes from."""
    source = cascade.options.run.calibrate
    if isinstance(source, EscalationSource):
        measured = source.escalation_shares(cascade.models, cascade.thresholds, cascade.prompt)
        if measured is not None:
            return measured, "measured on the comparison's sample (95% interval)"
    n = len(cascade.thresholds)
    return [PRIOR_SHARE] * n, (
        f"assumed: {pct(PRIOR_SHARE[0])}–{pct(PRIOR_SHARE[2])} of rows escalated at each step, "
        f"{pct(PRIOR_SHARE[1])} typical (a prior; compare(..., cascade=True) measures it)"
    )


def estimate(cascade: Cascade, table: Any, *, first: calls.Call | None = None, count: bool = True) -> CostEstimate:
    """Every stage priced on every row, later stages weighted by the share of rows that reach them
    (:func:`combine_estimates`). ``first``: stage 1's call, when already prepared."""
    table = as_table(table)
    shares, basis = escalation_shares(cascade)
    stage_estimates = []
    for k in range(len(cascade.stage_options)):
        call = first if k == 0 and first is not None else prepare_stage(cascade, table, k)
        stage_estimates.append(calls.estimate(call, count=count))
    return combine_estimates(stage_estimates, shares, cascade.models, basis)
