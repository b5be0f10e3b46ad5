"""Which model (and prompt) is good enough, and what the whole frame will cost: ``df.claude.compare``.

:func:`compare` draws a seeded sample of the frame (stratified by the ``truth`` column when there
is one), runs it under every model × prompt variant — each variant is an ordinary job, submitted
through the same path as ``df.claude.submit`` with the call's keyword arguments passed through,
all submitted first and then waited for together, with the usual progress views unless
``progress=False`` — and returns a :class:`Comparison`:

* **quality** per variant: accuracy against ``truth`` with a Wilson 95% interval (a confusion
  matrix for labels, per-field accuracy for extraction) — or, without ``truth``, *agreement*
  with a reference variant (the most expensive model, i.e. presumably the strongest), always
  labelled as agreement, never as accuracy;
* **cost** per variant from the sample's real usage: dollars per row at the batch and the
  standard price, the whole frame projected in every mode (with and without prompt caching,
  calibrated on the sample's measured answer lengths — see :mod:`batchkit.costs.calibration`),
  dollars per correct row, and seconds per row (the sample job's own, as the store recorded it);
* a **recommendation**: the cheapest variant whose lower quality bound meets ``target``, or,
  without a target, the cheapest one on the cost–quality Pareto front whose quality cannot be
  told apart from the best (its interval reaches the best point estimate) — with the reason;
* with ``cascade=True``, **cascades** of each pair of models, the cheaper first, evaluated from
  the same answers (every model but the most expensive asked for its confidence, every single
  model priced as run alone, without it; :mod:`batchkit.compare.cascades`) and chosen among like
  any variant;
* ``to_frame()``, text and HTML reprs, ``plot(ax=None)`` (cost vs quality, front marked), and
  :meth:`Comparison.run` / :meth:`Comparison.apply`, which run the chosen variant on the whole
  frame. The sample's answers are reused, not paid twice: a request's key is the hash of its
  content, so the sample's rows are already answered in the store and only the rest are sent.

Nothing is sent for a sample that could not be scored: an empty frame, a truth column that is
missing, empty or blank, a truth naming no field of the schema (or one column for several
fields), truth values that can never equal an answer of the field's kind (a word for a number,
a boolean or a date; a value outside a label set or a ``Literal``), and a sample that drew no
row with a truth are refused first, each naming the fix. A variant whose rows all failed or were
skipped is shown as having no answers (and why), never chosen, and never stops the comparison.

On the simulator the per-model differences are simulated (see ``batchkit.simulator``): a
comparison there shows how the tool works, never how Claude's models compare.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from batchkit.core.options import CLASSIFY_MAX_TOKENS, DEFAULT_MAX_TOKENS, Options
from batchkit.core.results import SAMPLE_OUTPUT
from batchkit.core.states import Mode
from batchkit.core.structured import OutputSpec, classify_spec, extract_spec
from batchkit.costs.calibration import billed_requests
from batchkit.costs.estimate import CostEstimate
from batchkit.costs.prices import load_prices
from batchkit.costs.usage import usage_cost_frame
from batchkit.display.views import show_job
from batchkit.engine import calls
from batchkit.engine.calls import Call
from batchkit.engine.cascade import CONFIDENCE, with_confidence
from batchkit.engine.jobs import Job
from batchkit.engine.reports import warn_failures
from batchkit.errors import InvalidOptionError

from .cascades import alone_cost, check_cascade, confidence_of, evaluate, field_tokens
from .checks import check_call, check_models, check_prompts, check_sample, check_seed, check_target
from .comparison import Comparison, Variant
from .scoring import normal, score, truth_values
from .truth import check_label_truth, check_truth_columns, field_kinds, have_truth, truth_pairs

__all__ = ["Comparison", "compare", "sample_positions"]

_SAMPLE_OUTPUT = SAMPLE_OUTPUT
"""The sample jobs' output column (internal: the user's frame may hold a column named like theirs)."""
_SAMPLE_PREFIX = "_compare_"
_DEFAULT_MAX_TOKENS = {"classify": CLASSIFY_MAX_TOKENS, "extract": DEFAULT_MAX_TOKENS}


# --------------------------------------------------------------------------- sampling


def sample_positions(n: int, size: int, *, strata: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """``size`` row positions of ``n``, drawn with ``seed``, in their original order.

    With ``strata`` (one value per row), every stratum gets its share of the sample in
    proportion to its size (largest remainders), so a rare class is represented as in the frame.
    """
    rng = np.random.default_rng(seed)
    if size >= n:
        return np.arange(n)
    if strata is None:
        return np.sort(rng.choice(n, size=size, replace=False))
    codes, uniques = pd.factorize(pd.Series(strata, dtype=object), use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(uniques))
    exact = counts * size / n
    take = np.floor(exact).astype(int)
    short = size - int(take.sum())
    take[np.argsort(-(exact - take), kind="stable")[:short]] += 1
    picked = [rng.choice(np.flatnonzero(codes == c), size=int(k), replace=False) for c, k in enumerate(take) if k]
    return np.sort(np.concatenate(picked)) if picked else np.arange(0)


# --------------------------------------------------------------------------- building one


def compare(
    frame: pd.DataFrame,
    prompt: str | Callable[[pd.Series], str | None],
    *,
    models: Sequence[str],
    prompts: Sequence[Any] | Mapping[str, Any] | None,
    sample: float,
    truth: str | Mapping[str, str] | None,
    task: str,
    labels: Sequence[str] | None,
    schema: Any,
    target: float | None,
    reference: str | None,
    seed: int,
    output: str | None,
    cascade: bool = False,
    **kwargs: Any,
) -> Comparison:
    """Run a sample of ``frame`` under every model × prompt and compare quality and cost.

    See :meth:`batchkit.frontends.pandas.ClaudeFrameAccessor.compare` for the arguments and their
    defaults (the public signature is their one home: ``df.claude.compare`` passes every one by
    name). Every check runs before anything is sent, that the sample can be scored included
    (see the module docstring).
    """
    _check_call(frame, task, labels, schema, kwargs, cascade)
    extract_args = {"prefix": kwargs.pop("prefix")} if task == "extract" and "prefix" in kwargs else {}
    model_ids = check_models(models)
    named = check_prompts(prompt, prompts)
    size = check_sample(sample, len(frame))
    target = check_target(target)
    truth = check_truth_columns(frame, truth, task)
    seed = check_seed(seed)
    _check_reference_and_labels(frame, reference, model_ids, task, truth, labels)

    # The structured spec and the options of every variant, all checked before anything is sent.
    spec, structure = _structure(task, labels, schema, extract_args)
    pairs = truth_pairs(frame, truth, task, spec)
    staged = _cascade_spec(spec, cascade, task, model_ids)
    call_kwargs, plain = _variant_options(kwargs, task, model_ids, spec)
    strongest = _strongest(model_ids, plain[model_ids[0]])
    reference, (specs, options) = reference or strongest, _as_sent(call_kwargs, plain, spec, staged, strongest)
    positions = _draw_sample(frame, size, truth, pairs, seed)
    rows = frame.iloc[positions]
    kind = spec.kind if spec is not None else "text"
    prepared = [
        (m, name, p, _prepare(rows, p, options[m], kind, specs[m])) for name, p in named.items() for m in model_ids
    ]
    variants = _run(prepared, progress=options[model_ids[0]].run.progress)
    _score_variants(variants, rows, truth, task, specs, reference, named)
    _price_all(variants, frame, rows, (options, plain), kind, (specs, spec))
    if staged is not None:
        variants += evaluate(variants, target=target, prices=options[model_ids[0]].run.prices)
    ref = next((v for v in variants if v.model == reference and v.prompt_name == "p1"), None) if truth is None else None
    return Comparison(
        frame=frame,
        positions=positions,
        task=task,
        variants=variants,
        truth=truth,
        reference=ref,
        target=target,
        call_kwargs=call_kwargs,
        structure=structure,
        output=output,
        simulated=_is_simulated(variants[0].job),
    )


def _check_call(frame: pd.DataFrame, task: str, labels: Any, schema: Any, kwargs: dict[str, Any], cascade: Any) -> None:
    """The call's own checks (:func:`~batchkit.compare.checks.check_call`), and no ``threshold=`` beside
    ``cascade=True``, which picks the thresholds itself."""
    if cascade is True and "threshold" in kwargs:
        raise InvalidOptionError(
            "compare(cascade=True) picks the thresholds itself, from the sample's own confidences; remove "
            "threshold= (a threshold of your own runs with df.claude.classify(..., cascade=[...], threshold=t))",
            option="threshold",
        )
    check_call(frame, task, labels, schema, kwargs)


def _check_reference_and_labels(
    frame: pd.DataFrame, reference: str | None, model_ids: list[str], task: str, truth: Any, labels: Any
) -> None:
    if reference is not None and reference not in model_ids:
        raise InvalidOptionError(f"reference={reference!r} is not one of models={model_ids}", option="reference")
    if task == "classify" and isinstance(truth, str):
        check_label_truth(frame, truth, labels or ())


def _cascade_spec(spec: OutputSpec | None, cascade: Any, task: str, model_ids: list[str]) -> OutputSpec | None:
    """With ``cascade=True`` (checked), the spec asking for the confidence a cascade's first stages send,
    so the sample's requests are the very requests of those stages; None without it."""
    if not check_cascade(cascade, task, model_ids, spec):
        return None
    assert spec is not None
    return with_confidence(spec, _SAMPLE_OUTPUT if task == "classify" else _SAMPLE_PREFIX.rstrip("_"))


def _as_sent(
    call_kwargs: Mapping[str, Any],
    plain: Mapping[str, Options],
    spec: OutputSpec | None,
    staged: OutputSpec | None,
    strongest: str,
) -> tuple[dict[str, OutputSpec | None], dict[str, Options]]:
    """Each model's output spec and options as its sample sends them: with ``cascade=True`` every model but
    the strongest asks for the confidence (the strongest is only ever a cascade's last stage, asked none)."""
    if staged is None:
        return dict.fromkeys(plain, spec), dict(plain)
    specs: dict[str, OutputSpec | None] = {m: spec if m == strongest else staged for m in plain}
    options = {
        m: o if m == strongest else Options.build({**call_kwargs, "model": m}, verb="compare").with_output_spec(staged)
        for m, o in plain.items()
    }
    return specs, options


def _prepare(frame: pd.DataFrame, prompt: Any, options: Options, kind: str, spec: OutputSpec | None) -> Call:
    return calls.prepare(frame, prompt, output=_SAMPLE_OUTPUT, options=options, kind=kind, output_spec=spec)


def _structure(
    task: str, labels: Sequence[str] | None, schema: Any, extract_args: Mapping[str, Any]
) -> tuple[OutputSpec | None, dict[str, Any]]:
    """The structured output of a ``classify`` or ``extract`` comparison, and what
    :meth:`Comparison.run` passes on to run it on the whole frame."""
    if task == "classify":
        assert labels is not None
        return classify_spec(labels, output=_SAMPLE_OUTPUT), {"labels": list(labels)}
    if task == "extract":
        return extract_spec(schema, prefix=_SAMPLE_PREFIX), {"schema": schema, "extract": extract_args}
    return None, {}


def _variant_options(
    kwargs: Mapping[str, Any], task: str, model_ids: list[str], spec: OutputSpec | None
) -> tuple[dict[str, Any], dict[str, Options]]:
    """The call's keyword arguments as the sample sends them, and each model's checked options (with
    ``spec``, the plain requests)."""
    call_kwargs = dict(kwargs)
    # A sample is for a person waiting: realtime answers in seconds unless the call says otherwise
    # (Comparison.run sends the whole frame in the notebook's default mode, batch unless set).
    call_kwargs.setdefault("mode", Mode.REALTIME.value)  # the text: it is shown back as the call asked it
    if task in _DEFAULT_MAX_TOKENS:
        call_kwargs.setdefault("max_tokens", _DEFAULT_MAX_TOKENS[task])
    options = {}
    for m in model_ids:
        built = Options.build({**call_kwargs, "model": m}, verb="compare")
        if spec is not None:
            built = built.with_output_spec(spec)
        options[m] = built
    return call_kwargs, options


def _strongest(model_ids: list[str], options: Options) -> str:
    """The reference when none is named: the most expensive model, presumably the strongest."""
    table = load_prices(options.run.prices)
    return max(model_ids, key=lambda m: (table.get(m).output, table.get(m).input) if m in table else (0, 0))


def _draw_sample(frame: pd.DataFrame, size: int, truth: Any, pairs: Mapping[str, str], seed: int) -> np.ndarray:
    """The sample's row positions (stratified by a truth column), refused if no row of it can be scored."""
    strata = frame[truth].to_numpy() if isinstance(truth, str) else None
    positions = sample_positions(len(frame), size, strata=strata, seed=seed)
    rows = frame.iloc[positions]
    if pairs and not have_truth(rows, pairs).any():
        columns = list(dict.fromkeys(pairs.values()))
        raise InvalidOptionError(
            f"none of the sample's {len(rows):,} rows has a truth value in {columns} (the frame has "
            f"{int(have_truth(frame, pairs).sum()):,} of {len(frame):,}), so no answer could be scored: pass a "
            f"larger sample=, or fill in the truth",
            option="sample",
        )
    return positions


def _run(prepared: list[tuple[str, str, Any, Call]], *, progress: bool) -> list[Variant]:
    """Submit every variant, then wait for them together: N variants take about as long as one."""
    started = time.monotonic()
    variants = [Variant(f"{m} · {name}", m, name, p, calls.submit(call)) for m, name, p, call in prepared]
    views = [show_job(v.job, brief=True) for v in variants] if progress else []
    _wait_all(variants, started)
    for view in views:
        if view is not None:
            view.finish()  # draw the final state now
    return variants


def _price(v: Variant, frame: pd.DataFrame, prompt: Any, options: Options, kind: str, spec: OutputSpec | None) -> None:
    """The variant's outcome counts, its sample's cost from the usage, and the whole frame's projection."""
    outcomes = v.job.outcomes()  # a whole frame: built once per variant
    billed = billed_requests(outcomes)
    v.outcome_counts = {str(k): int(n) for k, n in outcomes["status"].value_counts().items()}
    v.usage_cost = _sample_usage_cost(billed, v.model, options.run.prices)
    # Calibrated on the sample's answers; a variant without any is priced on the usual guess.
    basis = _calibrated(options, v.job) if not billed.empty else _uncapped(options)
    v.projector = _projector(frame, prompt, basis, kind, spec)


def _price_all(
    variants: list[Variant],
    frame: pd.DataFrame,
    rows: pd.DataFrame,
    options: tuple[Mapping[str, Options], Mapping[str, Options]],
    kind: str,
    specs: tuple[Mapping[str, OutputSpec | None], OutputSpec | None],
) -> None:
    """Price every variant (:func:`_price`); one whose sample asked for the confidence (``options``,
    ``specs``: as sent, then plain) as its model run alone, without it."""
    for v in variants:
        sent, spec = specs[0][v.model], specs[1]
        _price(v, frame, v.prompt, options[0][v.model], kind, sent)
        if sent is not spec:
            pair = (
                _prepare(rows, v.prompt, options[0][v.model], kind, sent),
                _prepare(rows, v.prompt, options[1][v.model], kind, spec),
            )
            _alone(v, frame, options[1][v.model], kind, spec, field_tokens(*pair))


def _alone(v: Variant, frame: pd.DataFrame, plain: Options, kind: str, spec: Any, extra: tuple[float, float]) -> None:
    """The sample's usage less the ``extra`` tokens the field added to each request
    (:func:`~batchkit.compare.cascades.field_tokens`), and the whole frame projected for the plain
    requests, their answers as long as the measured ones less the field."""
    billed = billed_requests(v.job.outcomes())
    v.paid, v.usage_cost = v.usage_cost, alone_cost(billed, v.model, extra, plain.run.prices)
    v.staged_projector = v.projector
    basis = _uncapped(plain)
    if not billed.empty:
        typical = max(1, round(float(billed["output_tokens"].mean()) - extra[1]))
        basis = dataclasses.replace(basis, estimate=dataclasses.replace(basis.estimate, typical_output_tokens=typical))
    v.projector = _projector(frame, v.prompt, basis, kind, spec)


def _sample_usage_cost(billed: pd.DataFrame, model: str, prices: Any) -> tuple[float, float]:
    """Dollars of the sample's distinct billed requests (:func:`~batchkit.costs.calibration.billed_requests`)
    at (batch, standard) price, from their usage."""
    if billed.empty:
        return 0.0, 0.0
    batch = float(usage_cost_frame(billed, model, batch=True, prices=prices)["total"].sum())
    standard = float(usage_cost_frame(billed, model, batch=False, prices=prices)["total"].sum())
    return batch, standard


def _wait_all(variants: list[Variant], started: float) -> None:
    """Wait for every variant's job at once, noting when each ended; then raise what one raised."""
    errors: list[BaseException] = []

    def wait(v: Variant) -> None:
        try:
            v.job.wait()
        except BaseException as exc:  # re-raised below, on the caller's thread
            errors.append(exc)
        v.seconds = _job_seconds(v.job, time.monotonic() - started)

    threads = [
        threading.Thread(target=wait, args=(v,), daemon=True, name=f"batchkit-compare-{i}")
        for i, v in enumerate(variants)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for v in variants:
        warn_failures(v.job)


def _job_seconds(job: Job, wall: float) -> float:
    """The sample job's own time, as the store recorded it (first request sent to last answer), so
    a comparison answered from the store later shows the same time/row; NaN for a job that sent
    nothing (every answer came from the store); the wall time if no batch recorded its times."""
    from batchkit.display.reader import snapshot

    snap = snapshot(job)
    if snap.elapsed is not None:
        return snap.elapsed
    return math.nan if not snap.batches else wall


def _projector(
    frame: pd.DataFrame, prompt: Any, options: Options, kind: str, spec: OutputSpec | None
) -> Callable[[], CostEstimate]:
    def project() -> CostEstimate:
        return calls.estimate(_prepare(frame, prompt, options, kind, spec), count=False)

    return project


def _calibrated(options: Options, job: Job) -> Options:
    return Options(options.params, dataclasses.replace(options.run, calibrate=job, max_cost=None), options.estimate)


def _uncapped(options: Options) -> Options:
    return Options(options.params, dataclasses.replace(options.run, max_cost=None), options.estimate)


def _is_simulated(job: Job) -> bool:
    from batchkit.display.reader import is_simulated

    return is_simulated(job)


def _score_variants(
    variants: list[Variant],
    rows: pd.DataFrame,
    truth: Any,
    task: str,
    specs: Mapping[str, OutputSpec | None],
    reference: str,
    named: Mapping[str, Any],
) -> None:
    """Fill each variant's answers and per-row correctness (against truth, else the reference)."""
    for v in variants:
        out = v.job.to_frame(rows)
        spec = specs[v.model]
        if spec is None:
            v.answers = out[[_SAMPLE_OUTPUT]]
        else:
            v.answers = out[[c for c, _ in spec.columns]].rename(columns={c: f for c, f in spec.columns})
            v.answers, v.confidence = confidence_of(v.answers, CONFIDENCE)
    ref = next(v for v in variants if v.model == reference and v.prompt_name == next(iter(named)))
    spec = specs[reference]
    kinds = field_kinds(spec) if task == "extract" and spec is not None else {}
    for v in variants:
        if task == "extract":
            fields = list(v.answers.columns)
            per_field: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for f in fields:
                if truth is not None:
                    column = truth.get(f) if isinstance(truth, Mapping) else (truth if len(fields) == 1 else None)
                    if column is None:
                        continue
                    expected = truth_values(rows, column, task, kinds.get(f, ("text", ()))[0])
                else:
                    expected = normal(ref.answers[f].to_numpy()).reset_index(drop=True)
                per_field[f] = score(v.answers[f], expected)
            if not per_field:
                v.correct, v.scored = np.zeros(len(rows), bool), np.zeros(len(rows), bool)
                continue
            v.correct = np.logical_and.reduce([c for c, _ in per_field.values()])
            v.scored = np.logical_and.reduce([s for _, s in per_field.values()])
            v.field_scores = {f: float(c[s].mean()) if s.any() else math.nan for f, (c, s) in per_field.items()}
            continue
        if truth is not None:
            expected = truth_values(rows, truth, task)
        else:
            expected = normal(ref.answers.iloc[:, 0].astype("string").to_numpy()).reset_index(drop=True)
        v.correct, v.scored = score(v.answers.iloc[:, 0].astype("string"), expected)
