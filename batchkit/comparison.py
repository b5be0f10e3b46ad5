"""The result of ``df.claude.compare``: variants, their quality and cost, the choice. Pure but
for reading the jobs' answers and usage from the store, and :meth:`Comparison.run`.

How a comparison is made — the sample, the runs, the scoring — is in :mod:`batchkit.compare`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import CalibrationError, InvalidOptionError, OptionTypeError
from .jobs import Job
from .pricing import MODES, CostEstimate, _usd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Comparison", "Variant", "wilson_interval"]

SAMPLE_ONLY = ("mode", "deadline")
"""Options of ``compare`` that are about how its sample is sent, not carried over to :meth:`Comparison.run`."""
Z95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95% interval."""


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
    projector: Callable[[], CostEstimate] | None = field(default=None, repr=False)
    """Prices the whole frame for this variant, calibrated on its sample (run once, when first asked)."""
    _projection: CostEstimate | None = field(default=None, init=False, repr=False)

    @property
    def projection(self) -> CostEstimate | None:
        """The whole frame's estimate for this variant, calibrated on its sample: rendering every
        row is the costly part, so it is done when first asked for and kept."""
        if self._projection is None and self.projector is not None:
            self._projection = self.projector()
        return self._projection

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
        projection = variant.projection
        return projection[mode].typical if projection is not None else math.nan

    def _best_mode(self, variant: Variant) -> str:
        projection = variant.projection
        if projection is None:
            return "batch"
        return min(("batch", "batch+5m", "batch+1h"), key=lambda m: projection[m].typical)

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
        sent. How the sample was sent (:data:`SAMPLE_ONLY`: ``mode``, ``deadline``) is not
        carried over — a sample wants answers in seconds, the whole frame the batch price — pass
        them here to choose. Returns what ``df.claude.batch``/``classify``/``extract`` returns.
        """
        return self.apply(self.frame, variant, **overrides)

    def apply(self, frame: pd.DataFrame, variant: str | Variant | None = None, **overrides: Any) -> pd.DataFrame:
        """Run ``variant`` (default: the recommended one) on ``frame``: any frame with the columns
        the prompt reads; rows whose requests the comparison already answered are not sent again."""
        v = self._variant(variant)
        output = overrides.pop("output", self._output)
        kept = {k: val for k, val in self._kwargs.items() if k not in SAMPLE_ONLY}
        kwargs = {**kept, **overrides, "model": v.model}
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



def _named_output(output: str | None) -> dict[str, str]:
    return {"output": output} if output is not None else {}


