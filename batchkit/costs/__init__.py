"""Costs: prices and the model table, token estimates, estimate objects, accounting, calibration.

:mod:`.prices` (the rates per model), :mod:`.tokens` (input tokens counted offline, output tokens
bounded), :mod:`.usage` (what answered requests cost), :mod:`.caching` (the caching model,
break-even points, savings curves), :mod:`.estimate` (the estimate objects), :mod:`.pricing`
(``estimate_cost``, and every name above in one place), :mod:`.accounting` (what a job cost),
:mod:`.calibration` (output lengths measured on an earlier run).

Pure: no network, no store, no plots (a plot takes a cost object; a cost object never draws —
its ``.plot()`` asks :mod:`.figures` for the figure the display registered there).

May import: :mod:`batchkit.core`, :mod:`batchkit.errors`.
"""
