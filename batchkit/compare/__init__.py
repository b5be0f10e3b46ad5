"""Which model and prompt is good enough, and what the whole frame will cost: ``df.claude.compare``.

:mod:`.runner` draws the sample and runs every variant as an ordinary job; :mod:`.checks` and
:mod:`.truth` refuse, before anything is sent, arguments and a truth column that could not make a
comparison; :mod:`.scoring` scores an answer against the truth (or the reference's answer);
:mod:`.comparison` is the result a user reads (quality with its interval, cost, the choice) and
runs on the rest.

May import: :mod:`batchkit.core`, :mod:`batchkit.costs`, :mod:`batchkit.stores`,
:mod:`batchkit.engine`, :mod:`batchkit.display`, :mod:`batchkit.errors`.
"""
