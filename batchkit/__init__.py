"""batchkit: enrich and classify pandas DataFrames with Claude through Message Batches.

``import batchkit`` registers ``df.claude`` and ``series.claude``::

    import batchkit
    out = df.claude.batch("Classify the sentiment of this review: {review}",
                          output="sentiment", model="claude-haiku-4-5", max_tokens=20)
"""

from __future__ import annotations

from . import accessor as _accessor  # noqa: F401  (registers the pandas accessors)
from .accessor import DEFAULT_MAX_TOKENS, DEFAULT_MODEL
from .backend import get_default_client, set_default_client
from .errors import (
    BatchkitError,
    BatchkitWarning,
    BudgetExceededError,
    ConfigurationError,
    JobNotFoundError,
    JobStateError,
    MissingColumnError,
    NoCredentialsError,
    PromptError,
    RequestTooLargeError,
    SpendLimitError,
    StoreError,
    UnknownModelError,
)
from .accounting import JobCost
from .jobs import Job, jobs
from .local import start_simulator
from .pricing import CostEstimate
from .store import Store
from .views import display_job

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "BatchkitError",
    "BatchkitWarning",
    "BudgetExceededError",
    "ConfigurationError",
    "CostEstimate",
    "Job",
    "JobCost",
    "JobNotFoundError",
    "JobStateError",
    "MissingColumnError",
    "NoCredentialsError",
    "PromptError",
    "RequestTooLargeError",
    "SpendLimitError",
    "Store",
    "StoreError",
    "UnknownModelError",
    "__version__",
    "display_job",
    "get_default_client",
    "jobs",
    "set_default_client",
    "start_simulator",
]
