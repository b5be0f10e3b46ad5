"""A job's life over a backend and a store: the public :class:`~batchkit.Job` handle, the worker
(plan, create, reconcile, poll, collect, stop), the deadline hedge, the result reader, calls and
partitioned runs.

May import: :mod:`batchkit.core`, :mod:`batchkit.costs`, :mod:`batchkit.stores`,
:mod:`batchkit.backends`, :mod:`batchkit.errors` — never a front end, the display or compare.
"""
