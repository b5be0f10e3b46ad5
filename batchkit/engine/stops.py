"""Why a job stopped, said to the user: the errors a failed job ends with, rebuilt from the store.

A job stops for three reasons a retry of the worker cannot fix: the API refused its requests
(no credit, a bad key: :func:`refusal`), the API no longer knows some of its batches (a 404:
:func:`lost_error`, with what sending their rows again would cost), or a batch's results were
cut every time they were downloaded (:func:`download_error`). Each error is built from what the
store recorded, so another process (``batchkit wait``, ``Job.load``) says the same thing as the
one that saw it happen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from batchkit.backends import CallFailed
from batchkit.core.states import SendMode, UnitState
from batchkit.costs.prices import load_prices
from batchkit.costs.pricing import default_typical_output_tokens, estimate_request_tokens
from batchkit.errors import (
    APIRefusedError,
    BatchkitError,
    BatchLostError,
    ResultsDownloadError,
    SpendLimitError,
    UnknownModelError,
)
from batchkit.stores.store import Store

__all__ = ["LOST_WHY", "download_error", "lost_error", "refusal", "reraise", "resend_cost", "stopped"]

LOST_WHY = (
    "it was deleted, its results expired (29 days after creation), it belongs to another workspace's "
    "API key, or it died with a simulator that was stopped"
)
"""Why the API may no longer know a batch the store recorded (a 404)."""


def refusal(store: Store, job_id: str) -> APIRefusedError:
    """The error of a job the API refused, with the API's reason as the store recorded it."""
    failed = [b for b in store.batches(job_id=job_id, states=(UnitState.FAILED,)) if b["error"]]
    reason = failed[-1]["error"] if failed else "the API refused its requests"
    kind = SpendLimitError if "spend or usage limit" in reason else APIRefusedError
    return kind(
        f"job {job_id} stopped: {reason}. Nothing more was sent; answers that came back are "
        f"kept. After fixing the cause, re-run the same call or batchkit.Job.load({job_id!r}).retry() "
        f"to send the rest; job.cancel() gives up on them.",
        job_id=job_id,
    )


def stopped(store: Store, job_id: str, model: str, prices: Any) -> BatchkitError:
    """The error a failed job ends with, rebuilt from the store (e.g. in another process): the
    API's refusal, a batch it no longer knows, or a results download cut every time."""
    failed = [b for b in store.batches(job_id=job_id, states=(UnitState.FAILED, UnitState.LOST)) if b["error"]]
    if failed and failed[-1]["state"] == UnitState.LOST:
        lost = [b for b in failed if b["state"] == UnitState.LOST]
        return lost_error(store, job_id, lost, resend_cost(store, model, prices, lost))
    if not failed:
        cut = [b for b in store.batches(job_id=job_id, states=(UnitState.ENDED,)) if b["error"]]
        if cut:
            return download_error(job_id, cut[-1]["api_id"], cut[-1]["error"])
    return refusal(store, job_id)


def lost_error(store: Store, job_id: str, lost: Sequence[Mapping[str, Any]], cost: str) -> BatchLostError:
    """The error a job ends with when the API no longer knows some of its batches (``cost``: what
    :func:`resend_cost` says)."""
    rows = sum(int(b["n_requests"]) for b in lost)
    ids = ", ".join(str(b["api_id"]) for b in lost[:3]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
    return BatchLostError(
        f"job {job_id} stopped: the API no longer knows {len(lost)} of its batches ({ids}): {LOST_WHY}. "
        f"Their {rows:,} rows have no answer{cost}. Everything "
        f"else was collected. Re-run the same call or batchkit.Job.load({job_id!r}).retry() to send "
        f"them again; job.cancel() gives up on them.",
        job_id=job_id,
        batch_id=lost[-1]["api_id"],
        rows=rows,
    )


def resend_cost(store: Store, model: str, prices: Any, lost: Sequence[Mapping[str, Any]]) -> str:
    """'; sending them again costs about $X at <mode> prices' for the rows of the ``lost`` units
    (an offline estimate; empty for a model with no price)."""
    try:
        price = load_prices(prices).get(model)
    except UnknownModelError:  # say nothing rather than guess
        return ""
    mode = lost[-1]["mode"]
    params = store.request_params([k for b in lost for k in store.batch_keys(b["id"])])
    tokens = sum(estimate_request_tokens(p) for p in params.values())
    out = sum(default_typical_output_tokens(int(p.get("max_tokens") or 1)) for p in params.values())
    discount = price.batch_multiplier if mode == SendMode.BATCH else 1.0
    dollars = (tokens * price.input + out * price.output) / 1e6 * discount
    return f"; sending them again costs about ${dollars:,.4f} at {mode} prices"


def download_error(job_id: str, api_id: str, reason: str) -> ResultsDownloadError:
    """A batch's results were cut every time they were read: the job stops and says how to go on."""
    return ResultsDownloadError(
        f"job {job_id} stopped: {reason}. The batch has ended and its answers are kept by the API for 29 days "
        f"after it was created; nothing was sent or paid again. Check the network connection (a proxy or VPN "
        f"that cuts long downloads), then re-run the same call or batchkit.Job.load({job_id!r}).retry() to "
        f"download them.",
        job_id=job_id,
        batch_id=api_id,
    )


def reraise(failure: CallFailed) -> NoReturn:
    """Raise the SDK's own error (untouched: wrapping it would add nothing here)."""
    raise failure.__cause__ or failure
