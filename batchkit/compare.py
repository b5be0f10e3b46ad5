"""Which model (and prompt) is good enough, and what the whole frame will cost: ``df.claude.compare``.

:func:`compare` draws a seeded sample of the frame (stratified by the ``truth`` column when there
is one), runs it under every model × prompt variant — each variant is an ordinary job, submitted
through the same path as ``df.claude.submit`` with the call's keyword arguments passed through,
all submitted first and then waited for together — and returns a :class:`Comparison`:

* **quality** per variant: accuracy against ``truth`` with a Wilson 95% interval (a confusion
  matrix for labels, per-field accuracy for extraction) — or, without ``truth``, *agreement*
  with a reference variant (the most expensive model, i.e. presumably the strongest), always
  labelled as agreement, never as accuracy;
* **cost** per variant from the sample's real usage: dollars per row at the batch and the
  standard price, the whole frame projected in every mode (with and without prompt caching,
  calibrated on the sample's measured answer lengths — see :mod:`batchkit.calibration`),
  dollars per correct row, and wall seconds per row;
* a **recommendation**: the cheapest variant whose lower quality bound meets ``target``, or,
  without a target, the cheapest one on the cost–quality Pareto front whose quality cannot be
  told apart from the best (its interval reaches the best point estimate) — with the reason;
* ``to_frame()``, text and HTML reprs, ``plot(ax=None)`` (cost vs quality, front marked), and
  :meth:`Comparison.run` / :meth:`Comparison.apply`, which run the chosen variant on the whole
  frame. The sample's answers are reused, not paid twice: a request's key is the hash of its
  content, so the sample's rows are already answered in the store and only the rest are sent.

On the simulator the per-model differences are simulated (see ``batchkit.simulator``): a
comparison there shows how the tool works, never how Claude's models compare.
"""

from __future__ import annotations

import dataclasses
import html
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from . import calls
from .errors import (
    CalibrationError,
    InvalidOptionError,
    MissingColumnError,
    OptionTypeError,
    UnknownOptionError,
)
from .jobs import Job, warn_failures
from .options import Options
from .pricing import MODES, CostEstimate, _usd, load_prices, usage_cost_frame
from .structured import OutputSpec, classify_spec, extract_spec

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Comparison", "Variant", "compare", "wilson_interval"]

Task = Literal["batch", "classify", "extract"]
TASKS: tuple[str, ...] = ("batch", "classify", "extract")
Z95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95% interval."""
_SAMPLE_OUTPUT = "_compare_answer"
"""The sample jobs' output column (internal: the user's frame may hold a column named like theirs)."""
_SAMPLE_PREFIX = "_compare_"
_DEFAULT_MAX_TOKENS = {"classify": 256, "extract": 1024}


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); ``(nan, nan)`` when ``n == 0``.

    Better than the normal approximation near 0 and 1 and for small samples.

    >>> [round(x, 3) for x in wilson_interval(160, 200)]
    [0.739, 0.85]
    """
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


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


# --------------------------------------------------------------------------- the variants


@dataclass
class Variant:
    """One model × prompt combination, run on the sample.

    Attributes:
        name: ``"model · prompt name"``.
        model: the model id.
        prompt_name: the prompt's name (``"p1"`` for the call's own prompt, then ``"p2"``, … or
            the keys of a ``prompts=`` dict).
        prompt: the prompt template (or callable).
        job: the sample's job.
        seconds: wall seconds from submission until the job ended.
    """

    name: str
    model: str
    prompt_name: str
    prompt: Any
    job: Job
    seconds: float = math.nan
    answers: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The sample's answers: one column per output field, on the sample's index."""
    correct: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Per sample row: matches the truth (or the reference)."""
    scored: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Per sample row: counted in the quality figure (a truth or a reference answer to compare with)."""
    field_scores: dict[str, float] = field(default_factory=dict)
    usage_cost: tuple[float, float] = (0.0, 0.0)
    """Dollars of the sample's requests at (batch, standard) price, from their usage."""
    projection: CostEstimate | None = None

    @property
    def quality(self) -> float:
        n = int(self.scored.sum())
        return float(self.correct[self.scored].mean()) if n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(float(self.correct[self.scored].sum()), int(self.scored.sum()))


# --------------------------------------------------------------------------- the comparison


class Comparison:
    """Quality and cost of each model × prompt variant on a sample; see :mod:`batchkit.compare`.

    Build it with ``df.claude.compare(...)``. Display it, ``print`` it, ``.to_frame()`` it,
    ``.plot()`` it, read ``.recommended`` and ``.reason``, and run the choice on the whole frame
    with ``.run()`` (the sample's answers reused).
    """

    def __init__(
        self,
        *,
        frame: pd.DataFrame,
        positions: np.ndarray,
        task: str,
        variants: list[Variant],
        truth: Any,
        reference: Variant | None,
        target: float | None,
        call_kwargs: Mapping[str, Any],
        structure: Mapping[str, Any],
        output: str | None,
        simulated: bool,
    ) -> None:
        self.frame = frame
        """The whole frame the comparison is about."""
        self.positions = positions
        """Row positions of the sample in :attr:`frame`."""
        self.task = task
        self.variants = variants
        self.truth = truth
        """The truth column's name (or ``{field: column}`` for extraction); None: agreement."""
        self.reference = reference
        """The variant the others are compared with when there is no truth."""
        self.target = target
        self.simulated = simulated
        self._kwargs = dict(call_kwargs)
        self._structure = dict(structure)
        self._output = output
        self.front = self._pareto_front()
        self.recommended, self.reason = self._recommend()

    # ------------------------------------------------------------------ lookups

    @property
    def sample(self) -> pd.DataFrame:
        """The sample's rows of the frame."""
        return self.frame.iloc[self.positions]

    @property
    def quality_label(self) -> str:
        """``"accuracy"``, or ``"agreement with <reference>"`` when there is no truth."""
        if self.truth is not None:
            return "accuracy"
        return f"agreement with {self.reference.name}" if self.reference is not None else "agreement"

    def __getitem__(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"no variant {name!r}; the variants are {[v.name for v in self.variants]}")

    def job_for(self, *, model: str, prompt: Any) -> Job:
        """The sample job of the variant with this model and prompt (what ``calibrate=`` measures)."""
        same_prompt = [v for v in self.variants if v.prompt == prompt]
        for v in same_prompt:
            if v.model == model:
                return v.job
        if same_prompt:  # another model on the same prompt still measures the answer's form
            return same_prompt[0].job
        raise CalibrationError(
            f"this comparison ran no variant with the prompt {prompt!r:.80}; its prompts are "
            f"{sorted({str(v.prompt)[:60] for v in self.variants})}. Estimate one of them, or compare this prompt too."
        )

    # ------------------------------------------------------------------ costs

    def cost_per_row(self, variant: Variant, *, standard: bool = False) -> float:
        """Dollars per sample row from the sample's real usage (batch price unless ``standard``)."""
        return variant.usage_cost[1 if standard else 0] / max(1, len(self.positions))

    def cost_per_correct_row(self, variant: Variant) -> float:
        """Batch dollars per row answered correctly (or in agreement): cost per row / quality."""
        q = variant.quality
        return self.cost_per_row(variant) / q if q and not math.isnan(q) else math.inf

    def projected(self, variant: Variant, mode: str = "batch") -> float:
        """Typical dollars for the whole frame in ``mode`` (sample rows already paid: not counted)."""
        return variant.projection[mode].typical if variant.projection is not None else math.nan

    def _best_mode(self, variant: Variant) -> str:
        if variant.projection is None:
            return "batch"
        return min(("batch", "batch+5m", "batch+1h"), key=lambda m: variant.projection[m].typical)  # type: ignore[index]

    # ------------------------------------------------------------------ the choice

    def _pareto_front(self) -> list[Variant]:
        """Variants no other is both cheaper (batch $/row) and better than (at least as good in both)."""
        scored = [v for v in self.variants if not math.isnan(v.quality)]
        front = []
        for v in scored:
            c, q = self.cost_per_row(v), v.quality
            dominated = any(
                (self.cost_per_row(o) <= c and o.quality >= q) and (self.cost_per_row(o) < c or o.quality > q)
                for o in scored if o is not v
            )
            if not dominated:
                front.append(v)
        return sorted(front, key=self.cost_per_row)

    def _recommend(self) -> tuple[Variant | None, str]:
        label = self.quality_label
        candidates = [v for v in self.variants if not math.isnan(v.quality)]
        if self.truth is None and self.reference is not None:
            candidates = [v for v in candidates if v is not self.reference] + [self.reference]
        if not candidates:
            return None, "no variant has answers to score"
        if self.target is not None:
            good = [v for v in candidates if v.interval[0] >= self.target]
            if not good:
                best = max(candidates, key=lambda v: v.interval[0])
                return None, (
                    f"no variant's {label} is surely at least {self.target:.0%}: the best lower bound is "
                    f"{best.interval[0]:.1%} ({best.name}). Try a stronger model or prompt, a larger sample, "
                    f"or a lower target."
                )
            pick = min(good, key=self.cost_per_row)
            return pick, (
                f"the cheapest variant whose {label} is at least {self.target:.0%} with 95% confidence "
                f"(interval {pick.interval[0]:.1%}–{pick.interval[1]:.1%}; {_usd(self.cost_per_row(pick))} a row "
                f"at batch price)"
            )
        others = [v for v in self.front if v is not self.reference or self.truth is not None] or self.front
        best = max(others, key=lambda v: v.quality)
        pick = next(v for v in others if v.interval[1] >= best.quality)
        if pick is best:
            return pick, f"the best {label} ({best.quality:.1%}); no cheaper variant comes close enough to it"
        return pick, (
            f"the cheapest variant on the cost–quality front whose {label} cannot be told apart from the best "
            f"({pick.quality:.1%}, interval up to {pick.interval[1]:.1%}, vs {best.quality:.1%} for {best.name}) "
            f"at {self.cost_per_row(pick) / self.cost_per_row(best):.0%} of its cost; pass target= to require a "
            f"minimum {label}"
        )

    # ------------------------------------------------------------------ tables

    def to_frame(self) -> pd.DataFrame:
        """One row per variant: quality with its interval, costs, projections, time, front and choice."""
        rows = []
        for v in self.variants:
            lo, hi = v.interval
            row: dict[str, Any] = {
                "variant": v.name, "model": v.model, "prompt": v.prompt_name,
                "quality": v.quality, "quality_low": lo, "quality_high": hi,
                "scored_rows": int(v.scored.sum()),
                "cost_per_row_batch": self.cost_per_row(v),
                "cost_per_row_standard": self.cost_per_row(v, standard=True),
                "cost_per_correct_row": self.cost_per_correct_row(v),
                "sample_cost_batch": v.usage_cost[0],
            }
            for mode in MODES:
                row[f"projected_{mode}"] = self.projected(v, mode)
            row.update({
                "seconds_per_row": v.seconds / max(1, len(self.positions)),
                "on_front": v in self.front, "recommended": v is self.recommended,
                "reference": v is self.reference and self.truth is None,
            })
            for name, score in v.field_scores.items():
                row[f"quality_{name}"] = score
            rows.append(row)
        out = pd.DataFrame(rows).set_index("variant")
        out.attrs["quality"] = self.quality_label
        return out

    def confusion(self, variant: str | Variant | None = None) -> pd.DataFrame:
        """Truth (or the reference's answer) down, the variant's answer across; counts of sample rows.

        For ``classify`` and ``batch`` runs; ``variant`` defaults to the recommended one.
        """
        v = self._variant(variant)
        if self.task == "extract":
            raise InvalidOptionError("an extraction has no confusion matrix; to_frame() has per-field quality "
                                     "(columns quality_<field>)", option="variant")
        expected = self._expected(v)
        got = v.answers.iloc[:, 0].astype("string").fillna("(no answer)")
        table = pd.crosstab(pd.Series(expected.to_numpy(), name="truth" if self.truth is not None else "reference"),
                            pd.Series(got.to_numpy(), name=v.name))
        return table

    def _variant(self, variant: str | Variant | None) -> Variant:
        if isinstance(variant, Variant):
            return variant
        if variant is None:
            if self.recommended is None:
                raise InvalidOptionError(
                    f"there is no recommended variant ({self.reason}); name one: "
                    f"{[v.name for v in self.variants]}", option="variant")
            return self.recommended
        if isinstance(variant, str):
            try:
                return self[variant]
            except KeyError:
                raise InvalidOptionError(
                    f"no variant {variant!r}; the variants are {[v.name for v in self.variants]}",
                    option="variant") from None
        raise OptionTypeError(f"variant must be a variant's name such as {self.variants[0].name!r}, "
                              f"not {type(variant).__name__}", option="variant")

    def _expected(self, v: Variant) -> pd.Series:
        if self.truth is not None:
            return _truth_values(self.sample, self.truth if isinstance(self.truth, str) else "", self.task)
        assert self.reference is not None
        return self.reference.answers.iloc[:, 0].astype("string").fillna("(no answer)")

    # ------------------------------------------------------------------ running the choice

    def run(self, variant: str | Variant | None = None, **overrides: Any) -> pd.DataFrame:
        """Run ``variant`` (default: the recommended one) on the whole frame; returns its result.

        The same call as the sample's (the comparison's keyword arguments, ``overrides`` on top),
        so the sample's requests are already answered in the store and only the other rows are
        sent. Returns what ``df.claude.batch``/``classify``/``extract`` returns.
        """
        return self.apply(self.frame, variant, **overrides)

    def apply(self, frame: pd.DataFrame, variant: str | Variant | None = None, **overrides: Any) -> pd.DataFrame:
        """Run ``variant`` (default: the recommended one) on ``frame``: any frame with the columns
        the prompt reads; rows whose requests the comparison already answered are not sent again."""
        v = self._variant(variant)
        output = overrides.pop("output", self._output)
        kwargs = {**self._kwargs, **overrides, "model": v.model}
        if self.task == "classify":
            return frame.claude.classify(v.prompt, self._structure["labels"], **_named_output(output), **kwargs)
        if self.task == "extract":
            return frame.claude.extract(v.prompt, self._structure["schema"], **self._structure["extract"], **kwargs)
        return frame.claude.batch(v.prompt, **_named_output(output), **kwargs)

    # ------------------------------------------------------------------ display

    def _rows(self) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for v in self.variants:
            lo, hi = v.interval
            quality = "—" if math.isnan(v.quality) else f"{v.quality:.1%} ({lo:.0%}–{hi:.0%})"
            if v is self.reference and self.truth is None:
                quality = "reference"
            mark = ("✓ " if v is self.recommended else "") + ("★" if v in self.front else "")
            best = self._best_mode(v)
            projected = self.projected(v, best)
            out.append((
                mark.strip(), v.name, quality, _usd(self.cost_per_row(v)), _usd(self.cost_per_row(v, standard=True)),
                "—" if math.isinf(self.cost_per_correct_row(v)) else _usd(self.cost_per_correct_row(v)),
                "—" if math.isnan(projected) else f"{_usd(projected)} ({best})",
                f"{v.seconds / max(1, len(self.positions)):.3f}s",
            ))
        return out

    _HEADER = ("", "variant", "quality", "$/row batch", "$/row standard", "$/correct row", "whole frame",
               "time/row")

    def _summary(self) -> list[str]:
        n, total = len(self.positions), len(self.frame)
        basis = (f"accuracy against {self.truth!r}" if self.truth is not None else
                 f"AGREEMENT with {self.reference.name if self.reference else 'the reference'} "
                 f"(no truth given: this is not accuracy)")
        lines = [f"{self.task} on a sample of {n:,} of {total:,} rows; quality = {basis}, 95% Wilson intervals",
                 f"recommended: {self.recommended.name if self.recommended else 'none'} — {self.reason}"]
        if self.simulated:
            lines.append("answers from batchkit's simulator: per-model differences are simulated, not Claude's")
        return lines

    def __str__(self) -> str:
        rows = [self._HEADER, *self._rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self._HEADER))]
        table = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                 for r in rows]
        legend = ("★ on the cost–quality front   ✓ recommended   "
                  "whole frame: typical, cheapest batch mode, sample reused")
        return "\n".join(["Comparison", *self._summary(), "", *table, "", legend])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        esc = html.escape
        cell = 'style="padding:2px 8px;text-align:{}"'
        head = "".join(f"<th {cell.format('left' if i < 2 else 'right')}>{esc(h)}</th>"
                       for i, h in enumerate(self._HEADER))
        body = "".join(
            ("<tr style=\"font-weight:bold\">" if r[0].startswith("✓") else "<tr>")
            + "".join(f"<td {cell.format('left' if i < 2 else 'right')}>{esc(c)}</td>" for i, c in enumerate(r))
            + "</tr>" for r in self._rows()
        )
        summary = "<br>".join(esc(line) for line in self._summary())
        return (
            f'<div class="batchkit-comparison"><b>Comparison</b><div style="font-size:90%">{summary}</div>'
            f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            '<div style="font-size:80%;color:#666">★ on the cost–quality front · ✓ recommended · whole frame: '
            "typical cost in the cheapest batch mode, the sample's answers reused</div></div>"
        )

    def plot(self, ax: Axes | None = None) -> Axes:
        """Batch dollars per row against quality (with 95% intervals); the front drawn, the choice ringed."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6.5, 4))
        for v in self.variants:
            if math.isnan(v.quality):
                continue
            lo, hi = v.interval
            x = self.cost_per_row(v)
            ax.errorbar([x], [v.quality], yerr=[[v.quality - lo], [hi - v.quality]], fmt="o",
                        color="#1f77b4" if v in self.front else "#999999", capsize=3)
            ax.annotate(v.name, (x, v.quality), textcoords="offset points", xytext=(5, 4), fontsize=8)
        if self.front:
            ax.plot([self.cost_per_row(v) for v in self.front], [v.quality for v in self.front], "-",
                    color="#1f77b4", linewidth=1, label="cost–quality front")
        if self.recommended is not None:
            ax.plot([self.cost_per_row(self.recommended)], [self.recommended.quality], "o", markersize=14,
                    markerfacecolor="none", markeredgecolor="#2ca02c", markeredgewidth=2, label="recommended")
        if self.target is not None:
            ax.axhline(self.target, color="#d62728", linestyle=":", linewidth=1, label=f"target {self.target:.0%}")
        ax.set_xlabel("$ per row (batch price, measured on the sample)")
        ax.set_ylabel(self.quality_label)
        ax.set_title("Cost vs quality" + (" (simulated answers)" if self.simulated else ""))
        ax.legend(loc="lower right", fontsize=8)
        return ax


# --------------------------------------------------------------------------- building one


def _named_output(output: str | None) -> dict[str, str]:
    return {"output": output} if output is not None else {}


def _check_models(models: Any) -> list[str]:
    if isinstance(models, str):
        models = [models]
    if not isinstance(models, Sequence) or not models:
        raise OptionTypeError(
            f"models must be a list of model ids such as ['claude-haiku-4-5', 'claude-sonnet-4-6'], not {models!r:.80}",
            option="models")
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
            option="prompts")
    for name, p in items:
        if not (isinstance(p, str) or callable(p)):
            raise OptionTypeError(f"prompts[{name!r}] must be a template string or a callable row -> str, "
                                  f"not {type(p).__name__}", option="prompts")
        if name in named or p in named.values():
            raise InvalidOptionError(f"prompts repeats a prompt or a name ({name!r}); give each variant once",
                                     option="prompts")
        named[name] = p
    return named


def _check_sample(sample: Any, n: int) -> int:
    if isinstance(sample, (bool, np.bool_)) or not isinstance(sample, (int, float, np.integer, np.floating)):
        raise OptionTypeError(f"sample must be a number of rows such as 200 (or a fraction such as 0.1), "
                              f"not {sample!r:.60}", option="sample")
    if isinstance(sample, (float, np.floating)) and not float(sample).is_integer():
        if not 0 < sample <= 1:
            raise InvalidOptionError(f"sample={sample!r}: a fraction must be within (0, 1]; or give a number of rows",
                                     option="sample")
        return max(1, round(sample * n))
    if sample < 1:
        raise InvalidOptionError(f"sample must be at least 1 row, not {sample!r}", option="sample")
    return min(int(sample), n)


def _check_target(target: Any) -> float | None:
    if target is None:
        return None
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, (int, float, np.integer, np.floating)):
        raise OptionTypeError(f"target must be the quality you need as a fraction such as 0.8, not {target!r:.60}",
                              option="target")
    if not 0 < target <= 1:
        raise InvalidOptionError(f"target must be a fraction within (0, 1] such as 0.8 (80% accuracy), not {target!r}",
                                 option="target")
    return float(target)


def _check_truth(frame: pd.DataFrame, truth: Any, task: str) -> Any:
    if truth is None:
        return None
    columns = [str(c) for c in frame.columns]
    names = list(truth.values()) if isinstance(truth, Mapping) else [truth]
    if isinstance(truth, Mapping) and task != "extract":
        raise OptionTypeError("truth= as {field: column} is for extraction; name one column: truth='label'",
                              option="truth")
    for name in names:
        if not isinstance(name, str):
            raise OptionTypeError(f"truth must name a column of the frame (a string), not {name!r:.60}", option="truth")
        if name not in frame.columns:
            raise MissingColumnError(f"truth={name!r} is not a column of the frame; its columns are {columns}",
                                     column=name, available=columns)
    return truth


def _normal(values: Any) -> pd.Series:
    """Answers and truths in one form for comparing: strings, stripped, case-folded, no end dot."""
    s = pd.Series(values, dtype=object).map(lambda v: v if v is None or (isinstance(v, float) and math.isnan(v))
                                            else str(v).strip().casefold().rstrip("."))
    return s.astype("string")


def _truth_values(sample: pd.DataFrame, column: str, task: str) -> pd.Series:
    return _normal(sample[column].to_numpy()).reset_index(drop=True)


def _score(answers: pd.Series, expected: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(correct, scored) per row: scored where there is something to compare with."""
    a, e = _normal(answers.to_numpy()).reset_index(drop=True), expected.reset_index(drop=True)
    scored = e.notna().to_numpy()
    correct = (a == e).fillna(False).to_numpy(dtype=bool) & scored
    return correct, scored


def _sample_usage_cost(job: Job, model: str, prices: Any) -> tuple[float, float]:
    """Dollars of the sample's distinct requests at (batch, standard) price, from their usage."""
    outcomes = job.outcomes()
    billed = outcomes[outcomes["status"].isin(("succeeded", "truncated", "invalid_output"))]
    billed = billed.drop_duplicates("request_key")
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
    prompts: Sequence[Any] | Mapping[str, Any] | None = None,
    sample: float = 200,
    truth: str | Mapping[str, str] | None = None,
    task: str = "batch",
    labels: Sequence[str] | None = None,
    schema: Any = None,
    target: float | None = None,
    reference: str | None = None,
    seed: int = 0,
    output: str | None = None,
    **kwargs: Any,
) -> Comparison:
    """Run a sample of ``frame`` under every model × prompt and compare quality and cost.

    See :meth:`batchkit.accessor.ClaudeFrameAccessor.compare` for the arguments. Every check
    runs before anything is sent.
    """
    if not isinstance(frame, pd.DataFrame):
        raise OptionTypeError(f"compare needs a DataFrame, not {type(frame).__name__}", option="frame")
    if task not in TASKS:
        raise InvalidOptionError(f"task must be one of {', '.join(map(repr, TASKS))}, not {task!r}", option="task")
    if task == "batch" and (labels is not None or schema is not None):
        raise InvalidOptionError(
            "labels= and schema= are for task='classify' and task='extract'; pass the task too", option="task")
    if task == "classify" and labels is None:
        raise InvalidOptionError("task='classify' needs labels=[...]", option="labels")
    if task == "extract" and schema is None:
        raise InvalidOptionError("task='extract' needs schema= (a pydantic model or {name: type})", option="schema")
    if "model" in kwargs:
        raise UnknownOptionError("compare takes models=[...] (a list), not model=", option="model",
                                 suggestion="models")
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
        unknown = set(frame[truth].dropna().astype(str)) - {str(label) for label in labels or ()}
        if unknown:
            raise InvalidOptionError(
                f"the truth column {truth!r} holds values that are not labels: {sorted(unknown)[:5]}; "
                f"labels are {list(labels or ())}. Map them first, e.g. df.assign(gold=df[{truth!r}].map({{...}}))",
                option="truth")

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
    call_kwargs = dict(kwargs)
    if task in _DEFAULT_MAX_TOKENS:
        call_kwargs.setdefault("max_tokens", _DEFAULT_MAX_TOKENS[task])
    options = {}
    for m in model_ids:
        built = Options.build({**call_kwargs, "model": m}, verb="submit")
        if spec is not None:
            built = Options(built.params.with_output_format(spec.output_config, verb=task), built.run, built.estimate)
        options[m] = built
    if reference is None:
        table = load_prices(options[model_ids[0]].run.prices)
        reference = max(model_ids, key=lambda m: (table.get(m).output, table.get(m).input) if m in table else (0, 0))

    strata = frame[truth].to_numpy() if isinstance(truth, str) else None
    positions = sample_positions(len(frame), size, strata=strata, seed=int(seed))
    rows = frame.iloc[positions]
    kind = spec.kind if spec is not None else "text"
    prepared = [
        (m, name, p, calls.prepare(rows, p, output=_SAMPLE_OUTPUT, options=options[m], kind=kind, output_spec=spec))
        for name, p in named.items() for m in model_ids
    ]
    # Submit every variant, then wait for them together: N variants take about as long as one.
    started = time.monotonic()
    variants = [Variant(f"{m} · {name}", m, name, p, calls.submit(call)) for m, name, p, call in prepared]
    _wait_all(variants, started)

    _score_variants(variants, rows, truth, task, spec, reference, named)
    for v, (m, _, p, _call) in zip(variants, prepared, strict=True):
        v.usage_cost = _sample_usage_cost(v.job, m, options[m].run.prices)
        whole = calls.prepare(frame, p, output=_SAMPLE_OUTPUT, options=_calibrated(options[m], v.job),
                              kind=kind, output_spec=spec)
        v.projection = calls.estimate(whole, count=False)
    ref = next((v for v in variants if v.model == reference and v.prompt_name == "p1"), None) if truth is None else None
    return Comparison(
        frame=frame, positions=positions, task=task, variants=variants, truth=truth, reference=ref,
        target=target, call_kwargs=call_kwargs, structure=structure, output=output,
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
        v.seconds = time.monotonic() - started

    threads = [threading.Thread(target=wait, args=(v,), daemon=True, name=f"batchkit-compare-{i}")
               for i, v in enumerate(variants)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for v in variants:
        warn_failures(v.job)


def _calibrated(options: Options, job: Job) -> Options:
    return Options(options.params, dataclasses.replace(options.run, calibrate=job, max_cost=None), options.estimate)


def _is_simulated(job: Job) -> bool:
    from .progress import _simulated

    return _simulated(job)


def _score_variants(
    variants: list[Variant], rows: pd.DataFrame, truth: Any, task: str, spec: OutputSpec | None,
    reference: str, named: Mapping[str, Any],
) -> None:
    """Fill each variant's answers and per-row correctness (against truth, else the reference)."""
    for v in variants:
        out = v.job.to_frame(rows)
        if spec is None:
            v.answers = out[[_SAMPLE_OUTPUT]]
        else:
            v.answers = out[[c for c, _ in spec.columns]].rename(columns={c: f for c, f in spec.columns})
    ref = next(v for v in variants if v.model == reference and v.prompt_name == next(iter(named)))
    for v in variants:
        if task == "extract":
            fields = list(v.answers.columns)
            per_field: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for f in fields:
                if truth is not None:
                    column = truth.get(f) if isinstance(truth, Mapping) else (truth if len(fields) == 1 else None)
                    if column is None:
                        continue
                    expected = _truth_values(rows, column, task)
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
