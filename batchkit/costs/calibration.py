"""Measured usage from a finished run, for an estimate that holds: ``estimate(..., calibrate=...)``.

An offline estimate knows the input exactly (it counts it) but can only bound the output: by the
output schema for ``classify``/``extract``, by ``max_tokens`` for free text. A run that already
answered some rows of the same template — an earlier job, or the sample of a
:class:`batchkit.Comparison` — measured the answers' length. :func:`measure` reads that from the
store: the mean output tokens per answered request and their spread, so that the estimate's
typical figure is the sample's mean and its range what the sample supports (the mean ± two
standard errors; ± three for the budget guard's upper bound).

Pure but for reading the store through :class:`batchkit.Job`; nothing is sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from batchkit.core.states import RowStatus
from batchkit.errors import CalibrationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BILLED", "Calibration", "billed_requests", "measure"]

RANGE_Z = 2.0
"""Standard errors either side of the measured mean that the estimate's range spans."""
BOUND_Z = 3.0
"""Standard errors above the measured mean that the budget guard's upper bound allows."""
BILLED = frozenset({RowStatus.SUCCEEDED, RowStatus.TRUNCATED, RowStatus.INVALID_OUTPUT})
"""Row statuses of a request that was answered, and so paid for (even if cut short or invalid)."""


def billed_requests(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The distinct requests that were paid for, from a job's ``outcomes()``: one row per request
    key (rows asking the same request share one answer and one bill)."""
    return outcomes[outcomes["status"].isin(BILLED)].drop_duplicates("request_key")


@dataclass(frozen=True)
class Calibration:
    """Output tokens measured on the answers of an earlier run of the same template.

    Attributes:
        source: what was measured, e.g. ``"job job_… (100 answers, claude-haiku-4-5)"``.
        model: the model that answered.
        answers: distinct answered requests measured.
        output_mean: mean output tokens per answered request.
        output_sd: their standard deviation.
        cache_warm: the run wrote or read a cached prefix, so a run of the same template soon
            after (within the cache's TTL) finds it in the cache, as if primed.
    """

    source: str
    model: str
    answers: int
    output_mean: float
    output_sd: float
    cache_warm: bool = False

    def output_range(self, z: float = RANGE_Z) -> tuple[float, float]:
        """(low, high) mean output tokens per request that the sample supports."""
        half = z * self.output_sd / math.sqrt(self.answers)
        return max(0.0, self.output_mean - half), self.output_mean + half

    def output_bound(self) -> int:
        """The mean output per request the budget guard allows (mean + 3 standard errors, at least 1)."""
        return max(1, math.ceil(self.output_range(BOUND_Z)[1]))


def _job_of(source: Any, model: str, prompt: str) -> Any:
    """The job to measure: ``source`` itself, or a comparison's variant for this model and prompt."""
    pick = getattr(source, "job_for", None)
    if callable(pick):  # a Comparison
        return pick(model=model, prompt=prompt)
    if hasattr(source, "outcomes") and hasattr(source, "spec"):
        return source
    raise CalibrationError(
        f"calibrate= takes a finished batchkit.Job or a batchkit.Comparison, not {type(source).__name__}. "
        "Pass the job of an earlier run of this prompt (batchkit.Job.of(out)) or the result of "
        "df.claude.compare(...)."
    )


def measure(source: Any, *, model: str, prompt: str, kind: str) -> Calibration:
    """Measure the output tokens of ``source``'s answers to calibrate a call of ``prompt``.

    Args:
        source: a :class:`batchkit.Job` (finished, or with answers) or a
            :class:`batchkit.Comparison` (its variant with this model and prompt).
        model: the call's model; a job of another model still calibrates, and says so.
        prompt: the call's prompt template; the job must have asked the same one.
        kind: ``"text"``, ``"classify"`` or ``"extract"``; the job must be of the same kind.

    Raises:
        CalibrationError: the job asked another prompt or kind, or has no answers yet.
    """
    job = _job_of(source, model, prompt)
    job_prompt = job.spec.prompt
    job_kind = job.kind
    if job_prompt != prompt or job_kind != kind:
        raise CalibrationError(
            f"calibrate= names job {job.job_id}, a {job_kind} run of the prompt {job_prompt!r:.80}; this call is "
            f"a {kind} run of {prompt!r:.80}. Calibrate on a run of the same prompt (e.g. the same call on "
            f"df.sample(100))."
        )
    outcomes = job.outcomes()
    billed = billed_requests(outcomes)
    if billed.empty:
        raise CalibrationError(
            f"job {job.job_id} has no answers to measure yet (status {job.status}). Wait for it "
            f"(job.wait()) or calibrate on a finished run."
        )
    tokens = billed["output_tokens"].to_numpy(dtype=np.float64)
    cached = billed[["cache_write_5m", "cache_write_1h", "cache_read"]].to_numpy().sum()
    sd = float(tokens.std(ddof=1)) if len(tokens) > 1 else 0.0
    measured_on = job.model if job.model == model else f"{job.model}, not {model}"
    return Calibration(
        source=f"job {job.job_id} ({len(tokens):,} answers, {measured_on})",
        model=job.model,
        answers=len(tokens),
        output_mean=float(tokens.mean()),
        output_sd=sd,
        cache_warm=bool(cached > 0),
    )
