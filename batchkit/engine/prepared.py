"""A prepared call: checked, rendered and keyed, not yet written down or sent.

What :func:`batchkit.engine.calls.prepare` returns and every later step takes — submitting it
(:mod:`.start`), pricing it (:mod:`.estimates`), running it a partition at a time (:mod:`.runs`).
Its own module so that each of those can name it without importing the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from batchkit.core.columns import Table
from batchkit.core.options import JobSpec, Options
from batchkit.core.plan import Plan, RequestTemplate

__all__ = ["Call"]


@dataclass
class Call:
    """A call, checked, rendered and keyed, not yet written down or sent."""

    table: Table
    """The columns the call read (:func:`~batchkit.core.columns.as_table` of what was given)."""
    template: RequestTemplate
    plan: Plan
    kind: str
    output: str
    spec: JobSpec
    """What the job will store about this call."""
    options: Options
    """Everything the call was asked to do, checked."""
    cached: bool
    """Whether requests carry a cache breakpoint (the shared prefix is long enough)."""

    @property
    def model(self) -> str:
        return self.template.model

    @property
    def frame(self) -> pd.DataFrame | None:
        """The pandas DataFrame the call read, or None for any other table."""
        return self.table.frame

    @property
    def cache(self) -> str | bool:
        """The caching mode asked for."""
        return self.options.run.cache
