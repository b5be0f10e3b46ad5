"""The thin I/O shell over the ``anthropic`` SDK: which client, and the few batch calls.

The SDK supplies auth, headers, retries with backoff and typed errors. batchkit sends each
batch as one pre-serialized body through the SDK's generic ``post`` and reads results as raw
bytes through ``with_streaming_response`` — one pydantic object per *batch*, never one per
request or result line.

Which client a call uses, first that is set wins:

=========================================  ==============================================
``client=`` argument                       an ``anthropic.Anthropic`` you built
:func:`batchkit.set_default_client`        e.g. set by :func:`batchkit.start_simulator`
``ANTHROPIC_API_KEY`` (or auth token)      ``anthropic.Anthropic()`` reads the environment,
                                           including ``ANTHROPIC_BASE_URL``
=========================================  ==============================================
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import anthropic
from anthropic.types.messages import MessageBatch

from .errors import NoCredentialsError

__all__ = ["get_default_client", "resolve_client", "set_default_client"]

_default_client: anthropic.Anthropic | None = None
_default_lock = threading.Lock()

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "sim.local"})

REAL_API_POLL_SCHEDULE = (30.0, 60.0, 120.0, 300.0, 600.0)
"""Seconds between polls of the real API: most batches take minutes to an hour."""

LOCAL_POLL_SCHEDULE = (0.1, 0.2, 0.5, 1.0)
"""Seconds between polls of a local simulator, whose batches end in seconds."""


def set_default_client(client: anthropic.Anthropic | None) -> None:
    """Use ``client`` for every call that passes no ``client=`` (None restores the default)."""
    global _default_client
    with _default_lock:
        _default_client = client


def get_default_client() -> anthropic.Anthropic | None:
    """The client set by :func:`set_default_client`, if any."""
    return _default_client


def resolve_client(client: anthropic.Anthropic | None = None) -> anthropic.Anthropic:
    """The SDK client a call should use.

    Raises:
        NoCredentialsError: no client given, none set, and no key in the environment.
    """
    if client is not None:
        if not isinstance(client, anthropic.Anthropic):
            raise TypeError(
                f"client must be an anthropic.Anthropic (the sync client), not {type(client).__name__}"
            )
        return client
    if _default_client is not None:
        return _default_client
    if os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        return anthropic.Anthropic()
    raise NoCredentialsError(
        "No Anthropic API key is configured and no simulator is running. Either set "
        "ANTHROPIC_API_KEY=sk-ant-... to use the real API, or run on batchkit's local simulator: "
        "call batchkit.start_simulator() in this process, or run `batchkit sim --port 8765` in a "
        "terminal and set ANTHROPIC_BASE_URL=http://127.0.0.1:8765 and ANTHROPIC_API_KEY=sk-sim."
    )


def is_local(client: anthropic.Anthropic) -> bool:
    """Whether ``client`` talks to a simulator on this machine rather than to Anthropic."""
    return (urlsplit(str(client.base_url)).hostname or "") in LOCAL_HOSTS


def poll_schedule(client: anthropic.Anthropic, poll_interval: float | None) -> tuple[float, ...]:
    """Intervals between polls: fixed if the caller set one, else a backoff fit for the server."""
    if poll_interval is not None:
        return (float(poll_interval),)
    return LOCAL_POLL_SCHEDULE if is_local(client) else REAL_API_POLL_SCHEDULE


def create_batch(client: anthropic.Anthropic, body: bytes) -> MessageBatch:
    """Create a batch from a pre-serialized ``{"requests": [...]}`` body."""
    return client.post("/v1/messages/batches", content=body, cast_to=MessageBatch)


def retrieve_batch(client: anthropic.Anthropic, batch_id: str) -> MessageBatch:
    return client.messages.batches.retrieve(batch_id)


def cancel_batch(client: anthropic.Anthropic, batch_id: str) -> MessageBatch:
    return client.messages.batches.cancel(batch_id)


def result_chunks(client: anthropic.Anthropic, batch_id: str) -> Iterator[bytes]:
    """The raw bytes of a batch's results file, streamed."""
    with client.messages.batches.with_streaming_response.results(batch_id) as response:
        yield from response.iter_bytes()  # as they arrive: re-chunking would only copy


def find_created_batch(
    client: anthropic.Anthropic,
    *,
    n_requests: int,
    intent_at: dt.datetime,
    claimed: set[str],
    window: dt.timedelta = dt.timedelta(minutes=10),
) -> MessageBatch | None:
    """Find a batch a dead process created but did not record.

    Lists batches newest first back to a little before ``intent_at`` and returns the one with
    ``n_requests`` requests created within ``window`` after the intent, not already ``claimed``
    by another record. None when there is none (the create never reached the API) or when the
    match is ambiguous — see the README's "Recovery" section for the limits of this rule.
    """
    earliest = intent_at - dt.timedelta(seconds=60)  # tolerate clock skew between us and the API
    latest = intent_at + window
    matches: list[MessageBatch] = []
    for batch in client.messages.batches.list(limit=100):
        created = batch.created_at
        if created < earliest:
            break
        counts = batch.request_counts
        total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
        if created <= latest and total == n_requests and batch.id not in claimed:
            matches.append(batch)
    return matches[0] if len(matches) == 1 else None  # two candidates: adopt neither


def batch_fields(batch: MessageBatch) -> dict[str, Any]:
    """The fields of a batch the store keeps."""
    counts = batch.request_counts
    return {
        "created_at": _iso(batch.created_at),
        "ended_at": _iso(batch.ended_at),
        "expires_at": _iso(batch.expires_at),
        "request_counts": {
            "processing": counts.processing,
            "succeeded": counts.succeeded,
            "errored": counts.errored,
            "canceled": counts.canceled,
            "expired": counts.expired,
        },
    }


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
