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
from typing import Any, Literal

import numpy as np
import pandas as pd

from batchkit.core.options import CLASSIFY_MAX_TOKENS, DEFAULT_MAX_TOKENS, Options
from batchkit.core.results import SAMPLE_OUTPUT
from batchkit.core.structured import OutputSpec, classify_spec, extract_spec
from batchkit.costs.pricing import CostEstimate, load_prices, usage_cost_frame
from batchkit.display.views import show_job
from batchkit.engine import calls
from batchkit.engine.jobs import Job, warn_failures
from batchkit.errors import (
    InvalidOptionError,
    MissingColumnError,
    OptionTypeError,
    UnknownOptionError,
)

from .comparison import Comparison, Variant, _as_kind, _normal, _present, _score, _truth_values

__all__ = ["Comparison", "compare", "sample_positions"]

Task = Literal["batch", "classify", "extract"]
TASKS: tuple[str, ...] = ("batch", "classify", "extract")
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


def _check_models(models: Any) -> list[str]:
    if isinstance(models, str):
        models = [models]
    if not isinstance(models, Sequence) or not models:
        raise OptionTypeError(
            f"models must be a list of model ids such as ['claude-haiku-4-5', 'claude-sonnet-4-6'], not {models!r:.80}",
            option="models",
        )
    models = list(models)
    for m in models:
        if not isinstance(m, str) or not m.strip():
            raise OptionTypeError(f"models must hold model id strings, not {m!r:.60}", option="models")
    if len(set(models)) != len(models):
        raise InvalidOptionError(f"models lists a model twice ({models}); name each once", option="models")
    return models


def _check_prompts(prompt: Any, prompts: Any) -> dict[str, Any]:
    named: dict[str, Any] = {"p1": prompt}
    if prompts is None:
        return named
    if isinstance(prompts, str) or callable(prompts):
        prompts = [prompts]
    if isinstance(prompts, Mapping):
        items = [(str(k), p) for k, p in prompts.items()]
    elif isinstance(prompts, Sequence):
        items = [(f"p{i}", p) for i, p in enumerate(prompts, start=2)]
    else:
        raise OptionTypeError(
            f"prompts must be a list of other prompt templates (or {{name: template}}), not {type(prompts).__name__}",
            option="prompts",
        )
    for name, p in items:
        if not (isinstance(p, str) or callable(p)):
            raise OptionTypeError(
                f"prompts[{name!r}] must be a template string or a callable row -> str, not {type(p).__name__}",
                option="prompts",
            )
        if name in named or p in named.values():
            raise InvalidOptionError(
                f"prompts repeats a prompt or a name ({name!r}); give each variant once", option="prompts"
            )
        named[name] = p
    return named


def _check_sample(sample: Any, n: int) -> int:
    if isinstance(sample, (bool, np.bool_)) or not isinstance(sample, (int, float, np.integer, np.floating)):
        raise OptionTypeError(
            f"sample must be a number of rows such as 200 (or a fraction such as 0.1), not {sample!r:.60}",
            option="sample",
        )
    if isinstance(sample, (float, np.floating)) and not float(sample).is_integer():
        if not 0 < sample <= 1:
            raise InvalidOptionError(
                f"sample={sample!r}: a fraction must be within (0, 1]; or give a number of rows", option="sample"
            )
        return max(1, round(sample * n))
    if sample < 1:
        raise InvalidOptionError(f"sample must be at least 1 row, not {sample!r}", option="sample")
    return min(int(sample), n)


def _check_target(target: Any) -> float | None:
    if target is None:
        return None
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, (int, float, np.integer, np.floating)):
        raise OptionTypeError(
            f"target must be the quality you need as a fraction such as 0.8, not {target!r:.60}", option="target"
        )
    if not 0 < target <= 1:
        raise InvalidOptionError(
            f"target must be a fraction within (0, 1] such as 0.8 (80% accuracy), not {target!r}", option="target"
        )
    return float(target)


def _check_truth(frame: pd.DataFrame, truth: Any, task: str) -> Any:
    if truth is None:
        return None
    columns = [str(c) for c in frame.columns]
    names = list(truth.values()) if isinstance(truth, Mapping) else [truth]
    if isinstance(truth, Mapping) and task != "extract":
        raise OptionTypeError(
            "truth= as {field: column} is for extraction; name one column: truth='label'", option="truth"
        )
    for name in names:
        if not isinstance(name, str):
            raise OptionTypeError(f"truth must name a column of the frame (a string), not {name!r:.60}", option="truth")
        if name not in frame.columns:
            raise MissingColumnError(
                f"truth={name!r} is not a column of the frame; its columns are {columns}",
                column=name,
                available=columns,
            )
    return truth


_KIND_WORDS = {"number": "numbers", "boolean": "True or False", "date": "dates"}
_KIND_FIX = {
    "number": "pd.to_numeric(df[{c!r}], errors='coerce') makes them missing (not scored)",
    "boolean": "df[{c!r}].map({{'yes': True, 'no': False}}) maps them",
    "date": "pd.to_datetime(df[{c!r}], errors='coerce') makes them missing (not scored)",
}


def _field_kinds(spec: OutputSpec) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """Each extracted field's kind of answer (see :data:`batchkit.compare.comparison.TRUTH_KINDS`) and,
    for a closed set (``Literal``, ``Enum``), its values: what a truth column is read as."""
    defs = spec.schema.get("$defs", {})

    def resolve(prop: Mapping[str, Any]) -> Mapping[str, Any]:
        if "$ref" in prop:
            prop = defs.get(str(prop["$ref"]).rsplit("/", 1)[-1], {})
        branches = [b for b in prop.get("anyOf", ()) if b.get("type") != "null"]
        return resolve(branches[0]) if len(branches) == 1 else prop  # X | None is read as X

    kinds: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for name, raw in spec.schema.get("properties", {}).items():
        prop = resolve(raw)
        if "enum" in prop:
            kinds[name] = ("enum", tuple(prop["enum"]))
        elif prop.get("type") in ("integer", "number"):
            kinds[name] = ("number", ())
        elif prop.get("type") == "boolean":
            kinds[name] = ("boolean", ())
        elif prop.get("type") == "string" and prop.get("format") in ("date", "date-time"):
            kinds[name] = ("date", ())
        else:
            kinds[name] = ("text", ())
    return kinds


def _truth_pairs(frame: pd.DataFrame, truth: Any, task: str, spec: OutputSpec | None) -> dict[str, str]:
    """``{answer field: truth column}`` — after refusing a truth that could score no answer.

    Refused: a truth naming no field of the schema or one column for several fields; a column
    with no value at all (missing or blank); values that cannot be the field's kind of answer
    (a word where a number, True/False or a date is extracted, or a value outside a closed set);
    and, for several fields, no row with a value in every truth column (a row is scored on all).
    """
    if truth is None:
        return {}
    kinds: dict[str, tuple[str, tuple[Any, ...]]] = {_SAMPLE_OUTPUT: ("text", ())}
    if task != "extract":
        pairs = {_SAMPLE_OUTPUT: truth}
    else:
        assert spec is not None
        kinds = _field_kinds(spec)
        fields = list(kinds)
        if isinstance(truth, str):
            if len(fields) != 1:
                raise InvalidOptionError(
                    f"truth={truth!r} names one column, but the schema has {len(fields)} fields {fields}: say which "
                    f"column holds which field's right answer, e.g. truth={{{fields[0]!r}: {truth!r}}}",
                    option="truth",
                )
            pairs = {fields[0]: truth}
        else:
            if not truth:
                raise InvalidOptionError(
                    f"truth={{}} names no field: give {{field: column}}, e.g. truth={{{fields[0]!r}: 'a column'}}, "
                    "or leave truth= out to measure agreement",
                    option="truth",
                )
            unknown = [f for f in truth if f not in kinds]
            if unknown:
                raise InvalidOptionError(
                    f"truth= names {unknown}, not a field of the schema; its fields are {fields}. Key truth= by the "
                    f"schema's field names, e.g. truth={{{fields[0]!r}: {next(iter(truth.values()))!r}}}",
                    option="truth",
                )
            pairs = dict(truth)
    for field_name, column in pairs.items():
        values = frame[column]
        present = _present(values)
        if not present.any():
            raise InvalidOptionError(
                f"the truth column {column!r} has no values (all {len(frame):,} are missing or blank), so no answer "
                "could be scored: fill it in, or leave truth= out to measure agreement with the reference model",
                option="truth",
            )
        kind, choices = kinds[field_name]
        distinct = values[present].drop_duplicates() if kind != "text" else values.iloc[:0]
        _, bad = _as_kind(distinct, kind)
        if bad.any():
            examples = [repr(v) for v in distinct[bad].iloc[:5]]
            wrong = int(values[present].isin(distinct[bad]).sum())
            raise InvalidOptionError(
                f"the truth column {column!r} holds values that are not {_KIND_WORDS[kind]}, but the field "
                f"{field_name!r} is extracted as {_KIND_WORDS[kind]}, so they could never match: {', '.join(examples)} "
                f"({wrong:,} of {len(frame):,} rows). Convert the column first: " + _KIND_FIX[kind].format(c=column),
                option="truth",
            )
        if kind == "enum":
            allowed = set(_normal(list(choices)).dropna())
            outside = sorted(set(_normal(distinct.to_numpy()).dropna()) - allowed)
            if outside:
                raise InvalidOptionError(
                    f"the truth column {column!r} holds values that are not among the field {field_name!r}'s choices "
                    f"{list(choices)}: {outside[:5]}. Map them first, e.g. df[{column!r}].map({{...}})",
                    option="truth",
                )
    if len(pairs) > 1 and not _have_truth(frame, pairs).any():
        raise InvalidOptionError(
            f"no row has a value in every truth column {list(pairs.values())}, and a row is scored on all its "
            "fields: fill them in, or score fewer fields",
            option="truth",
        )
    return pairs


def _have_truth(rows: pd.DataFrame, pairs: Mapping[str, str]) -> np.ndarray:
    """Per row: a value in every truth column (the rows that can be scored)."""
    return np.logical_and.reduce([_present(rows[c]) for c in pairs.values()])


def _billed(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The sample's distinct requests that were paid for (answered, even if cut short or invalid),
    from its job's ``outcomes()``."""
    billed = outcomes[outcomes["status"].isin(("succeeded", "truncated", "invalid_output"))]
    return billed.drop_duplicates("request_key")


def _sample_usage_cost(billed: pd.DataFrame, model: str, prices: Any) -> tuple[float, float]:
    """Dollars of the sample's distinct billed requests (:func:`_billed`) at (batch, standard)
    price, from their usage."""
    if billed.empty:
        return 0.0, 0.0
    batch = float(usage_cost_frame(billed, model, batch=True, prices=prices)["total"].sum())
    standard = float(usage_cost_frame(billed, model, batch=False, prices=prices)["total"].sum())
    return batch, standard


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
    **kwargs: Any,
) -> Comparison:
    """Run a sample of ``frame`` under every model × prompt and compare quality and cost.

    See :meth:`batchkit.frontends.pandas.ClaudeFrameAccessor.compare` for the arguments and their
    defaults (the public signature is their one home: ``df.claude.compare`` passes every one by
    name). Every check runs before anything is sent, that the sample can be scored included
    (see the module docstring).
    """
    if not isinstance(frame, pd.DataFrame):
        raise OptionTypeError(f"compare needs a DataFrame, not {type(frame).__name__}", option="frame")
    if len(frame) == 0:
        raise InvalidOptionError(
            "the frame has no rows, so there is no sample to compare on: compare a frame "
            "with rows (did a filter above remove them all?)",
            option="frame",
        )
    if task not in TASKS:
        raise InvalidOptionError(f"task must be one of {', '.join(map(repr, TASKS))}, not {task!r}", option="task")
    if task == "batch" and (labels is not None or schema is not None):
        raise InvalidOptionError(
            "labels= and schema= are for task='classify' and task='extract'; pass the task too", option="task"
        )
    if task == "classify" and labels is None:
        raise InvalidOptionError("task='classify' needs labels=[...]", option="labels")
    if task == "extract" and schema is None:
        raise InvalidOptionError("task='extract' needs schema= (a pydantic model or {name: type})", option="schema")
    if "model" in kwargs:
        raise UnknownOptionError("compare takes models=[...] (a list), not model=", option="model", suggestion="models")
    extract_args = {"prefix": kwargs.pop("prefix")} if task == "extract" and "prefix" in kwargs else {}
    model_ids = _check_models(models)
    named = _check_prompts(prompt, prompts)
    size = _check_sample(sample, len(frame))
    target = _check_target(target)
    truth = _check_truth(frame, truth, task)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise OptionTypeError(f"seed must be a whole number, not {seed!r:.60}", option="seed")
    if reference is not None and reference not in model_ids:
        raise InvalidOptionError(f"reference={reference!r} is not one of models={model_ids}", option="reference")
    if task == "classify" and truth is not None and isinstance(truth, str):
        # Read as scoring reads it: " Positive." is the label "positive"; a blank cell is no truth.
        distinct = frame[truth].dropna().drop_duplicates()
        normal = _normal(distinct.to_numpy())
        allowed = set(_normal(list(labels or ())).dropna())
        unknown = {str(v) for v, n in zip(distinct, normal, strict=True) if n is not pd.NA and n not in allowed}
        if unknown:
            raise InvalidOptionError(
                f"the truth column {truth!r} holds values that are not labels: {sorted(unknown)[:5]}; "
                f"labels are {list(labels or ())}. Map them first, e.g. df.assign(gold=df[{truth!r}].map({{...}}))",
                option="truth",
            )

    # The structured spec and the options of every variant, all checked before anything is sent.
    spec: OutputSpec | None = None
    structure: dict[str, Any] = {}
    if task == "classify":
        assert labels is not None
        spec = classify_spec(labels, output=_SAMPLE_OUTPUT)
        structure["labels"] = list(labels)
    elif task == "extract":
        spec = extract_spec(schema, prefix=_SAMPLE_PREFIX)
        structure.update(schema=schema, extract=extract_args)
    pairs = _truth_pairs(frame, truth, task, spec)
    call_kwargs = dict(kwargs)
    # A sample is for a person waiting: realtime answers in seconds unless the call says otherwise
    # (Comparison.run sends the whole frame in the notebook's default mode, batch unless set).
    call_kwargs.setdefault("mode", "realtime")
    if task in _DEFAULT_MAX_TOKENS:
        call_kwargs.setdefault("max_tokens", _DEFAULT_MAX_TOKENS[task])
    options = {}
    for m in model_ids:
        built = Options.build({**call_kwargs, "model": m}, verb="submit")
        if spec is not None:
            built = built.with_output_spec(spec)
        options[m] = built
    if reference is None:
        table = load_prices(options[model_ids[0]].run.prices)
        reference = max(model_ids, key=lambda m: (table.get(m).output, table.get(m).input) if m in table else (0, 0))

    strata = frame[truth].to_numpy() if isinstance(truth, str) else None
    positions = sample_positions(len(frame), size, strata=strata, seed=int(seed))
    rows = frame.iloc[positions]
    if pairs and not _have_truth(rows, pairs).any():
        columns = list(dict.fromkeys(pairs.values()))
        raise InvalidOptionError(
            f"none of the sample's {len(rows):,} rows has a truth value in {columns} (the frame has "
            f"{int(_have_truth(frame, pairs).sum()):,} of {len(frame):,}), so no answer could be scored: pass a "
            f"larger sample=, or fill in the truth",
            option="sample",
        )
    kind = spec.kind if spec is not None else "text"
    prepared = [
        (m, name, p, calls.prepare(rows, p, output=_SAMPLE_OUTPUT, options=options[m], kind=kind, output_spec=spec))
        for name, p in named.items()
        for m in model_ids
    ]
    # Submit every variant, then wait for them together: N variants take about as long as one.
    started = time.monotonic()
    variants = [Variant(f"{m} · {name}", m, name, p, calls.submit(call)) for m, name, p, call in prepared]
    views = [show_job(v.job, brief=True) for v in variants] if options[model_ids[0]].run.progress else []
    _wait_all(variants, started)
    for view in views:
        if view is not None:
            view.finish()  # draw the final state now

    _score_variants(variants, rows, truth, task, spec, reference, named)
    for v, (m, _, p, _call) in zip(variants, prepared, strict=True):
        outcomes = v.job.outcomes()  # a whole frame: built once per variant
        billed = _billed(outcomes)
        v.outcome_counts = {str(k): int(n) for k, n in outcomes["status"].value_counts().items()}
        v.usage_cost = _sample_usage_cost(billed, m, options[m].run.prices)
        # Calibrated on the sample's answers; a variant without any is priced on the usual guess.
        basis = _calibrated(options[m], v.job) if not billed.empty else _uncapped(options[m])
        v.projector = _projector(frame, p, basis, kind, spec)
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
    from batchkit.display.progress import snapshot

    snap = snapshot(job)
    if snap.elapsed is not None:
        return snap.elapsed
    return math.nan if not snap.batches else wall


def _projector(
    frame: pd.DataFrame, prompt: Any, options: Options, kind: str, spec: OutputSpec | None
) -> Callable[[], CostEstimate]:
    def project() -> CostEstimate:
        whole = calls.prepare(frame, prompt, output=_SAMPLE_OUTPUT, options=options, kind=kind, output_spec=spec)
        return calls.estimate(whole, count=False)

    return project


def _calibrated(options: Options, job: Job) -> Options:
    return Options(options.params, dataclasses.replace(options.run, calibrate=job, max_cost=None), options.estimate)


def _uncapped(options: Options) -> Options:
    return Options(options.params, dataclasses.replace(options.run, max_cost=None), options.estimate)


def _is_simulated(job: Job) -> bool:
    from batchkit.display.progress import _simulated

    return _simulated(job)


def _score_variants(
    variants: list[Variant],
    rows: pd.DataFrame,
    truth: Any,
    task: str,
    spec: OutputSpec | None,
    reference: str,
    named: Mapping[str, Any],
) -> None:
    """Fill each variant's answers and per-row correctness (against truth, else the reference)."""
    for v in variants:
        out = v.job.to_frame(rows)
        if spec is None:
            v.answers = out[[_SAMPLE_OUTPUT]]
        else:
            v.answers = out[[c for c, _ in spec.columns]].rename(columns={c: f for c, f in spec.columns})
    ref = next(v for v in variants if v.model == reference and v.prompt_name == next(iter(named)))
    kinds = _field_kinds(spec) if task == "extract" and spec is not None else {}
    for v in variants:
        if task == "extract":
            fields = list(v.answers.columns)
            per_field: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for f in fields:
                if truth is not None:
                    column = truth.get(f) if isinstance(truth, Mapping) else (truth if len(fields) == 1 else None)
                    if column is None:
                        continue
                    expected = _truth_values(rows, column, task, kinds.get(f, ("text", ()))[0])
                else:
                    expected = _normal(ref.answers[f].to_numpy()).reset_index(drop=True)
                per_field[f] = _score(v.answers[f], expected)
            if not per_field:
                v.correct, v.scored = np.zeros(len(rows), bool), np.zeros(len(rows), bool)
                continue
            v.correct = np.logical_and.reduce([c for c, _ in per_field.values()])
            v.scored = np.logical_and.reduce([s for _, s in per_field.values()])
            v.field_scores = {f: float(c[s].mean()) if s.any() else math.nan for f, (c, s) in per_field.items()}
            continue
        if truth is not None:
            expected = _truth_values(rows, truth, task)
        else:
            expected = _normal(ref.answers.iloc[:, 0].astype("string").to_numpy()).reset_index(drop=True)
        v.correct, v.scored = _score(v.answers.iloc[:, 0].astype("string"), expected)
