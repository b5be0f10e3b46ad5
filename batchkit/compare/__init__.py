"""Which model and prompt is good enough, and what the whole frame will cost: ``df.claude.compare``.

:mod:`.runner` draws the sample and runs every variant as an ordinary job; :mod:`.comparison` is
the result a user reads (quality with its interval, cost, the choice) and runs on the rest.

May import: :mod:`batchkit.core`, :mod:`batchkit.costs`, :mod:`batchkit.stores`,
:mod:`batchkit.engine`, :mod:`batchkit.display`, :mod:`batchkit.errors`.
"""
