"""The default responder's confidence signal: how sure a simulated model says it is.

When a JSON-schema answer (``output_config.format``, or a tool's input) holds an object property
named exactly ``confidence`` of type ``number`` (or ``integer``), the default responder fills it
with a deterministic value that is *informative but imperfect*, the way a model's own
confidence is: more often right when sure, but not always.

- **The verdict's footing** sets a base (:func:`evidence_base`, :data:`NO_EVIDENCE_BASE`, a guess
  gets ``1 / len(labels)``): a sentiment verdict from evidence (the lexicons found polarity) is
  surer than no evidence, the more so the stronger the evidence — its score ``s`` gives
  ``0.5 + 0.45 · (1 − e^(−|s|/2))``, 0.68 at ``|s|`` = 1, 0.85 at 3; no evidence answered
  with the neutral label is unsure (0.55); a guess — a weaker model turning no evidence into a
  polar label (``SIMULATED_MODELS``), or a label picked by hash because no label follows from
  the text — is as sure as a draw from the labels.
- **Deterministic noise** (a hash of the model and the request's text, as for a guess: the same
  text always gets the same value, whatever else the schema asks) moves the base by up to ± a
  model's ``spread``, and for a model's ``off`` share of texts replaces it by a uniform draw in
  [0.01, 0.99]: some sure answers are wrong and some unsure ones right. Bigger models are
  calibrated a bit better (:data:`SIMULATED_CONFIDENCE`).
- **The value** is the confidence in [0, 1] with two decimals, mapped onto the property's own
  bounds: ``minimum``/``maximum`` when given, else [0, 1] for a ``number`` and [0, 100] for an
  ``integer`` (a percentage).

Measured on the shipped data by ``bench/bench_responder.py`` (accuracy by confidence band, and a
haiku → sonnet cascade): figures in the simulator's README. Made up so that a cascade or a
calibration plot shows something offline — **simulated, never a benchmark of Claude**.
"""

from __future__ import annotations

import functools
import math
from typing import Any

__all__ = ["NO_EVIDENCE_BASE", "SIMULATED_CONFIDENCE", "confidence", "evidence_base", "scaled"]

SIMULATED_CONFIDENCE: dict[str, tuple[float, float]] = {
    "haiku": (0.15, 0.15),
    "sonnet": (0.10, 0.10),
    "opus": (0.05, 0.06),
    "fable": (0.04, 0.05),
    "mythos": (0.04, 0.05),
}
"""Simulated calibration per model family (as in ``SIMULATED_MODELS``): ``(off, spread)`` — the
share of answers whose confidence is a uniform draw unrelated to the verdict, and how far the
others stray from their base (±). A model id naming none of these answers like ``sonnet``.
**Simulated, never a benchmark of Claude.**"""
_DEFAULT = SIMULATED_CONFIDENCE["sonnet"]

NO_EVIDENCE_BASE = 0.55
"""The base confidence of a sentiment verdict without evidence, answered with the neutral label."""


def evidence_base(score: float) -> float:
    """The base confidence of a verdict whose sentiment score is ``score`` (not 0): stronger
    evidence, surer answer.

    >>> [round(evidence_base(s), 2) for s in (0.5, 1, -2, 3, 6)]
    [0.6, 0.68, 0.78, 0.85, 0.93]
    """
    return 0.5 + 0.45 * (1.0 - math.exp(-abs(score) / 2.0))


@functools.lru_cache(maxsize=256)
def _calibration(model: Any) -> tuple[float, float]:
    name = model.lower() if isinstance(model, str) else ""
    return next((v for family, v in SIMULATED_CONFIDENCE.items() if family in name), _DEFAULT)


def confidence(base: float, model: Any, h: int) -> float:
    """The confidence ``model`` states for a verdict of ``base`` confidence, with the request's
    deterministic noise drawn from ``h`` (a 64-bit hash): in [0.01, 0.99], two decimals.

    >>> confidence(0.9, "claude-opus-4-7", 12345) == confidence(0.9, "claude-opus-4-7", 12345)
    True
    """
    off, spread = _calibration(model)
    if (h & 0xFFFF) / 0x10000 < off:
        value = 0.01 + 0.98 * ((h >> 16) & 0xFFFF) / 0xFFFF
    else:
        value = base + spread * (2.0 * ((h >> 32) & 0xFFFF) / 0xFFFF - 1.0)
    return round(min(0.99, max(0.01, value)), 2)


def scaled(schema: dict, value: float) -> int | float | None:
    """``value`` (a confidence in [0, 1]) on the scale of the numeric ``schema``; None when the
    schema's bounds leave no room for it (the caller then answers as for any number)."""
    integer = schema.get("type") == "integer"
    lo = schema.get("minimum", 0)
    hi = schema.get("maximum", 100 if integer else 1)
    if schema.get("exclusiveMinimum") is not None:
        lo = max(lo, schema["exclusiveMinimum"] + (1 if integer else 0.01))
    if schema.get("exclusiveMaximum") is not None:
        hi = min(hi, schema["exclusiveMaximum"] - (1 if integer else 0.01))
    if not isinstance(lo, (int, float)) or not isinstance(hi, (int, float)) or hi < lo:
        return None
    if integer:
        lo_i, hi_i = math.ceil(lo), math.floor(hi)
        return None if hi_i < lo_i else min(hi_i, max(lo_i, round(lo + value * (hi - lo))))
    return min(hi, max(lo, round(lo + value * (hi - lo), 2)))
