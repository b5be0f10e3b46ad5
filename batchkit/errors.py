"""Every exception batchkit raises.

Call-level problems are exceptions raised *before* anything is paid; per-row failures are
data (a row's ``status`` in :meth:`batchkit.Job.outcomes`), never exceptions. Errors from the
``anthropic`` SDK pass through untouched unless wrapping them adds meaning.

::

    BatchkitError
    ├── ConfigurationError            no API key and no simulator, bad option values
    │   └── NoCredentialsError
    ├── PromptError (ValueError)      a template that cannot render
    │   └── MissingColumnError (KeyError)
    ├── RequestTooLargeError (ValueError)   one row alone exceeds the batch size limit
    ├── UnknownModelError (KeyError)  no price for a model
    ├── BudgetExceededError           the estimate's upper bound is over ``max_cost``
    ├── StoreError                    the job store cannot be opened or is from a newer version
    ├── JobNotFoundError (KeyError)
    └── JobStateError                 e.g. results of a job that has not ended
        └── APIRefusedError           the API refused to take the job's requests (no credit, …)

Internal, never raised to the user: ``batchkit.backends.errors.CallFailed`` (a backend call
failed; it carries the engine's decision and the SDK error as ``__cause__``).
:func:`warn` issues a :class:`BatchkitWarning` at the user's own line.
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = [
    "APIRefusedError",
    "BatchkitError",
    "BatchkitWarning",
    "BudgetExceededError",
    "ConfigurationError",
    "JobNotFoundError",
    "JobStateError",
    "MissingColumnError",
    "NoCredentialsError",
    "PromptError",
    "RequestTooLargeError",
    "StoreError",
    "UnknownModelError",
    "warn",
]


class BatchkitError(Exception):
    """Base class of every batchkit exception."""

    def __str__(self) -> str:  # KeyError subclasses would otherwise repr() the message
        return str(self.args[0]) if self.args else self.__class__.__name__


class BatchkitWarning(UserWarning):
    """Something the user should know about a call that still goes ahead (e.g. rows that failed)."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning] = BatchkitWarning) -> None:
    """Warn at the user's line: the first caller outside the batchkit package.

    However deep in batchkit the warning is raised (``df.claude.batch`` → job → report), the
    warning's file and line are those of the call the user wrote.
    """
    frame = sys._getframe(1)
    level = 2  # 1 is this function, 2 its caller
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


class ConfigurationError(BatchkitError):
    """An option has a value batchkit cannot work with."""


class NoCredentialsError(ConfigurationError):
    """No API key is configured and no simulator is running."""


class PromptError(BatchkitError, ValueError):
    """A prompt template that cannot be rendered for this frame."""


class MissingColumnError(PromptError, KeyError):
    """A ``{column}`` placeholder names a column the frame does not have."""

    def __init__(self, message: str, *, column: str, available: list[str]) -> None:
        super().__init__(message)
        self.column = column
        self.available = available


class RequestTooLargeError(BatchkitError, ValueError):
    """One rendered request alone is larger than a whole batch may be."""

    def __init__(self, message: str, *, row: object = None, size: int = 0) -> None:
        super().__init__(message)
        self.row = row
        self.size = size


class UnknownModelError(BatchkitError, KeyError):
    """The price table has no entry for a model."""

    def __init__(self, message: str, *, model: str) -> None:
        super().__init__(message)
        self.model = model


class BudgetExceededError(BatchkitError):
    """The estimated upper bound of a run is over the caller's ``max_cost``."""

    def __init__(self, message: str, *, limit: float, estimate: float) -> None:
        super().__init__(message)
        self.limit = limit
        self.estimate = estimate


class StoreError(BatchkitError):
    """The job store cannot be opened, migrated or written."""


class JobNotFoundError(BatchkitError, KeyError):
    """No job with this id is in the store (or, from :meth:`batchkit.Job.of`, no job id at all)."""

    def __init__(self, message: str, *, job_id: str | None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobStateError(BatchkitError):
    """The job is not in a state that allows this call."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class APIRefusedError(JobStateError):
    """The API refused the job's requests for a reason a retry cannot fix; the job stopped.

    Nothing more is sent until the cause is fixed (the message names the API's reason and the
    fix). Answers that came back before are kept; re-running the same call, or ``job.retry()``,
    sends what is left.
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
        api_message: str | None = None,
    ) -> None:
        super().__init__(message, job_id=job_id)
        self.status_code = status_code
        self.error_type = error_type
        self.api_message = api_message
