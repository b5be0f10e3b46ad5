"""The result of ``df.claude.compare``: variants, their quality and cost, the choice. Pure but
for reading the jobs' answers and usage from the store, and :meth:`Comparison.run`.

How a comparison is made — the sample and the runs — is in :mod:`batchkit.compare.runner`; how an
answer is scored, in :mod:`batchkit.compare.scoring`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from batchkit.core.states import PriceMode, RowStatus
from batchkit.costs.estimate import MODES, CostEstimate
from batchkit.costs.usage import usd
from batchkit.engine.cascade import escalation
from batchkit.engine.jobs import Job
from batchkit.errors import CalibrationError, InvalidOptionError, OptionTypeError

from .scoring import truth_values, wilson_interval

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Comparison", "Variant", "wilson_interval"]

SAMPLE_ONLY = ("mode", "deadline")
"""Options of ``compare`` that are about how its sample is sent, not carried over to :meth:`Comparison.run`."""
TOLERANCE = 1e-9
"""How far apart two qualities may be and still count as equal (they are floats)."""


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
        seconds: the sample job's own time, first request sent to last answer, as the store
            recorded it (the same when the comparison is answered from the store later); NaN
            for a job that sent nothing (shown as "— (stored)").
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
    outcome_counts: dict[str, int] = field(default_factory=dict)
    """Sample rows per outcome status (``succeeded``, ``errored``, ``skipped``, …)."""
    usage_cost: tuple[float, float] = (0.0, 0.0)
    """Dollars of the sample's requests at (batch, standard) price, from their usage."""
    projector: Callable[[], CostEstimate] | None = field(default=None, repr=False)
    """Prices the whole frame for this variant, calibrated on its sample (run once, when first asked)."""
    confidence: np.ndarray | None = field(default=None, repr=False)
    """Per sample row, the model's confidence in its answer (0 to 1; NaN where none), when the
    comparison asked for one (``cascade=True``); else None."""
    paid: tuple[float, float] | None = None
    """What the sample paid, when it asked for the confidence (``cascade=True``): then
    :attr:`usage_cost` is what the same rows cost the model run alone, without it."""
    staged_projector: Callable[[], CostEstimate] | None = field(default=None, repr=False)
    """Prices the whole frame with the confidence field, as a cascade's first stage sends it."""
    _projection: CostEstimate | None = field(default=None, init=False, repr=False)
    _staged: CostEstimate | None = field(default=None, init=False, repr=False)

    @property
    def projection(self) -> CostEstimate | None:
        """The whole frame's estimate for this variant, calibrated on its sample: rendering every
        row is the costly part, so it is done when first asked for and kept."""
        if self._projection is None and self.projector is not None:
            self._projection = self.projector()
        return self._projection

    def row_statuses(self) -> np.ndarray:
        """Per sample row, its outcome status in the sample's job (``succeeded``, ``errored``, ``skipped``, …)."""
        statuses: np.ndarray = np.asarray(self.job.statuses(), dtype=object)
        return statuses

    @property
    def staged_projection(self) -> CostEstimate | None:
        """The whole frame's estimate with the confidence field (a cascade's first stage); the plain
        :attr:`projection` when the sample asked for none."""
        if self.staged_projector is None:
            return self.projection
        if self._staged is None:
            self._staged = self.staged_projector()
        return self._staged

    def __repr__(self) -> str:
        # One line: the arrays and the answers frame are for code (.correct, .answers), not for reading.
        lo, hi = self.interval
        quality = "no score" if math.isnan(self.quality) else f"quality {self.quality:.1%} ({lo:.0%}–{hi:.0%})"
        return (
            f"<Variant {self.name}: {quality} on {int(self.scored.sum()):,} scored of {len(self.answers):,} "
            f"sample rows; sample cost ${self.usage_cost[0]:,.4f} at batch prices; job {self.job.job_id}>"
        )

    def extras(self) -> dict[str, Any]:
        """Columns of :meth:`Comparison.to_frame` only some variants have (a cascade's threshold)."""
        return {}

    def run_kwargs(self) -> dict[str, Any]:
        """What :meth:`Comparison.apply` passes to run this variant: its model (a cascade: its models
        and threshold)."""
        return {"model": self.model}

    @property
    def answered(self) -> int:
        """Sample rows with an answer (in any field)."""
        if not len(self.answers.columns):
            return 0
        return int((~pd.isna(self.answers.to_numpy(dtype=object))).any(axis=1).sum())

    @property
    def missing(self) -> str:
        """Why sample rows have no answer, e.g. ``"8 errored, 2 skipped"`` (from :attr:`outcome_counts`)."""
        counts = {k: n for k, n in self.outcome_counts.items() if k != RowStatus.SUCCEEDED and n}
        if not counts:
            return f"{len(self.answers) - self.answered} rows without an answer"
        return ", ".join(f"{n:,} {status}" for status, n in sorted(counts.items(), key=lambda kv: -kv[1]))

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
        self._answerless = {id(v) for v in variants if not v.answered}
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

    def projected(self, variant: Variant, mode: str = PriceMode.BATCH) -> float:
        """Typical dollars for the whole frame in ``mode`` (sample rows already paid: not counted)."""
        projection = variant.projection
        return projection[mode].typical if projection is not None else math.nan

    def _best_mode(self, variant: Variant) -> str:
        projection = variant.projection
        if projection is None:
            return PriceMode.BATCH
        return min((PriceMode.BATCH, PriceMode.BATCH_5M, PriceMode.BATCH_1H), key=lambda m: projection[m].typical)

    # ------------------------------------------------------------------ the choice

    def scorable(self) -> list[Variant]:
        """Variants with answers and a quality: the ones a choice can be made among."""
        return [v for v in self.variants if id(v) not in self._answerless and not math.isnan(v.quality)]

    def _silent(self) -> str:
        """The variants without a single answer, and why: ``""`` when every variant answered."""
        return "; ".join(f"{v.name} has no answers ({v.missing})" for v in self.variants if id(v) in self._answerless)

    def _pareto_front(self) -> list[Variant]:
        """Variants no other is both cheaper (batch $/row) and better than (at least as good in both)."""
        scored = self.scorable()
        front = []
        for v in scored:
            c, q = self.cost_per_row(v), v.quality
            dominated = any(
                (self.cost_per_row(o) <= c and o.quality >= q) and (self.cost_per_row(o) < c or o.quality > q)
                for o in scored
                if o is not v
            )
            if not dominated:
                front.append(v)
        return sorted(front, key=self.cost_per_row)

    def _recommend(self) -> tuple[Variant | None, str]:
        label = self.quality_label
        silent = self._silent()
        see = f" ({silent}: each variant's job.outcomes() says why)" if silent else ""
        ref = self.reference if self.truth is None else None
        if ref is not None and id(ref) in self._answerless:
            return None, (
                f"the reference {ref.name} has no answers ({ref.missing}), so there is nothing to agree with; "
                f"pass reference= another of the models, or truth= a column holding the right answers"
            )
        candidates = self.scorable()
        if ref is not None:  # the reference last: among equals, another variant is the choice
            candidates = [v for v in candidates if v is not ref] + [ref]
        if not candidates:
            return None, "no variant has answers to score" + see
        if self.target is not None:
            good = [v for v in candidates if v.interval[0] + TOLERANCE >= self.target]
            if not good:
                best = max(candidates, key=lambda v: v.interval[0])
                return None, (
                    f"no variant's {label} is surely at least {self.target:.0%}: the best lower bound is "
                    f"{best.interval[0]:.1%} ({best.name}). Try a stronger model or prompt, a larger sample, "
                    f"or a lower target{see}."
                )
            pick = min(good, key=self.cost_per_row)
            return pick, (
                f"the cheapest variant whose {label} is at least {self.target:.0%} with 95% confidence "
                f"(interval {pick.interval[0]:.1%}–{pick.interval[1]:.1%}; {usd(self.cost_per_row(pick))} a row "
                f"at batch price)"
            )
        front = self.front or candidates  # the front is drawn among the candidates
        others = [v for v in front if v is not ref] or front
        best = max(others, key=lambda v: v.quality)
        # "Cannot be told apart from the best": its interval reaches the best's quality. The bounds are
        # floats, so this is no equality test, and the best itself always qualifies: there is a pick.
        pick = next((v for v in others if v is best or v.interval[1] + TOLERANCE >= best.quality), best)
        if pick is best:
            return pick, f"the best {label} ({best.quality:.1%}); no cheaper variant comes close enough to it"
        share = self.cost_per_row(pick) / self.cost_per_row(best) if self.cost_per_row(best) > 0 else math.nan
        return pick, (
            f"the cheapest variant on the cost–quality front whose {label} cannot be told apart from the best "
            f"({pick.quality:.1%}, interval up to {pick.interval[1]:.1%}, vs {best.quality:.1%} for {best.name})"
            + ("" if math.isnan(share) else f" at {share:.0%} of its cost")
            + f"; pass target= to require a minimum {label}"
        )

    # ------------------------------------------------------------------ tables

    def to_frame(self) -> pd.DataFrame:
        """One row per variant: quality with its interval, costs, projections, time, front and choice."""
        rows = []
        for v in self.variants:
            lo, hi = v.interval
            row: dict[str, Any] = {
                "variant": v.name,
                "model": v.model,
                "prompt": v.prompt_name,
                "quality": v.quality,
                "quality_low": lo,
                "quality_high": hi,
                "scored_rows": int(v.scored.sum()),
                "answered_rows": v.answered,
                "cost_per_row_batch": self.cost_per_row(v),
                "cost_per_row_standard": self.cost_per_row(v, standard=True),
                "cost_per_correct_row": self.cost_per_correct_row(v),
                "sample_cost_batch": v.usage_cost[0],
            }
            for mode in MODES:
                row[f"projected_{mode}"] = self.projected(v, mode)
            row.update(
                {
                    "seconds_per_row": v.seconds / max(1, len(self.positions)),
                    "on_front": v in self.front,
                    "recommended": v is self.recommended,
                    "reference": v is self.reference and self.truth is None,
                }
            )
            for name, score in v.field_scores.items():
                row[f"quality_{name}"] = score
            row.update(v.extras())
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
            raise InvalidOptionError(
                "an extraction has no confusion matrix; to_frame() has per-field quality (columns quality_<field>)",
                option="variant",
            )
        expected = self._expected(v)
        got = v.answers.iloc[:, 0].astype("string").fillna("(no answer)")
        table = pd.crosstab(
            pd.Series(expected.to_numpy(), name="truth" if self.truth is not None else "reference"),
            pd.Series(got.to_numpy(), name=v.name),
        )
        return table

    def _variant(self, variant: str | Variant | None) -> Variant:
        if isinstance(variant, Variant):
            return variant
        if variant is None:
            if self.recommended is None:
                raise InvalidOptionError(
                    f"there is no recommended variant ({self.reason}); name one: {[v.name for v in self.variants]}",
                    option="variant",
                )
            return self.recommended
        if isinstance(variant, str):
            try:
                return self[variant]
            except KeyError:
                raise InvalidOptionError(
                    f"no variant {variant!r}; the variants are {[v.name for v in self.variants]}", option="variant"
                ) from None
        raise OptionTypeError(
            f"variant must be a variant's name such as {self.variants[0].name!r}, not {type(variant).__name__}",
            option="variant",
        )

    def _expected(self, v: Variant) -> pd.Series:
        if self.truth is not None:
            return truth_values(self.sample, self.truth if isinstance(self.truth, str) else "", self.task)
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
        kwargs = {**kept, **overrides, **v.run_kwargs()}
        if "cascade" in kwargs:  # its escalation share measured here prices every stage
            kwargs.setdefault("calibrate", self)
        if self.task == "classify":
            return frame.claude.classify(v.prompt, self._structure["labels"], **_named_output(output), **kwargs)
        if self.task == "extract":
            return frame.claude.extract(v.prompt, self._structure["schema"], **self._structure["extract"], **kwargs)
        return frame.claude.batch(v.prompt, **_named_output(output), **kwargs)

    def escalation_shares(
        self, models: Sequence[str], thresholds: Sequence[float], prompt: Any
    ) -> list[tuple[float, float, float]] | None:
        """Per escalation of a cascade of ``models`` at ``thresholds``, the (low, typical, high) share
        of rows sent on, measured on the sample (a Wilson 95% interval) from the models' confidences;
        None when this comparison asked none of them for one (``cascade=True``) with ``prompt``."""
        mine = {v.model: v for v in self.variants if v.prompt == prompt}
        if any(m not in mine or mine[m].confidence is None for m in models[:-1]):
            return None
        reaching = mine[models[0]].row_statuses() != RowStatus.SKIPPED
        out = []
        for m, t in zip(models[:-1], thresholds, strict=False):
            conf = mine[m].confidence
            assert conf is not None
            sent_on = reaching & escalation(mine[m].row_statuses(), conf, t)[1]  # the rule the run applies
            n, k = int(reaching.sum()), int(sent_on.sum())
            lo, hi = wilson_interval(k, n)
            out.append((lo, k / n, hi) if n else (0.0, 0.0, 0.0))
            reaching = sent_on
        return out

    # ------------------------------------------------------------------ display

    def _rows(self) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for v in self.variants:
            lo, hi = v.interval
            quality = "—" if math.isnan(v.quality) else f"{v.quality:.1%} ({lo:.0%}–{hi:.0%})"
            if v is self.reference and self.truth is None:
                quality = "reference"
            if id(v) in self._answerless:
                quality = "no answers"
            mark = ("✓ " if v is self.recommended else "") + ("★" if v in self.front else "")
            best = self._best_mode(v)
            projected = self.projected(v, best)
            out.append(
                (
                    mark.strip(),
                    v.name,
                    quality,
                    usd(self.cost_per_row(v)),
                    usd(self.cost_per_row(v, standard=True)),
                    "—" if math.isinf(self.cost_per_correct_row(v)) else usd(self.cost_per_correct_row(v)),
                    "—" if math.isnan(projected) else f"{usd(projected)} ({best})",
                    "— (stored)" if math.isnan(v.seconds) else f"{v.seconds / max(1, len(self.positions)):.3f}s",
                )
            )
        return out

    _HEADER = ("", "variant", "quality", "$/row batch", "$/row standard", "$/correct row", "whole frame", "time/row")

    def _summary(self) -> list[str]:
        n, total = len(self.positions), len(self.frame)
        basis = (
            f"accuracy against {self.truth!r}"
            if self.truth is not None
            else f"AGREEMENT with {self.reference.name if self.reference else 'the reference'} "
            f"(no truth given: this is not accuracy)"
        )
        lines = [
            f"{self.task} on a sample of {n:,} of {total:,} rows; quality = {basis}, 95% Wilson intervals",
            f"recommended: {self.recommended.name if self.recommended else 'none'} — {self.reason}",
        ]
        for v in self.variants:
            if id(v) in self._answerless:
                lines.append(
                    f"no answers from {v.name} ({v.missing}): its rows count as wrong; "
                    f"cmp[{v.name!r}].job.outcomes() has each row's status and error"
                )
        lines += self._cascade_notes()
        if self.simulated:
            lines.append("answers from batchkit's simulator: per-model differences are simulated, not Claude's")
        return lines

    def _cascade_notes(self) -> list[str]:
        """With ``cascade=True``: how the single models are priced, and which sample rows a run re-pays."""
        asked = [v for v in self.variants if v.paid is not None]
        if not asked:
            return []
        extra = sum(v.paid[0] - v.usage_cost[0] for v in asked if v.paid is not None)
        plain = sorted({v.model for v in self.variants if v.paid is None and "model" in v.run_kwargs()})
        names = ", ".join(dict.fromkeys(v.model for v in asked))
        ending = {v.run_kwargs().get("cascade", [""])[-1] for v in self.variants} - {"", *plain}
        again = f" (and a cascade ending with {', '.join(sorted(ending))} pays its escalated sample rows again)" * bool(
            ending
        )
        return [
            f"cascade=True: {names} also gave their confidence ({usd(extra)} of the sample's cost, at batch price); "
            f"{', '.join(plain)} did not, as a cascade's last stage sends none. Every single model is priced as run "
            f"alone, without it; each cascade as it runs.",
            f"run() of {names} alone sends the plain requests, not the sample's, so the {len(self.positions):,} sample "
            f"rows are paid again{again}; {', '.join(plain)} alone and the cascades ending with it reuse the sample's "
            f"answers.",
        ]

    def __str__(self) -> str:
        rows = [self._HEADER, *self._rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self._HEADER))]
        table = [
            "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows
        ]
        legend = (
            "★ on the cost–quality front   ✓ recommended   whole frame: typical, cheapest batch mode, sample reused"
        )
        return "\n".join(["Comparison", *self._summary(), "", *table, "", legend])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        esc = html.escape
        cell = 'style="padding:2px 8px;text-align:{}"'
        head = "".join(
            f"<th {cell.format('left' if i < 2 else 'right')}>{esc(h)}</th>" for i, h in enumerate(self._HEADER)
        )
        body = "".join(
            ('<tr style="font-weight:bold">' if r[0].startswith("✓") else "<tr>")
            + "".join(f"<td {cell.format('left' if i < 2 else 'right')}>{esc(c)}</td>" for i, c in enumerate(r))
            + "</tr>"
            for r in self._rows()
        )
        summary = "<br>".join(esc(line) for line in self._summary())
        return (
            f'<div class="batchkit-comparison"><b>Comparison</b><div style="font-size:90%">{summary}</div>'
            f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            '<div style="font-size:80%;color:#666">★ on the cost–quality front · ✓ recommended · whole frame: '
            "typical cost in the cheapest batch mode, the sample's answers reused</div></div>"
        )

    def plot(self, ax: Axes | None = None) -> Axes:
        """Batch dollars per row against quality (with 95% intervals); the front drawn, the choice ringed
        (:func:`batchkit.display.plots.plot_comparison`)."""
        from batchkit.display.plots import plot_comparison

        return plot_comparison(self, ax=ax)

    def explore(self, **settings: Any) -> Any:
        """An interactive explorer of the variants at other settings (rows, mode, caching, hit rate,
        output length, deadline): each variant's cost and time per mode from its calibrated
        projection, its quality with the 95% interval, and the dollars per correct row — a panel in a
        notebook, a table elsewhere. Returns a :class:`batchkit.Explorer`; ``settings`` are its
        starting values (those of :meth:`batchkit.Explorer.set`)."""
        from batchkit.display.explore_sources import explore_comparison

        return explore_comparison(self, **settings)


def _named_output(output: str | None) -> dict[str, str]:
    return {"output": output} if output is not None else {}
