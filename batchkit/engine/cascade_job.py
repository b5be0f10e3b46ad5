"""A cascade's handle: its stages' jobs, each row's kept answer, which model gave it and why, and the
cost split by stage (see :mod:`batchkit.engine.cascade` for how a cascade runs).

A :class:`CascadeJob` holds no state of its own beyond its stages' jobs and thresholds: every row's
outcome is read back from the jobs (stage 1 asked every row; the rows under its threshold are
the rows stage 2 asked, and so on), so :meth:`CascadeJob.of` re-attaches to the frame a cascade
returned after a kernel restart and reads exactly what the run read.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cached_property

import anthropic
import numpy as np
import pandas as pd

from batchkit.core.states import JobState, RowStatus
from batchkit.core.structured import OutputSpec
from batchkit.costs.accounting import JobCost
from batchkit.costs.usage import usd
from batchkit.errors import JobNotFoundError, JobStateError
from batchkit.stores.store import Store

from .jobs import Job

__all__ = ["CascadeCost", "CascadeJob", "Stage", "escalation", "exact"]

_ATTR = "batchkit_cascade"


def escalation(statuses: np.ndarray, confidence: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The one escalation rule, per row of a stage (its status there and its answer's confidence):
    ``(kept, sent_on)``. A row's answer is kept when it succeeded with a confidence of at least
    ``threshold``; a row not kept is sent on to the next model, unless it was skipped (never sent,
    e.g. a missing value the prompt reads: no model is asked it). Used by a cascade's run, and by a
    comparison's cascades and escalation shares, so that the sample measures what the run does."""
    ok = np.asarray(statuses == RowStatus.SUCCEEDED, dtype=bool)
    with np.errstate(invalid="ignore"):
        kept: np.ndarray = ok & (np.asarray(confidence, dtype=float) >= threshold)
    sent_on: np.ndarray = ~kept & np.asarray(statuses != RowStatus.SKIPPED, dtype=bool)
    return kept, sent_on


def exact(value: float) -> str:
    """A threshold or a confidence written exactly as it is compared (the shortest text that reads
    back as the same float): ``0.7``, ``0.2234``; so a threshold copied from a name or a reason
    selects the same rows."""
    return repr(float(value))


class Stage:
    """One model of a cascade and the job that asked it.

    Attributes:
        model: the model id.
        job: the stage's job (an ordinary :class:`batchkit.Job`).
        rows: the input rows (positions) this stage was asked: every row for stage 1, then the
            rows escalated to it.
        threshold: the confidence its answer is kept at; None for the last model, whose answer
            is kept whatever its confidence.
    """

    def __init__(self, model: str, job: Job, rows: np.ndarray, threshold: float | None) -> None:
        self.model = model
        self.job = job
        self.rows = rows
        self.threshold = threshold

    def __repr__(self) -> str:
        return (
            f"<Stage {self.model}: {len(self.rows):,} rows asked, {int(self.kept.sum()):,} kept; job {self.job.job_id}>"
        )

    @cached_property
    def statuses(self) -> np.ndarray:
        """Each asked row's status in this stage's job."""
        statuses: np.ndarray = self.job.statuses()
        return statuses

    @cached_property
    def confidences(self) -> np.ndarray:
        """Each asked row's confidence as the model gave it; NaN where the row has no usable answer,
        and on every row of the last stage, which is asked none."""
        spec = self.job.output_spec
        assert spec is not None
        column, fieldname = spec.columns[-1]
        if fieldname != "confidence":
            return np.full(len(self.rows), math.nan)
        values = self.job.output_values()[column]
        out: np.ndarray = np.array(
            [math.nan if not isinstance(v, (int, float)) else float(v) for v in values], dtype=float
        )
        return out

    @cached_property
    def _split(self) -> tuple[np.ndarray, np.ndarray]:
        """(kept, sent on) per asked row, by :func:`escalation`; the last stage keeps every row it asked."""
        if self.threshold is None:
            return np.ones(len(self.rows), dtype=bool), np.zeros(len(self.rows), dtype=bool)
        return escalation(self.statuses, self.confidences, self.threshold)

    @property
    def kept(self) -> np.ndarray:
        """Per asked row: its answer here is the one kept (the last stage keeps every row it asked)."""
        return self._split[0]

    def escalated(self) -> np.ndarray:
        """The input rows this stage sends on to the next (:func:`escalation`: not kept, and not skipped)."""
        sent_on: np.ndarray = self.rows[self._split[1]]
        return sent_on


@dataclass(frozen=True)
class CascadeCost:
    """What a cascade paid, by stage: ``stages`` holds ``(model, rows asked, rows kept, JobCost)``."""

    stages: tuple[tuple[str, int, int, JobCost], ...]

    @property
    def total(self) -> float:
        return sum(c.total for *_, c in self.stages)

    @property
    def requests_paid(self) -> int:
        return sum(c.requests_paid for *_, c in self.stages)

    @property
    def requests_reused(self) -> int:
        return sum(c.requests_reused for *_, c in self.stages)

    def to_frame(self) -> pd.DataFrame:
        """One row per stage: model, rows asked and kept, requests paid and reused, dollars."""
        rows = [
            {
                "stage": k + 1,
                "model": model,
                "rows_asked": asked,
                "rows_kept": kept,
                "requests_paid": c.requests_paid,
                "requests_reused": c.requests_reused,
                "cost": c.total,
            }
            for k, (model, asked, kept, c) in enumerate(self.stages)
        ]
        return pd.DataFrame(rows).set_index("stage")

    def __str__(self) -> str:
        models = " → ".join(m for m, *_ in self.stages)
        reused = f" ({self.requests_reused:,} more answered from the store at $0)" if self.requests_reused else ""
        lines = [f"cascade {models}: {usd(self.total)} for {self.requests_paid:,} requests{reused}"]
        for k, (model, asked, kept, c) in enumerate(self.stages):
            lines.append(
                f"  stage {k + 1} {model}: {asked:,} rows asked, {kept:,} answers kept — {usd(c.total)} for "
                f"{c.requests_paid:,} requests"
                + (f" ({c.requests_reused:,} from the store at $0)" if c.requests_reused else "")
            )
        return "\n".join(lines)

    __repr__ = __str__


class CascadeJob:
    """A model cascade's run: its :attr:`stages`, each row's kept answer and why, cost by stage.

    Returned (as the frame's columns) by ``df.claude.classify(..., cascade=[...])``; get it back
    from that frame with :meth:`of`.
    """

    def __init__(
        self,
        stages: list[Stage],
        models: tuple[str, ...],
        thresholds: tuple[float, ...],
        n_rows: int,
        *,
        frame: pd.DataFrame | None = None,
    ) -> None:
        self.stages = stages
        self.models = models
        """Every model of the cascade, in order (a later one may have been asked no row)."""
        self.thresholds = thresholds
        self.n_rows = n_rows
        self.frame = frame

    @property
    def spec(self) -> OutputSpec:
        spec = self.stages[0].job.output_spec
        assert spec is not None
        return spec

    @property
    def output(self) -> str:
        """The first output column (the labels of ``classify``)."""
        return self.spec.columns[0][0]

    @property
    def store(self) -> Store:
        return self.stages[0].job.store

    @property
    def status(self) -> str:
        """``ended`` once every stage has; else the first stage's status that is not."""
        return next((s.job.status for s in self.stages if s.job.status != JobState.ENDED), JobState.ENDED)

    def wait(self) -> CascadeJob:
        for s in self.stages:
            s.job.wait()
        return self

    def __repr__(self) -> str:
        asked = ", ".join(f"{s.model} {len(s.rows):,}" for s in self.stages)
        return f"<batchkit.CascadeJob {' → '.join(self.models)} [{self.status}]: rows asked {asked}>"

    # ------------------------------------------------------------------ each row

    @cached_property
    def _rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per input row: the stage whose answer is kept (-1: skipped), its answer text, status, confidence."""
        stage_of = np.full(self.n_rows, -1, dtype=np.int64)
        answers = np.full(self.n_rows, None, dtype=object)
        statuses = np.full(self.n_rows, RowStatus.SKIPPED.value, dtype=object)
        confidence = np.full(self.n_rows, math.nan)
        for k, s in enumerate(self.stages):
            keep = s.kept & (s.statuses != RowStatus.SKIPPED)
            rows = s.rows[keep]
            stage_of[rows] = k
            answers[rows] = s.job.answers()[keep]
            statuses[rows] = s.statuses[keep]
            confidence[rows] = s.confidences[keep]
        return stage_of, answers, statuses, confidence

    def _why(self) -> np.ndarray:
        """Per input row, why its answer is the one kept: the steps it went through, stage by stage.
        Rows with the same steps share one text, so the work is per distinct reason, not per row."""
        stage_of = self._rows[0]
        ids = np.zeros(self.n_rows, dtype=np.int64)  # rows with the same steps so far share an id
        steps: list[tuple[str, ...]] = [()]
        for k, s in enumerate(self.stages):
            codes, table = self._steps(k)
            asked = np.flatnonzero(stage_of >= k)  # a row kept at stage j went through every stage up to j
            step = np.zeros(self.n_rows, dtype=np.int64)  # 0: not asked here; else 1 + its step's code
            step[asked] = codes[np.searchsorted(s.rows, asked)] + 1
            width = len(table) + 1
            pairs, ids = np.unique(ids * width + step, return_inverse=True)
            steps = [steps[p // width] + ((table[p % width - 1],) if p % width else ()) for p in pairs.tolist()]
        texts = [
            ("escalated: " if len(parts) > 1 else "") + "; ".join(parts)
            if parts
            else "skipped (see the stages' outcomes())"
            for parts in steps
        ]
        why: np.ndarray = np.array(texts, dtype=object)[ids.reshape(-1)]
        return why

    def _steps(self, k: int) -> tuple[np.ndarray, list[str]]:
        """Per row stage ``k`` asked, the code of its step there, and each code's text."""
        s = self.stages[k]
        statuses = np.asarray(s.statuses, dtype=object)
        ok = np.asarray(statuses == RowStatus.SUCCEEDED, dtype=bool)
        codes = np.zeros(len(s.rows), dtype=np.int64)
        if s.threshold is None:  # asked no confidence: its answer is kept whatever it is
            table = [f"{s.model}, the last model"]
        else:
            values, at = np.unique(s.confidences[ok], return_inverse=True)
            name, bar = (f"{s.model} " if k else ""), exact(s.threshold)
            said = ["no confidence" if math.isnan(c) else f"confidence {exact(c)}" for c in values.tolist()]
            table = [f"{name}{text} {sign} {bar}" for text in said for sign in ("<", "≥")]
            codes[ok] = at.reshape(-1) * 2 + s.kept[ok]
        failed = np.flatnonzero(~ok)
        if len(failed):
            found, where = np.unique(statuses[failed].astype(str), return_inverse=True)
            codes[failed] = len(table) + where.reshape(-1)
            table += [f"{s.model}: no answer ({status})" for status in found.tolist()]
        return codes, table

    def statuses(self) -> np.ndarray:
        """Each row's status in the stage whose answer is kept (``skipped`` for a row never sent)."""
        return self._rows[2]

    def to_frame(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """``frame`` with the answer columns, ``{output}_model``, ``{output}_why`` and
        ``{output}_confidence`` added (a new frame)."""
        frame = frame if frame is not None else self.frame
        index: pd.Index = frame.index if frame is not None else pd.RangeIndex(self.n_rows, name="row")
        out = frame.copy(deep=False) if frame is not None else pd.DataFrame(index=index)
        for name, column in self.spec.frame(list(self.answers()), index).items():
            out[name] = column.array
        for name, values in self.explained().items():
            out[name] = pd.array(values, dtype="string")
        out.attrs = {**out.attrs, **self.attrs()}
        return out

    def answers(self) -> np.ndarray:
        """Each row's kept answer text (the structured answer's JSON), None where it has none: what
        every front end builds the answer columns from, as for :meth:`batchkit.Job.answers`."""
        return self._rows[1]

    def explained(self) -> dict[str, list[str | None]]:
        """The columns a cascade adds besides the answer's: ``{output}_model`` (the model whose
        answer was kept) and ``{output}_why``, one value per row (None for a skipped row's model)."""
        stage_of = self._rows[0]
        models = np.array([*(s.model for s in self.stages), None], dtype=object)[stage_of]
        return {f"{self.output}_model": models.tolist(), f"{self.output}_why": self._why().tolist()}

    def outcomes(self) -> pd.DataFrame:
        """One row per input row: the kept answer's stage (1-based) and model, its status and
        confidence, why, and dollars paid for the row at each stage (``cost_stage_1``, …) and in all
        (``cost``). The cost columns sum to :attr:`cost`'s figures."""
        stage_of, _, statuses, confidence = self._rows
        index = self.frame.index if self.frame is not None else pd.RangeIndex(self.n_rows, name="row")
        out = pd.DataFrame(
            {
                "stage": pd.array([int(k) + 1 if k >= 0 else None for k in stage_of], dtype="Int64"),
                "model": pd.array(np.array([*(s.model for s in self.stages), None], dtype=object)[stage_of]),
                "status": statuses,
                "confidence": _floats(confidence),
                "why": self._why(),
            },
            index=index,
        )
        total = np.zeros(self.n_rows)
        for k, s in enumerate(self.stages):
            paid = np.zeros(self.n_rows)
            paid[s.rows] = s.job.outcomes()["cost"].to_numpy(dtype=float)
            out[f"cost_stage_{k + 1}"] = paid
            total += paid
        out["cost"] = total
        return out

    @property
    def cost(self) -> CascadeCost:
        """What every stage paid (:class:`CascadeCost`: ``print`` it, or ``.to_frame()`` by stage)."""
        stage_of = self._rows[0]
        return CascadeCost(
            tuple((s.model, len(s.rows), int((stage_of == k).sum()), s.job.cost) for k, s in enumerate(self.stages))
        )

    # ------------------------------------------------------------------ finding it again

    def attrs(self) -> dict[str, str]:
        """What the returned frame carries in ``attrs`` to find the cascade again (two short strings)."""
        jobs = " ".join(s.job.job_id for s in self.stages)
        return {_ATTR: f"{jobs}|{','.join(map(repr, self.thresholds))}", "batchkit_store": str(self.store.path)}

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        *,
        store: Store | str | os.PathLike[str] | None = None,
        client: anthropic.Anthropic | None = None,
    ) -> CascadeJob:
        """The cascade a frame returned by ``df.claude.classify(..., cascade=[...])`` came from.

        Raises:
            JobNotFoundError: the frame carries no cascade (its ``attrs`` were dropped, or it came
                from a call without ``cascade=``: use :meth:`batchkit.Job.of`).
        """
        attrs = getattr(frame, "attrs", None) or {}
        found = attrs.get(_ATTR) if isinstance(attrs, dict) else None
        if not isinstance(found, str):
            raise JobNotFoundError(
                f"this {type(frame).__name__} carries no batchkit cascade in .attrs (it was not returned by a call "
                "with cascade=, or an operation dropped its attrs); for one job use batchkit.Job.of(frame)",
                job_id=None,
            )
        ids, thresholds = found.split("|")
        where = store if store is not None else attrs.get("batchkit_store")
        jobs = [Job.load(i, store=where, client=client) for i in ids.split()]
        return cls.attach(jobs, tuple(float(t) for t in thresholds.split(",")), frame=frame)

    @classmethod
    def attach(cls, jobs: list[Job], thresholds: tuple[float, ...], *, frame: pd.DataFrame | None = None) -> CascadeJob:
        """The cascade of these stage jobs (in order), each stage's rows read back from the one before."""
        n = len(jobs[0].row_keys)
        rows = np.arange(n)
        stages = []
        for k, job in enumerate(jobs):
            if len(job.row_keys) != len(rows):
                raise JobStateError(
                    f"job {job.job_id} asked {len(job.row_keys):,} rows, but stage {k} sent {len(rows):,} on: "
                    "these jobs are not one cascade",
                    job_id=job.job_id,
                )
            stage = Stage(job.model, job, rows, thresholds[k] if k < len(thresholds) else None)
            stages.append(stage)
            rows = stage.escalated()
        models = tuple(j.model for j in jobs)
        return cls(stages, models, thresholds, n, frame=frame if frame is not None and len(frame) == n else None)


def _floats(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A nullable float column (NA where ``values`` is NaN)."""
    return pd.array([None if math.isnan(v) else float(v) for v in values], dtype="Float64")
