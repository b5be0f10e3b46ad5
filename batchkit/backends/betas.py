"""The ``anthropic-beta`` values a unit is sent with, decided once, when it is planned. Pure.

A Message Batch whose requests ask for more than their model's standard output cap
(``max_output_tokens``) goes out under the ``output-300k-2026-03-24`` beta, which raises the cap
to 300,000 on the Batches API for the models it covers. Whether a call may do that is checked
when the call is made (:class:`batchkit.core.options.Options`, against the call's own price
table, ``prices=`` included); this function turns the same facts into the unit's betas, so the
engine stores them with the unit and the backend sends what was planned — instead of scanning
the request bytes again at send time against the default table
(:func:`batchkit.costs.prices.output_betas`, kept for units planned before betas were stored).

It takes plain values (the model's cap and whether the beta covers it, read from the call's
price table by the caller), so nothing here imports the price table (and pandas with it).
"""

from __future__ import annotations

from batchkit.core.states import SendMode

__all__ = ["OUTPUT_300K_BETA", "OUTPUT_300K_TOKENS", "unit_betas"]

OUTPUT_300K_BETA = "output-300k-2026-03-24"
"""The beta that raises ``max_tokens`` to :data:`OUTPUT_300K_TOKENS` on the Message Batches API
(the same value as :data:`batchkit.costs.prices.OUTPUT_300K_BETA`; one home in the core is for the
integration to pick)."""

OUTPUT_300K_TOKENS = 300_000
"""The output cap under :data:`OUTPUT_300K_BETA`."""


def unit_betas(mode: SendMode | str, *, max_tokens: int, output_cap: int | None) -> tuple[str, ...]:
    """The betas a unit of ``mode`` whose requests ask for ``max_tokens`` is sent with.

    Args:
        mode: how the unit is sent; only Message Batches have the 300K-output beta.
        max_tokens: what its requests ask for (a job's requests share it).
        output_cap: the model's standard output cap, from the call's price table (None: unknown).

    Whether the beta covers the model was checked with the call (a request over the cap of a
    model it does not cover is refused there), so it is not asked again here.

    >>> unit_betas("batch", max_tokens=200_000, output_cap=128_000)
    ('output-300k-2026-03-24',)
    >>> unit_betas("batch", max_tokens=64_000, output_cap=128_000)
    ()
    >>> unit_betas("realtime", max_tokens=200_000, output_cap=128_000)
    ()
    """
    if mode != SendMode.BATCH or output_cap is None or max_tokens <= output_cap:
        return ()
    return (OUTPUT_300K_BETA,)
