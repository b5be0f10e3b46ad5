"""batchkit: enrich and classify pandas DataFrames with Claude through Message Batches.

``import batchkit`` registers ``df.claude`` and ``series.claude``::

    import batchkit
    out = df.claude.batch("Classify the sentiment of this review: {review}",
                          output="sentiment", model="claude-haiku-4-5", max_tokens=20)

and ``pl.DataFrame.claude`` / ``pl.LazyFrame.claude`` once Polars is imported, before or after
batchkit (batchkit never imports Polars itself).
"""

from __future__ import annotations

from .backends.clients import forget_server_identities, get_default_client, set_default_client
from .compare.comparison import Comparison
from .core.media import text_pdf
from .core.modes import default_mode, set_default_mode
from .core.options import DEFAULT_MAX_TOKENS, DEFAULT_MODEL
from .costs.accounting import JobCost
from .costs.prices import load_prices
from .costs.pricing import CostEstimate
from .display import shown as _shown  # noqa: F401  (hands the engine its views of jobs and runs)
from .display.explore import Explorer
from .display.plots import (
    plot_estimate,
    plot_estimate_vs_actual,
    plot_savings_vs_prefix,
    plot_savings_vs_rows,
)
from .display.views import display_job
from .engine.cascade_job import CascadeCost, CascadeJob
from .engine.jobs import Job
from .engine.listing import jobs
from .engine.runs import Run
from .errors import (
    APIRefusedError,
    BatchkitError,
    BatchkitWarning,
    BatchLostError,
    BudgetExceededError,
    CalibrationError,
    CancelFailedError,
    CellError,
    ColumnCollisionError,
    ColumnLengthError,
    ConfigurationError,
    InvalidOptionError,
    JobNotFoundError,
    JobStateError,
    MediaError,
    MissingColumnError,
    NoCredentialsError,
    NotAFrameError,
    NotAStoreError,
    OptionTypeError,
    OutputPathError,
    PromptError,
    RequestTooLargeError,
    ResultsDownloadError,
    RunNotFoundError,
    ServerUnreachableError,
    SpendLimitError,
    StoreError,
    StoreNotFoundError,
    StoreReadOnlyError,
    UnknownModelError,
    UnknownOptionError,
)
from .frontends import pandas as _pandas  # noqa: F401  (registers the pandas accessors)
from .frontends._hooks import when_imported as _when_imported
from .local import start_simulator
from .stores.maintenance import forget, prune
from .stores.store import Store

__version__ = "0.1.0"

_when_imported("polars", "batchkit.frontends.polars")  # registers pl.DataFrame.claude, pl.LazyFrame.claude
_when_imported("dask.dataframe", "batchkit.frontends.dask")  # registers ddf.claude and dask series.claude

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "APIRefusedError",
    "BatchLostError",
    "BatchkitError",
    "BatchkitWarning",
    "BudgetExceededError",
    "CalibrationError",
    "CancelFailedError",
    "CascadeCost",
    "CascadeJob",
    "CellError",
    "ColumnCollisionError",
    "ColumnLengthError",
    "Comparison",
    "ConfigurationError",
    "CostEstimate",
    "Explorer",
    "InvalidOptionError",
    "Job",
    "JobCost",
    "JobNotFoundError",
    "JobStateError",
    "MediaError",
    "MissingColumnError",
    "NoCredentialsError",
    "NotAFrameError",
    "NotAStoreError",
    "OptionTypeError",
    "OutputPathError",
    "PromptError",
    "RequestTooLargeError",
    "ResultsDownloadError",
    "Run",
    "RunNotFoundError",
    "ServerUnreachableError",
    "SpendLimitError",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "StoreReadOnlyError",
    "UnknownModelError",
    "UnknownOptionError",
    "__version__",
    "default_mode",
    "display_job",
    "forget",
    "forget_server_identities",
    "get_default_client",
    "jobs",
    "load_prices",
    "plot_estimate",
    "plot_estimate_vs_actual",
    "plot_savings_vs_prefix",
    "plot_savings_vs_rows",
    "prune",
    "set_default_client",
    "set_default_mode",
    "start_simulator",
    "text_pdf",
]
