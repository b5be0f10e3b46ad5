"""How many output tokens a request may ask for: the model's cap, and the 300K-output beta.

Each model has a standard output cap (``max_tokens`` in its ``ModelInfo``, e.g. 64,000 for
Haiku 4.5, 128,000 for Opus 4.6). The ``output-300k-2026-03-24`` beta raises it to 300,000 on
the **Message Batches API only**, for the models it covers
(:data:`~batchkit.simulator._config.OUTPUT_300K_MODELS`). Asking for more than the cap:

- on ``POST /v1/messages`` → 400 ``invalid_request_error`` at once (with or without the beta
  header: the beta does not apply there);
- in a batch → that request comes back ``errored`` with ``invalid_request_error`` when the
  batch is processed (params are checked then, as the API does).
"""

from __future__ import annotations

from ._catalogue import Catalogue
from ._config import OUTPUT_300K_BETA, OUTPUT_300K_TOKENS, SimConfig

__all__ = ["OutputCaps"]

_DEFAULT_CAP = 64_000
SMALLEST_CAP = 4_096
"""No model's cap is below this: a request asking for no more never needs a look-up."""


class OutputCaps:
    """The output cap per ``(model, beta header sent, in a batch)``, and the error past it."""

    def __init__(self, catalogue: Catalogue, config: SimConfig) -> None:
        self._catalogue = catalogue
        self._config = config
        self._caps: dict[tuple[str, bool], int] = {}

    def standard(self, model: str) -> int:
        info = self._catalogue.get(model)
        return int(info["max_tokens"]) if info else _DEFAULT_CAP

    def cap(self, model: str, beta: bool) -> int:
        """The largest ``max_tokens`` allowed for ``model`` in a batch (``beta``: the batch was
        created with the 300K header)."""
        key = (model, beta)
        cap = self._caps.get(key)
        if cap is None:
            cap = self.standard(model)
            if beta and self._config.covered_by_300k(model):
                cap = max(cap, OUTPUT_300K_TOKENS)
            if len(self._caps) < 10_000:
                self._caps[key] = cap
        return cap

    def problem(self, model: str, max_tokens: int, *, beta: bool, in_batch: bool) -> str | None:
        """The error message when ``max_tokens`` is over the cap, else ``None``."""
        if max_tokens <= SMALLEST_CAP:
            return None
        cap = self.cap(model, beta and in_batch)
        if max_tokens <= cap:
            return None
        text = f"max_tokens: {max_tokens} > {cap}, which is the maximum allowed number of output tokens for {model}"
        covered = self._config.covered_by_300k(model)
        if max_tokens > OUTPUT_300K_TOKENS:
            return text
        if not in_batch:
            if covered:
                text += (
                    f". The {OUTPUT_300K_BETA} beta raises it to {OUTPUT_300K_TOKENS:,} on the "
                    "Message Batches API only, not on /v1/messages"
                )
            return text
        if not covered:
            return text + f". The {OUTPUT_300K_BETA} beta does not cover {model}"
        return text + (
            f". Send the anthropic-beta: {OUTPUT_300K_BETA} header with the batch "
            f"(client.beta.messages.batches.create(betas=[{OUTPUT_300K_BETA!r}], ...)) "
            f"to allow up to {OUTPUT_300K_TOKENS:,}"
        )
