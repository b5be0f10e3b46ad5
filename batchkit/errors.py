"""Every exception batchkit raises.

Call-level problems are exceptions raised *before* anything is paid; per-row failures are
data (a row's ``status`` in :meth:`batchkit.Job.outcomes`), never exceptions. Errors from the
``anthropic`` SDK pass through untouched unless wrapping them adds meaning.

::

    BatchkitError
    ├── ConfigurationError            no API key and no simulator, bad option values
    │   ├── NoCredentialsError
    │   ├── UnknownOptionError (TypeError)     a keyword neither batchkit nor the API knows
    │   ├── InvalidOptionError (ValueError)    an option with a value the call cannot use
    │   │   └── OptionTypeError (TypeError)    … because it is of the wrong type
    │   ├── ColumnCollisionError (ValueError)  an output column named like an input column
    │   └── ServerUnreachableError (ConnectionError)   the base URL does not answer
    ├── NotAFrameError (TypeError)    the core was handed something that is not a DataFrame
    ├── PromptError (ValueError)      a template that cannot render
    │   ├── MissingColumnError (KeyError)
    │   └── CellError                 one cell cannot be rendered (names the row and column)
    ├── RequestTooLargeError (ValueError)   one row alone exceeds the batch size limit
    ├── UnknownModelError (KeyError)  no price for a model
    ├── BudgetExceededError           the estimate's upper bound is over ``max_cost``
    ├── StoreError                    the job store cannot be opened, written, or is from a newer version
    │   ├── StoreNotFoundError (FileNotFoundError)  no store at the path (reading never creates one)
    │   ├── StoreReadOnlyError (PermissionError)    the store can be read but not written
    │   └── NotAStoreError (ValueError)             the file is not a batchkit job store
    ├── OutputPathError (ValueError)  a file batchkit will not write (exists, symlink, folder…)
    ├── JobNotFoundError (KeyError)
    └── JobStateError                 e.g. results of a job that has not ended
"""

from __future__ import annotations

__all__ = [
    "BatchkitError",
    "BatchkitWarning",
    "BudgetExceededError",
    "CellError",
    "ColumnCollisionError",
    "ConfigurationError",
    "InvalidOptionError",
    "JobNotFoundError",
    "JobStateError",
    "MissingColumnError",
    "NoCredentialsError",
    "NotAFrameError",
    "NotAStoreError",
    "OptionTypeError",
    "OutputPathError",
    "PromptError",
    "RequestTooLargeError",
    "ServerUnreachableError",
    "StoreError",
    "StoreNotFoundError",
    "StoreReadOnlyError",
    "UnknownModelError",
    "UnknownOptionError",
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


class UnknownOptionError(ConfigurationError, TypeError):
    """A keyword argument that is neither a batchkit option nor a Messages API param.

    Attributes:
        option: the keyword as given.
        suggestion: the nearest valid name, or None.
    """

    def __init__(self, message: str, *, option: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.option = option
        self.suggestion = suggestion


class InvalidOptionError(ConfigurationError, ValueError):
    """An option (or a Messages API param) whose value the call cannot use.

    Attributes:
        option: the option's name, e.g. ``"max_tokens"`` or ``"prices"``.
    """

    def __init__(self, message: str, *, option: str) -> None:
        super().__init__(message)
        self.option = option


class OptionTypeError(InvalidOptionError, TypeError):
    """An option of the wrong type (e.g. ``max_cost="10"``, ``system=123``)."""


class ColumnCollisionError(ConfigurationError, ValueError):
    """An output column would carry the name of an input column and silently replace it."""

    def __init__(self, message: str, *, column: str) -> None:
        super().__init__(message)
        self.column = column


class NotAFrameError(BatchkitError, TypeError):
    """The call was given something other than a pandas DataFrame."""


class ServerUnreachableError(ConfigurationError, ConnectionError):
    """The base URL does not answer, so batchkit cannot ask whether it is the simulator or the API."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class PromptError(BatchkitError, ValueError):
    """A prompt template that cannot be rendered for this frame."""


class MissingColumnError(PromptError, KeyError):
    """A ``{column}`` placeholder names a column the frame does not have."""

    def __init__(self, message: str, *, column: str, available: list[str]) -> None:
        super().__init__(message)
        self.column = column
        self.available = available


class CellError(PromptError):
    """One cell cannot be rendered into a prompt (a format spec that does not fit its value,
    a value nested too deep to serialize, …).

    Attributes:
        column: the column's name.
        row: the row's position (0-based) in the frame.
    """

    def __init__(self, message: str, *, column: str, row: int) -> None:
        super().__init__(message)
        self.column = column
        self.row = row


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

    def __init__(self, message: str, *, path: object = None) -> None:
        super().__init__(message)
        self.path = path


class StoreNotFoundError(StoreError, FileNotFoundError):
    """No job store exists at the path, and the call only reads (it never creates one)."""


class StoreReadOnlyError(StoreError, PermissionError):
    """The job store can be read but not written (read-only file, folder or file system)."""


class NotAStoreError(StoreError, ValueError):
    """The path holds a file that is not a batchkit job store; batchkit leaves it untouched."""


class OutputPathError(BatchkitError, ValueError):
    """A file batchkit refuses to write: its folder is missing, it is a folder or a symlink, or
    it exists and overwriting was not asked for."""

    def __init__(self, message: str, *, path: object = None) -> None:
        super().__init__(message)
        self.path = path


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
