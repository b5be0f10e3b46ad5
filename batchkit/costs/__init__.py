"""Costs: prices and the model table, token estimates, estimate objects, accounting, calibration.

Pure: no network, no store, no plots (a plot takes a cost object; a cost object never draws).

May import: :mod:`batchkit.core`, :mod:`batchkit.errors`.
"""
