"""The one place where an error from the ``anthropic`` SDK becomes a decision of the engine.

Rows that come back failed are decided here too: :data:`AUTO_RETRY_ERRORS` are resubmitted by
the engine, :data:`RETRY_CAN_FIX` are worth a ``job.retry()``.

Every call a backend makes can fail; what the engine does about it depends only on what failed
and on what kind of call it was, never on which backend made it. :func:`decide` answers:

============  ==================================================================================
``retry``     refused before anything happened (429 with ``retry-after``, 529, a 5xx or a dropped
              connection on a call that is safe to repeat): send it again next round (a create
              refused with 429 — e.g. no room in the processing queue — not before its
              ``retry-after``: see :class:`~.batches.MessageBatches`).
``reconcile`` a call that creates paid work may or may not have reached the API (a dropped
              connection, a 5xx, 408, 409 on ``create``): look before sending it again, or it
              could be paid for twice.
``fail_rows`` the requests of this call end with a per-row outcome (``error_type`` and
              ``message``): e.g. a realtime request the API found invalid, or results that are
              gone. Rows are data, not exceptions.
``stop``      nothing more of the job can be sent until the user fixes the cause (no credit, a bad
              key, no permission, a spend limit, a batch body the API will not take): stop
              sending, keep what came back, and tell the user the API's message and the fix.
============  ==================================================================================

The kinds of call (``call=``):

* ``"create"``: creates paid work as a whole (``batches.create``) — its fate is unknown after a
  connection error, so it is *reconciled*, not resent;
* ``"read"``: retrieve, list, results, cancel — safe to repeat;
* ``"message"``: one realtime ``POST /v1/messages`` for one request key — a request-level
  refusal fails that row only; an account-level one stops the job.

Failures are told apart by the SDK's public exception classes and the HTTP status alone, never
by the types of the SDK's transport library (``httpx2``), which change between SDK releases: a
body cut mid-download, for one, reached callers as ``httpx2.RemoteProtocolError`` up to SDK
2.16 and as ``anthropic.APIConnectionError`` from 2.17 on, and only when read through the SDK's
own decoders. :func:`body_chunks` reads a streamed body so that a failure to read it is always
the SDK's :class:`anthropic.APIConnectionError`, whatever the release.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import anthropic

from batchkit.core.results import TRANSIENT_ERRORS

from ..errors import BatchkitError

__all__ = [
    "AUTO_RETRY_ERRORS",
    "RESULTS_CUT",
    "RETRY_CAN_FIX",
    "Action",
    "CallFailed",
    "CallKind",
    "Decision",
    "body_chunks",
    "decide",
    "failing",
    "fix_for",
]

AUTO_RETRY_ERRORS = TRANSIENT_ERRORS
"""Error types of rows that came back ``errored`` which the engine resubmits by itself (up to
``max_retries``): the same request may well succeed next time."""

RETRY_CAN_FIX = AUTO_RETRY_ERRORS | {"results_unavailable", "expired"}
"""Row outcomes a resubmission by hand (``job.retry()``) can fix; any other error comes back the
same way, so the user is told to fix the request instead."""

CallKind = Literal["create", "read", "message"]

RESULTS_CUT = "results_download_cut"
"""The ``error_type`` of the ``stop`` decision after a unit's results download was cut every time
(:data:`batchkit.backends.batches.RESULTS_ATTEMPTS` in a row): the engine stops the job with
:class:`~batchkit.errors.ResultsDownloadError` and leaves the unit ``ended`` to download again."""


class Action(enum.StrEnum):
    """What the engine does after a failed call."""

    RETRY = "retry"
    RECONCILE = "reconcile"
    FAIL_ROWS = "fail_rows"
    STOP = "stop"


@dataclass(frozen=True)
class Decision:
    """What to do about one failed call, and what to tell the user."""

    action: Action
    error_type: str
    """The API's error type (``billing_error``, …), or ``connection_error`` when none came back."""
    message: str
    """The API's own message (or the transport's), verbatim."""
    status: int | None = None
    """The HTTP status, when the API answered."""
    retry_after: float | None = None
    """Seconds the API asked to wait, when it said."""

    @property
    def fix(self) -> str:
        """What the user should do before sending again."""
        return fix_for(self.status, self.error_type, self.message)

    def describe(self) -> str:
        """``"402 billing_error: <the API's message>"``."""
        head = f"{self.status} {self.error_type}" if self.status is not None else self.error_type
        return f"{head}: {self.message}"


class CallFailed(BatchkitError):
    """A backend call failed; ``decision`` says what the engine does about it.

    Raised by backends with the SDK's error as ``__cause__``; the engine handles every one, and
    re-raises the SDK error itself (untouched) where it has nothing to add.
    """

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.describe())
        self.decision = decision


def failing(call: CallKind) -> _Translate:
    """A context manager that turns an SDK (or socket) error into :class:`CallFailed`.

    >>> with failing("read"):                        # doctest: +SKIP
    ...     client.messages.batches.retrieve(batch_id)
    """
    return _Translate(call)


class _Translate:
    def __init__(self, call: CallKind) -> None:
        self.call = call

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is not None and isinstance(exc, (anthropic.APIError, OSError)):
            raise CallFailed(decide(exc, call=self.call)) from exc
        return False


def body_chunks(response: Any) -> Iterator[bytes]:
    """The bytes of a streamed SDK response (``with_streaming_response``) as they arrive; a
    failure to read them (the connection cut mid-body, a read timeout) is raised as the SDK's
    :class:`anthropic.APIConnectionError` (the transport's error as ``__cause__``), as the SDK
    itself does from 2.17 on for the bodies it decodes. Only the read is covered: an error of
    the caller's own, raised while it handles a chunk, passes through as it is.
    """
    chunks = response.iter_bytes()
    while True:
        try:
            chunk = next(chunks, None)
        except anthropic.AnthropicError:
            raise
        except Exception as exc:
            raise anthropic.APIConnectionError(
                message=f"the response body was cut after its headers came: {exc or type(exc).__name__}",
                request=response.http_request,
            ) from exc
        if chunk is None:
            return
        yield chunk


_SPEND_LIMIT_CODES = frozenset({"enforced_spend_limit_reached", "contract_spend_limit_reached"})
_USAGE_LIMIT_TEXT = ("usage limit", "spend limit")


def decide(exc: BaseException, *, call: CallKind) -> Decision:
    """The engine's decision for ``exc``, raised by a call of kind ``call``.

    >>> decide(anthropic.APIConnectionError(request=None), call="create").action   # doctest: +SKIP
    <Action.RECONCILE: 'reconcile'>
    """
    if isinstance(exc, (anthropic.APIConnectionError, OSError)):
        # Covers timeouts too. A create that may have reached the API is looked for, not resent.
        action = Action.RECONCILE if call == "create" else Action.RETRY
        return Decision(action, "connection_error", str(exc) or type(exc).__name__)
    if not isinstance(exc, anthropic.APIStatusError):  # e.g. an answer the SDK could not read
        action = Action.RECONCILE if call == "create" else Action.RETRY
        return Decision(action, "api_error", str(exc) or type(exc).__name__)
    status = exc.status_code
    error_type = str(exc.type or _TYPE_OF_STATUS.get(status, "api_error"))
    message = str(exc.api_message or exc.message)
    retry_after = _retry_after(exc)

    def decision(action: Action) -> Decision:
        return Decision(action, error_type, message, status, retry_after)

    if _spend_limit(exc, status, message):
        return decision(Action.STOP)  # retries fail until the limit resets: never a retry storm
    if status == 429 and call == "create" and retry_after is None and _no_retry(exc):
        # e.g. a batch that alone holds more requests than the workspace's processing queue
        # may: no wait helps, and resending it every round would be a storm of refusals
        return decision(Action.STOP)
    if status == 429 or status == 529:
        return decision(Action.RETRY)  # refused before anything was done (a create: held until retry-after)
    if status in (408, 409) or status >= 500:
        return decision(Action.RECONCILE if call == "create" else Action.RETRY)
    if call == "read":
        if status == 404:
            return decision(Action.FAIL_ROWS)  # e.g. results archived 29 days after creation
        if status in _ACCOUNT_STATUSES:
            return decision(Action.STOP)
        return decision(Action.RETRY)
    if call == "message" and status not in _ACCOUNT_STATUSES:
        return decision(Action.FAIL_ROWS)  # this request is wrong; the others may be fine
    return decision(Action.STOP)


_TYPE_OF_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ACCOUNT_STATUSES = frozenset({401, 402, 403})
"""Statuses that say the key or the account cannot go on, whatever the request."""


def _spend_limit(exc: anthropic.APIStatusError, status: int, message: str) -> bool:
    if exc.error_code in _SPEND_LIMIT_CODES:
        return True
    if status == 429 and _retry_after(exc) is None and "spend" in message.lower():
        return True
    return status == 400 and any(text in message.lower() for text in _USAGE_LIMIT_TEXT)


def _no_retry(exc: anthropic.APIStatusError) -> bool:
    """The API said not to send the same call again (``x-should-retry: false``)."""
    return exc.response is not None and exc.response.headers.get("x-should-retry", "").lower() == "false"


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the SDK handles those; the engine only needs "it said"


def fix_for(status: int | None, error_type: str, message: str) -> str:
    """What to do about a refusal, in a sentence a user can act on."""
    lowered = message.lower()
    if "spend limit" in lowered or "usage limit" in lowered:
        return (
            "the workspace has reached its spend or usage limit: raise it in the Anthropic Console "
            "(Settings → Limits) or wait until it resets"
        )
    if status == 401 or error_type == "authentication_error":
        return "check the API key (ANTHROPIC_API_KEY, or the api_key of the client you passed)"
    if status == 402 or error_type == "billing_error":
        return "add credit to the workspace in the Anthropic Console (Settings → Billing)"
    if status == 403 or error_type == "permission_error":
        return "use a key whose workspace may use this model and the Message Batches API"
    if status == 404 or error_type == "not_found_error":
        return "check the model id and the client's base_url"
    if "processing queue" in lowered:
        return (
            "send smaller batches: pass a lower chunk_size= (a batch may hold no more requests than "
            "the workspace's processing queue)"
        )
    if status == 413 or error_type == "request_too_large":
        return "send smaller batches: pass a lower chunk_bytes= (or chunk_size=)"
    if status is None:
        return "check the network connection to the API"
    return "fix what the API's message names in the call's options"
