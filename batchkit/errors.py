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
    ├── SpendLimitError               the API refused a request: a spend or usage limit is reached
    ├── StoreError                    the job store cannot be opened or is from a newer version
    ├── JobNotFoundError (KeyError)
    └── JobStateError                 e.g. results of a job that has not ended
"""

from __future__ import annotations

__all__ = [
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
    "SpendLimitError",
    "StoreError",
    "UnknownModelError",
]


class BatchkitError(Exception):
    """Base class of every batchkit exception."""

    def __str__(self) -> str:  # KeyError subclasses would otherwise repr() the message
        return str(self.args[0]) if self.args else self.__class__.__name__


class BatchkitWarning(UserWarning):
    """Something the user should know about a call that still goes ahead (e.g. rows that failed)."""


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


class SpendLimitError(BatchkitError):
    """The API refused a request because a spend or usage limit is reached.

    Raised at once by the realtime sender, which stops sending (every further request would be
    refused as well); answers that came back before it are kept.

    Attributes:
        status_code: 429 (the organisation's spend cap) or 400 (a workspace usage limit).
        error_code: the API's ``error.details.error_code`` (e.g.
            ``"enforced_spend_limit_reached"``), if it sent one.
        api_message: the API's own message.
        answered: requests answered before the refusal.
        unsent: requests not sent (or refused) because of it.
    """

    def __init__(self, message: str, *, status_code: int, error_code: str | None, api_message: str,
                 answered: int = 0, unsent: int = 0) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_code = error_code
        self.api_message = api_message
        self.answered = answered
        self.unsent = unsent


class StoreError(BatchkitError):
    """The job store cannot be opened, migrated or written."""


class JobNotFoundError(BatchkitError, KeyError):
    """No job with this id is in the store."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobStateError(BatchkitError):
    """The job is not in a state that allows this call."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
