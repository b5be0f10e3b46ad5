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
    │   │   ├── OptionTypeError (TypeError)    … because it is of the wrong type
    │   │   └── CalibrationError               calibrate= names a run that cannot calibrate this call
    │   ├── ColumnCollisionError (ValueError)  an output column named like an input column
    │   └── ServerUnreachableError (ConnectionError)   the base URL does not answer
    ├── NotAFrameError (TypeError)    the core was handed something that is no table (DataFrame or columns)
    ├── ColumnLengthError (ValueError)  columns given as a mapping are not all of one length
    ├── PromptError (ValueError)      a template that cannot render
    │   ├── MissingColumnError (KeyError)
    │   └── CellError                 one cell cannot be rendered (names the row and column)
    ├── RequestTooLargeError (ValueError)   one row alone exceeds the batch size limit
    ├── UnknownModelError (KeyError)  no price for a model
    ├── BudgetExceededError           the estimate's upper bound is over ``max_cost``
    ├── SpendLimitError               the API refused a request: a spend or usage limit is reached
    ├── StoreError                    the job store cannot be opened, written, or is from a newer version
    │   ├── StoreNotFoundError (FileNotFoundError)  no store at the path (reading never creates one)
    │   ├── StoreReadOnlyError (PermissionError)    the store can be read but not written
    │   └── NotAStoreError (ValueError)             the file is not a batchkit job store
    ├── OutputPathError (ValueError)  a file batchkit will not write (exists, symlink, folder…)
    ├── JobNotFoundError (KeyError)
    ├── RunNotFoundError (KeyError)   no partitioned run with that id
    ├── JobStateError                 e.g. results of a job that has not ended
    │   ├── APIRefusedError           the API refused to take the job's requests (no credit, …)
    │   ├── BatchLostError            the API no longer knows one of the job's batches (404)
    │   └── CancelFailedError         a cancel could not reach the API: nothing was changed
    └── ResultsDownloadError (ConnectionError)   an ended batch's results could not be downloaded

Internal, never raised to the user: ``batchkit.backends.errors.CallFailed`` (a backend call
failed; it carries the engine's decision and the SDK error as ``__cause__``).
:func:`warn` issues a :class:`BatchkitWarning` at the user's own line.
"""

from __future__ import annotations

import inspect
import os
import warnings

__all__ = [
    "APIRefusedError",
    "BatchLostError",
    "BatchkitError",
    "BatchkitWarning",
    "BudgetExceededError",
    "CalibrationError",
    "CancelFailedError",
    "CellError",
    "ColumnCollisionError",
    "ColumnLengthError",
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
    "ResultsDownloadError",
    "ServerUnreachableError",
    "SpendLimitError",
    "StoreError",
    "StoreNotFoundError",
    "StoreReadOnlyError",
    "UnknownModelError",
    "UnknownOptionError",
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
    here = inspect.currentframe()  # None only on an interpreter without frames: warn at the caller
    frame = here.f_back if here is not None else None
    level = 2  # 1 is this function, 2 its caller
    while (
        frame is not None
        and frame.f_back is not None
        and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE)
    ):
        frame = frame.f_back
        level += 1
    del here, frame  # no reference cycle through the frames
    warnings.warn(message, category, stacklevel=level)


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


class CalibrationError(InvalidOptionError):
    """``estimate(..., calibrate=...)`` names a job or comparison that cannot calibrate this call:
    it asked another prompt or kind of answer, or has no answers yet."""

    def __init__(self, message: str, *, option: str = "calibrate") -> None:
        super().__init__(message, option=option)


class ColumnCollisionError(ConfigurationError, ValueError):
    """An output column would carry the name of an input column and silently replace it."""

    def __init__(self, message: str, *, column: str) -> None:
        super().__init__(message)
        self.column = column


class NotAFrameError(BatchkitError, TypeError):
    """The call was given something that is no table: neither a DataFrame nor a mapping of
    column name → values (:func:`batchkit.core.columns.as_table` lists what is accepted)."""


class ColumnLengthError(BatchkitError, ValueError):
    """The columns of a table given as a mapping are not all of one length."""

    def __init__(self, message: str, *, lengths: dict[str, int]) -> None:
        super().__init__(message)
        self.lengths = lengths


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


class MediaError(CellError):
    """An image or PDF cell the API would refuse: a media type it does not accept, or over a
    per-image or per-document limit (size, pixels, pages, images per request); or a cell naming
    no file batchkit reads (a directory, FIFO, socket or device, a path with a NUL byte); or a
    file that changed between being read and its request being built. Raised before anything of
    it is sent, naming the row and the column. (A missing or unreadable file is not an error: its
    row is skipped, with the reason.)

    Attributes:
        reason: the problem without the row and the fix (the reason its row is skipped with
            ``media_errors="skip"``); empty when the message is all there is.
    """

    reason: str = ""


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
    """No job with this id is in the store (or, from :meth:`batchkit.Job.of`, no job id at all)."""

    def __init__(self, message: str, *, job_id: str | None) -> None:
        super().__init__(message)
        self.job_id = job_id


class RunNotFoundError(BatchkitError, KeyError):
    """No partitioned run with that id in the store (:meth:`batchkit.engine.runs.Run.load`)."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


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


class BatchLostError(JobStateError):
    """The API no longer knows a batch the store recorded (404): it was deleted, its results
    expired (29 days after creation), it belongs to another workspace's key, or it died with a
    simulator that was stopped.

    The batch is marked ``lost`` and its rows have no answer; nothing else is blocked. Re-running
    the same call, or ``job.retry()``, sends them again (the message says how many and about what
    that costs); ``job.cancel()`` gives up on them.
    """

    def __init__(self, message: str, *, job_id: str | None = None, batch_id: str | None = None, rows: int = 0) -> None:
        super().__init__(message, job_id=job_id)
        self.batch_id = batch_id
        self.rows = rows


class CancelFailedError(JobStateError):
    """A cancel could not reach the API (or the API failed); the job was left exactly as it was:
    its batches keep running. Try again when the API answers."""


class SpendLimitError(APIRefusedError):
    """The API refused a request because a spend or usage limit is reached.

    Raised by the realtime sender, which stops sending at once (every further request would be
    refused as well), and by a job whose requests met the limit: the job stops within one round
    of requests, as for any :class:`APIRefusedError`. Answers that came back before it are kept;
    a re-run after the limit is raised sends only the rest.

    Attributes:
        status_code: 429 (the organisation's spend cap) or 400 (a workspace usage limit).
        error_code: the API's ``error.details.error_code`` (e.g.
            ``"enforced_spend_limit_reached"``), if it sent one.
        api_message: the API's own message.
        answered: requests answered before the refusal.
        unsent: requests not sent (or refused) because of it.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        api_message: str | None = None,
        answered: int = 0,
        unsent: int = 0,
        job_id: str | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(
            message, job_id=job_id, status_code=status_code, error_type=error_type, api_message=api_message
        )
        self.error_code = error_code
        self.answered = answered
        self.unsent = unsent


class ResultsDownloadError(BatchkitError, ConnectionError):
    """An ended batch's results could not be downloaded: the connection was cut mid-download
    every time batchkit tried (it tries a few times, from the start, before giving up).

    The job stops (status ``failed``) with the batch left ``ended``: its answers wait at the API
    (for 29 days after the batch was created) and nothing is sent or paid again. Re-running the
    same call, or ``job.retry()``, downloads them again.

    Attributes:
        job_id: the job that stopped.
        batch_id: the API's id of the batch whose results were cut (``msgbatch_…``).
    """

    def __init__(self, message: str, *, job_id: str | None = None, batch_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.batch_id = batch_id
