"""Front ends: one thin adapter per DataFrame library over the one core.

Each adapter turns its frame's rows into the core's columns (:func:`batchkit.calls.prepare`) and
builds its own typed columns from the core's per-row answers. ``batchkit.frontends.polars`` is
registered on ``pl.DataFrame.claude`` / ``pl.LazyFrame.claude`` when Polars is imported (see
:mod:`batchkit.frontends._hooks`), so ``import batchkit`` never imports Polars itself.
"""
