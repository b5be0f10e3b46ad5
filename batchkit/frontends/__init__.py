"""Front ends: thin adapters from a DataFrame library to batchkit's core.

A front end turns its library's rows into the core's calls (:func:`batchkit.calls.prepare`) and
builds its own typed columns from the core's per-row outcomes; it holds no state of its own.
"""
