"""Helpers shared by the simulator tests (imported as a plain module)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import msgspec
from anthropic.types.messages import MessageBatchIndividualResponse

from batchkit.simulator import Simulator

MODEL = "claude-haiku-4-5"

SDK_VERSION = tuple(int(part) for part in anthropic.__version__.split(".")[:2])
BODY_CUT: type[Exception] = anthropic.APIConnectionError if SDK_VERSION >= (2, 17) else httpx2.RemoteProtocolError
"""What iterating the SDK's decoded results (``client.messages.batches.results``) raises when the
body is cut mid-download: the SDK's own ``APIConnectionError`` from 2.17 on; up to 2.16 the
transport's error passed through. Pinned per release, so that a new SDK changing it again shows
here. (batchkit reads result bodies through ``backends.errors.body_chunks``: the SDK's error with
every release.)"""


def request(custom_id: str, content: str = "Say hello", **params: Any) -> dict:
    return {
        "custom_id": custom_id,
        "params": {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": content}], **params},
    }


def requests(n: int, prefix: str = "r") -> list[dict]:
    return [request(f"{prefix}{i}", f"Tell me about item number {i} and its colour") for i in range(n)]


def finish(sim: Simulator, client: anthropic.Anthropic, batch_id: str, seconds: float = 3600):
    """Advance the clock past processing and return the ended batch."""
    sim.clock.advance(seconds)
    batch = client.messages.batches.retrieve(batch_id)
    assert batch.processing_status == "ended"
    return batch


def strict_results(client: anthropic.Anthropic, batch_id: str) -> dict[str, MessageBatchIndividualResponse]:
    """Results read raw and validated strictly against the SDK's type, by custom_id."""
    out = {}
    with client.messages.batches.with_streaming_response.results(batch_id) as response:
        for line in response.iter_lines():
            assert line, "blank line in results"
            item = MessageBatchIndividualResponse.model_validate(msgspec.json.decode(line))
            assert item.custom_id not in out
            out[item.custom_id] = item
    return out
